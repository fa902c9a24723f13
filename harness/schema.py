"""The reference schema as a real SQLite application declares it.

This DDL is deliberately written the way SQLite applications are: timestamps in TEXT,
booleans as 0/1 under a CHECK, JSON in a JSON-declared column, a BLOB, ``datetime('now')``
defaults, one AUTOINCREMENT table, and every index kind real schemas carry (composite,
partial, expression, DESC, UNIQUE, COLLATE). The migration reads it; the API's typed view of
the same tables is :mod:`harness.target.tables`.
"""

from __future__ import annotations

SCHEMA_VERSION = "1"

# Tables in dependency order (parents before children): the dataset fills them in this order.
TABLES: tuple[str, ...] = (
    "dataset_info",
    "sources",
    "topics",
    "entities",
    "artifacts",
    "scores",
    "artifact_topics",
    "artifact_entities",
    "citations",
    "bookmarks",
)

CREATE_TABLES: tuple[str, ...] = (
    """
    CREATE TABLE dataset_info (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """
    CREATE TABLE sources (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE,
        kind  TEXT NOT NULL CHECK (kind IN ('journal', 'preprint', 'blog', 'patent', 'news')),
        trust REAL NOT NULL DEFAULT 0.5 CHECK (trust >= 0 AND trust <= 1)
    )""",
    """
    CREATE TABLE topics (
        id        INTEGER PRIMARY KEY,
        parent_id INTEGER REFERENCES topics (id) ON DELETE SET NULL,
        name      TEXT NOT NULL,
        slug      TEXT NOT NULL COLLATE NOCASE,
        depth     INTEGER NOT NULL DEFAULT 0 CHECK (depth BETWEEN 0 AND 3)
    )""",
    """
    CREATE TABLE entities (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN
                        ('person', 'organization', 'method', 'dataset', 'chemical', 'gene')),
        description TEXT,
        first_seen  TEXT
    )""",
    """
    CREATE TABLE artifacts (
        id           INTEGER PRIMARY KEY,
        external_id  TEXT NOT NULL,
        source_id    INTEGER NOT NULL REFERENCES sources (id) ON DELETE RESTRICT,
        title        TEXT NOT NULL CHECK (length(title) > 0),
        kind         TEXT NOT NULL DEFAULT 'paper'
                     CHECK (kind IN ('paper', 'preprint', 'dataset', 'software', 'patent', 'post')),
        url          TEXT,
        language     TEXT NOT NULL DEFAULT 'en',
        published_at TEXT NOT NULL,
        created_at   TEXT NOT NULL DEFAULT (datetime('now')),
        updated_at   TEXT,
        is_retracted BOOLEAN NOT NULL DEFAULT 0 CHECK (is_retracted IN (0, 1)),
        metadata     JSON,
        fingerprint  BLOB
    )""",
    """
    CREATE TABLE scores (
        artifact_id     INTEGER PRIMARY KEY REFERENCES artifacts (id) ON DELETE CASCADE,
        discovery_score REAL NOT NULL CHECK (discovery_score >= 0 AND discovery_score <= 1),
        novelty         REAL NOT NULL CHECK (novelty >= 0 AND novelty <= 1),
        impact          REAL NOT NULL CHECK (impact >= 0 AND impact <= 1),
        computed_at     TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    """
    CREATE TABLE artifact_topics (
        artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        topic_id    INTEGER NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
        relevance   REAL NOT NULL CHECK (relevance > 0 AND relevance <= 1),
        PRIMARY KEY (artifact_id, topic_id)
    )""",
    """
    CREATE TABLE artifact_entities (
        artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        entity_id   INTEGER NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        mentions    INTEGER NOT NULL DEFAULT 1 CHECK (mentions > 0),
        salience    REAL NOT NULL CHECK (salience >= 0 AND salience <= 1),
        PRIMARY KEY (artifact_id, entity_id)
    )""",
    """
    CREATE TABLE citations (
        citing_id  INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        cited_id   INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        context    TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (citing_id, cited_id),
        CHECK (citing_id <> cited_id)
    )""",
    """
    CREATE TABLE bookmarks (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        user_ref    TEXT NOT NULL,
        note        TEXT,
        created_at  TEXT NOT NULL DEFAULT (datetime('now'))
    )""",
)

# Built after the rows are in: one sort per index is much faster than row-by-row upkeep.
CREATE_INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX ux_artifacts_external_id ON artifacts (external_id)",
    # partial + DESC: the "recent discoveries" query reads only live artifacts, newest first
    "CREATE INDEX ix_artifacts_published_live ON artifacts (published_at DESC) "
    "WHERE is_retracted = 0",
    "CREATE INDEX ix_artifacts_source ON artifacts (source_id)",
    # composite with DESC: top discoveries by score, ties broken by artifact
    "CREATE INDEX ix_scores_discovery ON scores (discovery_score DESC, artifact_id)",
    "CREATE UNIQUE INDEX ux_topics_slug ON topics (slug COLLATE NOCASE)",
    "CREATE INDEX ix_topics_parent ON topics (parent_id)",
    "CREATE INDEX ix_artifact_topics_topic ON artifact_topics (topic_id, artifact_id)",
    # expression index: case-insensitive entity lookup by name
    "CREATE INDEX ix_entities_lower_name ON entities (lower(name))",
    "CREATE INDEX ix_artifact_entities_entity "
    "ON artifact_entities (entity_id, salience DESC, artifact_id)",
    "CREATE INDEX ix_citations_cited ON citations (cited_id, citing_id)",
    "CREATE INDEX ix_bookmarks_user ON bookmarks (user_ref, created_at DESC)",
)

CREATE_VIEWS: tuple[str, ...] = (
    """
    CREATE VIEW live_discoveries AS
    SELECT a.id, a.title, a.published_at, s.discovery_score
    FROM artifacts AS a JOIN scores AS s ON s.artifact_id = a.id
    WHERE a.is_retracted = 0""",
)

CREATE_TRIGGERS: tuple[str, ...] = (
    """
    CREATE TRIGGER artifacts_touch_updated_at AFTER UPDATE OF title, url, metadata ON artifacts
    BEGIN
        UPDATE artifacts SET updated_at = datetime('now') WHERE id = NEW.id;
    END""",
)

# Indexes every backend must have for the critical queries to use an index scan.
CRITICAL_INDEXES: tuple[str, ...] = (
    "ix_scores_discovery",
    "ix_artifact_topics_topic",
    "ix_citations_cited",
    "ix_artifacts_published_live",
    "ix_artifact_entities_entity",
)
