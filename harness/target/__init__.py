"""The reference API under test: a ranking/discovery service over SQLite or PostgreSQL."""
