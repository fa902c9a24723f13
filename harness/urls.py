"""Database and Redis URLs: recognising the backend, masking passwords, driver variants."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from harness.errors import ConfigError

MASK = "***"


_SECRET_KEYS = {"password", "pass", "pwd", "passwd", "secret", "token", "sslpassword"}


def _mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_KEYS for k, _ in pairs):
        return query
    return urlencode([(k, MASK if k.lower() in _SECRET_KEYS else v) for k, v in pairs], safe="*")


def mask_url(url: str) -> str:
    """Return ``url`` with any password (userinfo or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    masked_query = _mask_query(parts.query)
    if parts.password is None:
        if masked_query == parts.query:
            return url  # untouched: urlunsplit would drop the empty host of sqlite:///x.db
        return urlunsplit(parts._replace(query=masked_query))
    parts = parts._replace(query=masked_query)
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub_secret(text: str, secret: str | None) -> str:
    """Replace ``secret`` (as given and URL-encoded) in ``text`` with ``***``."""
    if not secret:
        return text
    for form in {secret, quote(secret, safe=""), unquote(secret)}:
        if form:
            text = text.replace(form, MASK)
    return text


def is_postgres(url: str) -> bool:
    """True when ``url`` names a PostgreSQL server (any driver)."""
    return url.split(":", 1)[0].split("+", 1)[0] in {"postgresql", "postgres"}


def _parse(url: str) -> URL:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {mask_url(url)!r} ({exc})") from None


def with_driver(url: str, driver: str) -> str:
    """Return the PostgreSQL ``url`` rewritten for a SQLAlchemy driver (asyncpg, psycopg)."""
    parsed = _parse(url).set(drivername=f"postgresql+{driver}")
    return parsed.render_as_string(hide_password=False)


def plain_postgres_url(url: str) -> str:
    """Return ``url`` as libpq understands it (no ``+driver`` suffix)."""
    return _parse(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(db: str) -> Path:
    """Return the file path of a SQLite database given as a path or ``sqlite:///`` URL."""
    if db.startswith("sqlite"):
        parsed = _parse(db)
        if not parsed.database:
            raise ConfigError(f"SQLite URL {db!r} names no file; give a path to a .db file")
        return Path(parsed.database)
    return Path(db)
