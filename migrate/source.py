"""Reading a SQLite database's schema without writing to it.

The catalog PRAGMAs give the structure SQLite itself relies on (columns, primary keys, foreign
keys with their actions, index keys with their order and collation). What only the DDL text
holds (CHECK expressions, declared collations, AUTOINCREMENT, generated-column expressions,
DEFERRABLE, WITHOUT ROWID, STRICT) is read from ``sqlite_master.sql`` with sqlglot's SQLite
tokenizer: tokens rather than a full parse, because SQLite accepts DDL (``ON CONFLICT``, the
``ANY`` type, table options) that a full parser may refuse, and a schema must never be
dropped for that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import Token, TokenType
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from migrate.sqlite_file import (
    DEFAULT_BUSY_TIMEOUT_S,
    Integrity,
    check_integrity,
    open_source,
    reading,
)

_QUOTED = (TokenType.IDENTIFIER, TokenType.STRING)
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN KEY"}
_COLUMN_CONSTRAINTS = {
    "NOT",
    "NULL",
    "UNIQUE",
    "PRIMARY KEY",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
}


@dataclass(frozen=True)
class SourceColumn:
    """One column as SQLite declares it."""

    cid: int
    name: str
    declared_type: str  # as written in the DDL; "" when the column has no type
    not_null: bool
    default: str | None  # the default expression's SQLite text, e.g. "datetime('now')"
    pk_position: int  # 1-based position in the primary key, 0 when not part of it
    collation: str | None = None  # declared COLLATE name, upper case; None means BINARY
    generated: str | None = None  # expression of a generated column
    generated_stored: bool = False


@dataclass(frozen=True)
class SourceCheck:
    """A CHECK constraint: the expression's SQLite text and where it was declared."""

    expression: str
    name: str | None = None
    column: str | None = None  # the column it was declared on; None for a table constraint


@dataclass(frozen=True)
class SourceForeignKey:
    """A foreign key as ``PRAGMA foreign_key_list`` reports it (plus DEFERRABLE from DDL)."""

    id: int
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str | None, ...]  # None: the parent's primary key, implicitly
    on_update: str
    on_delete: str
    match: str
    deferred: bool = False  # DEFERRABLE INITIALLY DEFERRED


@dataclass(frozen=True)
class IndexKey:
    """One key of an index: a column or an expression, its order and collation."""

    column: str | None  # None for an expression key
    expression: str | None  # SQLite text of an expression key
    desc: bool
    collation: str  # as SQLite applies it: BINARY, NOCASE, RTRIM or a custom name


@dataclass(frozen=True)
class SourceIndex:
    """An index: created by CREATE INDEX ("c"), a UNIQUE constraint ("u") or the PK ("pk")."""

    name: str
    table: str
    unique: bool
    origin: str
    keys: tuple[IndexKey, ...]
    where: str | None  # SQLite text of a partial index's predicate
    sql: str | None


@dataclass(frozen=True)
class SourceTable:
    """A table with everything the plan needs from the catalog and the DDL."""

    name: str
    sql: str
    columns: tuple[SourceColumn, ...]
    primary_key: tuple[str, ...]
    without_rowid: bool
    strict: bool
    autoincrement: bool
    rowid_alias: str | None  # the INTEGER PRIMARY KEY column that is the rowid, if any
    checks: tuple[SourceCheck, ...]
    foreign_keys: tuple[SourceForeignKey, ...]
    indexes: tuple[SourceIndex, ...]
    problems: tuple[str, ...] = ()  # what could not be read from the DDL, for a human

    def column(self, name: str) -> SourceColumn:
        """The column called ``name`` (SQLite's case-insensitive match)."""
        for col in self.columns:
            if col.name.lower() == name.lower():
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class SourceView:
    """A view: its CREATE VIEW text and the column names SQLite gives it."""

    name: str
    sql: str
    columns: tuple[str, ...]
    problem: str | None = None  # set when SQLite itself cannot resolve the view


@dataclass(frozen=True)
class SourceTrigger:
    """A trigger, kept as SQLite text: triggers are never translated automatically."""

    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class SkippedObject:
    """A schema object the migration does not carry over, and why."""

    kind: str
    name: str
    reason: str
    sql: str | None


@dataclass(frozen=True)
class SourceSchema:
    """Everything read from one SQLite file's schema."""

    path: Path
    sqlite_version: str
    tables: tuple[SourceTable, ...]
    views: tuple[SourceView, ...]
    triggers: tuple[SourceTrigger, ...]
    skipped: tuple[SkippedObject, ...]
    sequences: dict[str, int]  # sqlite_sequence: AUTOINCREMENT's highest id ever handed out
    pragmas: dict[str, str | int]
    integrity: Integrity = "quick"

    def table(self, name: str) -> SourceTable:
        """The table called ``name`` (SQLite's case-insensitive match)."""
        for table in self.tables:
            if table.name.lower() == name.lower():
                return table
        raise KeyError(name)


# -- the DDL text ---------------------------------------------------------------------------

_SQLITE = Dialect.get_or_raise("sqlite")


def _tokens(sql: str) -> list[Token]:
    return list(_SQLITE.tokenize(sql))


def _word(tok: Token) -> str:
    """An unquoted token's text in upper case; "" for quoted names and strings."""
    return "" if tok.token_type in _QUOTED else tok.text.upper()


def _matching(tokens: Sequence[Token], open_at: int) -> int:
    """Index of the R_PAREN closing the L_PAREN at ``open_at``."""
    depth = 0
    for i in range(open_at, len(tokens)):
        kind = tokens[i].token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses")


def _split_top(tokens: Sequence[Token]) -> list[list[Token]]:
    """Split at commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        if tok.token_type == TokenType.COMMA and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def _inner_text(sql: str, tokens: Sequence[Token], open_at: int) -> tuple[str, int]:
    """The text between the parenthesis at ``open_at`` and its match, and the match's index."""
    close = _matching(tokens, open_at)
    return sql[tokens[open_at].end + 1 : tokens[close].start].strip(), close


def _names_in_parens(tokens: Sequence[Token], open_at: int) -> tuple[tuple[str, ...], int]:
    close = _matching(tokens, open_at)
    names = tuple(
        t.text
        for t in tokens[open_at + 1 : close]
        if t.token_type not in (TokenType.COMMA, TokenType.ASC, TokenType.DESC)
    )
    return names, close


@dataclass
class _ColumnDdl:
    checks: list[SourceCheck] = field(default_factory=list)
    collation: str | None = None
    autoincrement: bool = False
    pk_desc: bool = False
    generated: str | None = None
    generated_stored: bool = False
    deferred_fk: tuple[str, bool] | None = None  # (parent table, deferred)


@dataclass
class _TableDdl:
    columns: list[_ColumnDdl] = field(default_factory=list)
    checks: list[SourceCheck] = field(default_factory=list)
    deferred: dict[tuple[tuple[str, ...], str], bool] = field(default_factory=dict)
    without_rowid: bool = False
    strict: bool = False
    problems: list[str] = field(default_factory=list)


def _deferred_after(tokens: Sequence[Token], start: int) -> bool:
    """True when ``DEFERRABLE INITIALLY DEFERRED`` follows (and not NOT DEFERRABLE)."""
    words = [_word(t) for t in tokens[start:]]
    for i, w in enumerate(words):
        if w == "DEFERRABLE" and not (i > 0 and words[i - 1] == "NOT"):
            return words[i + 1 : i + 3] == ["INITIALLY", "DEFERRED"]
    return False


def _scan_column(sql: str, part: Sequence[Token], column: str) -> _ColumnDdl:
    out = _ColumnDdl()
    name: str | None = None
    i = 1  # part[0] is the column's name
    while i < len(part):
        tok = part[i]
        word = _word(tok)
        nxt = part[i + 1] if i + 1 < len(part) else None
        if word == "CONSTRAINT" and nxt is not None:
            name = nxt.text
            i += 2
            continue
        if word == "CHECK" and nxt is not None and nxt.token_type == TokenType.L_PAREN:
            text, close = _inner_text(sql, part, i + 1)
            out.checks.append(SourceCheck(text, name, column))
            name, i = None, close + 1
            continue
        if word == "AS" and nxt is not None and nxt.token_type == TokenType.L_PAREN:
            out.generated, close = _inner_text(sql, part, i + 1)
            out.generated_stored = any(_word(t) == "STORED" for t in part[close + 1 : close + 2])
            i = close + 1
            continue
        if tok.token_type == TokenType.L_PAREN:
            i = _matching(part, i) + 1  # a type's size or a DEFAULT expression
            continue
        if word == "COLLATE" and nxt is not None:
            out.collation = nxt.text.upper()
        elif word == "AUTOINCREMENT":
            out.autoincrement = True
        elif word == "PRIMARY KEY" and nxt is not None and _word(nxt) == "DESC":
            out.pk_desc = True
        elif word == "REFERENCES" and nxt is not None:
            out.deferred_fk = (nxt.text.lower(), _deferred_after(part, i))
        if word in _COLUMN_CONSTRAINTS:
            name = None  # a CONSTRAINT name belongs to the constraint right after it only
        i += 1
    return out


def _scan_constraint(sql: str, part: Sequence[Token], ddl: _TableDdl) -> None:
    name: str | None = None
    i = 0
    if _word(part[0]) == "CONSTRAINT" and len(part) > 1:
        name, i = part[1].text, 2
    if i >= len(part):
        return
    word = _word(part[i])
    nxt = part[i + 1] if i + 1 < len(part) else None
    if word == "CHECK" and nxt is not None and nxt.token_type == TokenType.L_PAREN:
        text, _ = _inner_text(sql, part, i + 1)
        ddl.checks.append(SourceCheck(text, name, None))
    elif word == "FOREIGN KEY" and nxt is not None and nxt.token_type == TokenType.L_PAREN:
        cols, close = _names_in_parens(part, i + 1)
        refs = [j for j in range(close, len(part)) if _word(part[j]) == "REFERENCES"]
        if refs and refs[0] + 1 < len(part):
            parent = part[refs[0] + 1].text.lower()
            key = (tuple(c.lower() for c in cols), parent)
            ddl.deferred[key] = _deferred_after(part, refs[0])


def _scan_table_ddl(sql: str, ncolumns: int) -> _TableDdl:
    """What the CREATE TABLE text says beyond the PRAGMAs; problems are recorded, not raised."""
    ddl = _TableDdl()
    try:
        tokens = _tokens(sql)
        opens = [i for i, t in enumerate(tokens) if t.token_type == TokenType.L_PAREN]
        as_select = any(_word(t) == "AS" for t in tokens[: opens[0]]) if opens else True
        if as_select:
            return ddl  # CREATE TABLE ... AS SELECT: no constraints to read
        close = _matching(tokens, opens[0])
        tail = [_word(t) for t in tokens[close + 1 :]]
        ddl.without_rowid = "ROWID" in tail and "WITHOUT" in tail
        ddl.strict = "STRICT" in tail
        parts = _split_top(tokens[opens[0] + 1 : close])
    except (SqlglotError, ValueError, IndexError) as exc:
        ddl.problems.append(f"could not read the CREATE TABLE text ({exc})")
        return ddl
    columns = [p for p in parts if _word(p[0]) not in _TABLE_CONSTRAINTS]
    constraints = [p for p in parts if _word(p[0]) in _TABLE_CONSTRAINTS]
    if len(columns) != ncolumns:
        ddl.problems.append(
            f"the CREATE TABLE text lists {len(columns)} columns where SQLite reports "
            f"{ncolumns}: column CHECKs, collations and generated expressions not read"
        )
        columns = []
    for part in columns:
        try:
            ddl.columns.append(_scan_column(sql, part, part[0].text))
        except (ValueError, IndexError) as exc:
            ddl.problems.append(f"could not read column {part[0].text!r} ({exc})")
            ddl.columns.append(_ColumnDdl())
    for part in constraints:
        try:
            _scan_constraint(sql, part, ddl)
        except (ValueError, IndexError) as exc:
            ddl.problems.append(f"could not read a table constraint ({exc})")
    return ddl


def _scan_index_ddl(sql: str) -> tuple[list[str], str | None]:
    """Key texts (collation and order stripped) and the WHERE text of a CREATE INDEX."""
    tokens = _tokens(sql)
    on = next(i for i, t in enumerate(tokens) if _word(t) == "ON")
    open_at = next(i for i in range(on, len(tokens)) if tokens[i].token_type == TokenType.L_PAREN)
    close = _matching(tokens, open_at)
    keys: list[str] = []
    for part in _split_top(tokens[open_at + 1 : close]):
        end = len(part)
        while end > 1 and _word(part[end - 1]) in ("ASC", "DESC"):
            end -= 1
        # A trailing COLLATE belongs to the key, not to the expression.
        if end > 2 and _word(part[end - 2]) == "COLLATE":
            end -= 2
        keys.append(sql[part[0].start : part[end - 1].end + 1].strip())
    where = None
    rest = tokens[close + 1 :]
    if rest and _word(rest[0]) == "WHERE" and len(rest) > 1:
        where = sql[rest[1].start :].strip().rstrip(";").strip()
    return keys, where


# -- the catalog ----------------------------------------------------------------------------


def _read_indexes(conn: sqlite3.Connection, table: str, sqls: dict[str, str]) -> list[SourceIndex]:
    out: list[SourceIndex] = []
    # pragma_index_list numbers the newest index 0: descending seq is creation order.
    rows = conn.execute(
        'SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY seq DESC',
        (table,),
    ).fetchall()
    for name, unique, origin, partial in rows:
        info = conn.execute(
            'SELECT cid, name, "desc", coll FROM pragma_index_xinfo(?) WHERE key = 1 '
            "ORDER BY seqno",
            (name,),
        ).fetchall()
        sql = sqls.get(name)
        texts: list[str] = []
        where: str | None = None
        if sql:
            try:
                texts, where = _scan_index_ddl(sql)
            except (SqlglotError, ValueError, StopIteration, IndexError):
                texts, where = [], None
        keys = []
        for pos, (cid, col, desc, coll) in enumerate(info):
            expression = None
            if cid == -2:  # an expression key: only the DDL text says which
                expression = texts[pos] if pos < len(texts) else None
            keys.append(IndexKey(col, expression, bool(desc), str(coll).upper()))
        out.append(
            SourceIndex(
                name=name,
                table=table,
                unique=bool(unique),
                origin=origin,
                keys=tuple(keys),
                where=where if partial else None,
                sql=sql,
            )
        )
    return out


def _read_table(
    conn: sqlite3.Connection, name: str, sql: str, index_sql: dict[str, str]
) -> SourceTable:
    rows = conn.execute(
        'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) '
        "ORDER BY cid",
        (name,),
    ).fetchall()
    ddl = _scan_table_ddl(sql, len(rows))
    columns: list[SourceColumn] = []
    for pos, (cid, col, decl, notnull, dflt, pk, hidden) in enumerate(rows):
        extra = ddl.columns[pos] if pos < len(ddl.columns) else _ColumnDdl()
        columns.append(
            SourceColumn(
                cid=cid,
                name=col,
                declared_type=decl or "",
                not_null=bool(notnull),
                default=dflt,
                pk_position=pk,
                collation=extra.collation if extra.collation not in (None, "BINARY") else None,
                generated=extra.generated if hidden in (2, 3) else None,
                generated_stored=hidden == 3,
            )
        )
    pk_cols = tuple(c.name for c in sorted((c for c in columns if c.pk_position), key=_pk_pos))
    # The rowid alias: a single-column INTEGER PRIMARY KEY (exactly that type name, not
    # INT, and not declared DESC) in a rowid table (https://sqlite.org/lang_createtable.html).
    alias = None
    if len(pk_cols) == 1 and not ddl.without_rowid:
        pos = next(i for i, c in enumerate(columns) if c.name == pk_cols[0])
        extra = ddl.columns[pos] if pos < len(ddl.columns) else _ColumnDdl()
        if columns[pos].declared_type.upper() == "INTEGER" and not extra.pk_desc:
            alias = pk_cols[0]
    fks: dict[int, list[tuple[str, str, str | None, str, str, str]]] = {}
    for fid, _seq, parent, col, to, on_update, on_delete, match in conn.execute(
        'SELECT id, seq, "table", "from", "to", on_update, on_delete, "match" '
        "FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        (name,),
    ):
        fks.setdefault(fid, []).append((parent, col, to, on_update, on_delete, match))
    column_deferred: dict[tuple[str, ...], tuple[str, bool]] = {
        (columns[pos].name.lower(),): extra.deferred_fk
        for pos, extra in enumerate(ddl.columns)
        if extra.deferred_fk is not None
    }
    foreign_keys = []
    for fid, parts in sorted(fks.items()):
        cols = tuple(p[1] for p in parts)
        parent = parts[0][0]
        key = (tuple(c.lower() for c in cols), parent.lower())
        deferred = ddl.deferred.get(key, False)
        by_column = column_deferred.get(key[0])
        if by_column is not None and by_column[0] == parent.lower():
            deferred = deferred or by_column[1]
        foreign_keys.append(
            SourceForeignKey(
                id=fid,
                columns=cols,
                ref_table=parent,
                ref_columns=tuple(p[2] for p in parts),
                on_update=parts[0][3],
                on_delete=parts[0][4],
                match=parts[0][5],
                deferred=deferred,
            )
        )
    checks = [c for extra in ddl.columns for c in extra.checks] + ddl.checks
    return SourceTable(
        name=name,
        sql=sql,
        columns=tuple(columns),
        primary_key=pk_cols,
        without_rowid=ddl.without_rowid,
        strict=ddl.strict,
        autoincrement=any(extra.autoincrement for extra in ddl.columns),
        rowid_alias=alias,
        checks=tuple(checks),
        foreign_keys=tuple(foreign_keys),
        indexes=tuple(_read_indexes(conn, name, index_sql)),
        problems=tuple(ddl.problems),
    )


def _pk_pos(col: SourceColumn) -> int:
    return col.pk_position


def _table_kinds(conn: sqlite3.Connection) -> dict[str, str]:
    """``PRAGMA table_list``'s type per table (table, view, virtual, shadow), when available."""
    try:
        rows = conn.execute("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")
        return {str(n): str(t) for n, t in rows}
    except sqlite3.OperationalError:  # SQLite before 3.37
        return {}


_PRAGMAS = (
    "page_size",
    "page_count",
    "freelist_count",
    "encoding",
    "journal_mode",
    "user_version",
    "application_id",
    "auto_vacuum",
)


def read_schema(
    path: Path | str,
    *,
    integrity: Integrity = "quick",
    timeout: float = DEFAULT_BUSY_TIMEOUT_S,
) -> SourceSchema:
    """Read every table, column, constraint, index, view and trigger of the SQLite file.

    The file is opened read-only. ``integrity`` picks the check run first (``quick`` by
    default: a damaged file fails here with :class:`CorruptSourceError` rather than halfway
    through a copy).
    """
    p = Path(path)
    conn = open_source(p, timeout=timeout)
    try:
        check_integrity(conn, p, integrity)
        with reading(p, conn):
            return _read_schema(conn, p, integrity)
    finally:
        conn.close()


def _read_schema(conn: sqlite3.Connection, path: Path, integrity: Integrity) -> SourceSchema:
    master = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    ).fetchall()
    kinds = _table_kinds(conn)
    index_sql = {name: sql for kind, name, _t, sql in master if kind == "index" and sql}
    tables: list[SourceTable] = []
    views: list[SourceView] = []
    triggers: list[SourceTrigger] = []
    skipped: list[SkippedObject] = []
    for kind, name, tbl_name, sql in master:
        if name.startswith("sqlite_"):
            continue  # SQLite's own: sequences, statistics, automatic indexes
        if kind == "table":
            if (sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
                skipped.append(
                    SkippedObject(
                        "virtual table",
                        name,
                        "a virtual table (full-text search, R*Tree, an extension's module) has "
                        "no PostgreSQL equivalent; rebuild it with a PostgreSQL feature such as "
                        "tsvector + GIN",
                        sql,
                    )
                )
            elif kinds.get(name) == "shadow":
                skipped.append(
                    SkippedObject(
                        "shadow table",
                        name,
                        "storage of a virtual table; it goes with the virtual table",
                        sql,
                    )
                )
            else:
                tables.append(_read_table(conn, name, sql, index_sql))
        elif kind == "view":
            views.append(_read_view(conn, name, sql))
        elif kind == "trigger":
            triggers.append(SourceTrigger(name, tbl_name, sql))
    sequences: dict[str, int] = {}
    if any(name == "sqlite_sequence" for _k, name, _t, _s in master):
        sequences = {
            str(n): int(s) for n, s in conn.execute("SELECT name, seq FROM sqlite_sequence")
        }
    pragmas: dict[str, str | int] = {}
    for pragma in _PRAGMAS:
        row = conn.execute(f"PRAGMA {pragma}").fetchone()
        if row is not None:
            pragmas[pragma] = row[0]
    version = str(conn.execute("SELECT sqlite_version()").fetchone()[0])
    return SourceSchema(
        path=path,
        sqlite_version=version,
        tables=tuple(tables),
        views=tuple(views),
        triggers=tuple(triggers),
        skipped=tuple(skipped),
        sequences=sequences,
        pragmas=pragmas,
        integrity=integrity,
    )


def _read_view(conn: sqlite3.Connection, name: str, sql: str) -> SourceView:
    try:
        cols = tuple(
            str(r[0]) for r in conn.execute("SELECT name FROM pragma_table_xinfo(?)", (name,))
        )
    except sqlite3.OperationalError as exc:
        # A view over a dropped table: SQLite keeps it but cannot resolve it.
        return SourceView(name, sql, (), problem=f"SQLite cannot resolve the view ({exc})")
    return SourceView(name, sql, cols)
