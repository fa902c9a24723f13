"""The migration plan: the PostgreSQL schema for a SQLite file, a cast per column with its
reason, and everything that needs a human, as a reviewable SQL file, JSON and a table.

``make_plan`` never writes anywhere: it reads the SQLite file (read-only), profiles it, and
decides. The copy step runs the plan's statements in phases: tables first, then (after the
data) indexes, foreign keys, views and the identity sequences.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.urls import sqlite_path
from migrate.casts import Cast, checks_for_override, choose_cast, parse_pg_type, split_override_key
from migrate.errors import PlanOptionError
from migrate.names import (
    PG_MAX_IDENTIFIER_BYTES,
    comment_text,
    derived_name,
    pg_ident,
    pg_literal,
    truncated_pg_name,
)
from migrate.profile import DEFAULT_SAMPLE_ROWS, ColumnProfile, TableProfile, profile_schema
from migrate.source import (
    SourceIndex,
    SourceSchema,
    SourceTable,
    read_schema,
)
from migrate.sqlite_file import Integrity
from migrate.translate import (
    ColumnInfo,
    TableInfo,
    Translation,
    ascii_lower,
    translate_default,
    translate_expression,
    translate_index_key,
    translate_view,
)

PLAN_FORMAT = "harness.migrate.plan/1"
Phase = Literal["tables", "indexes", "foreign_keys", "views", "identities"]
PHASES: tuple[Phase, ...] = ("tables", "indexes", "foreign_keys", "views", "identities")
_FK_ACTIONS = frozenset({"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"})
_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
BIGINT_MAX = 2**63 - 1


@dataclass
class PlanColumn:
    """One column: its SQLite declaration, its cast, its translated default."""

    name: str
    declared_type: str
    cast: Cast
    not_null: bool
    default: Translation | None = None
    generated: Translation | None = None
    generated_stored: bool = False
    collation: str | None = None
    profile: ColumnProfile | None = None

    @property
    def loaded(self) -> bool:
        """False for generated columns PostgreSQL computes: the copy must skip them. A
        generated column whose expression needs a human is a plain column: its values load."""
        return self.generated is None or not self.generated.ok


@dataclass
class PlanCheck:
    """A CHECK constraint and its translation (``ok``, ``dropped`` or ``human``)."""

    name: str | None
    column: str | None
    translation: Translation


@dataclass
class PlanIndex:
    """An index (or a UNIQUE/PRIMARY KEY whose collation makes it an expression index)."""

    name: str
    table: str
    unique: bool
    keys: list[str]  # PostgreSQL key SQL, order included
    where: str | None
    status: Literal["ok", "human"]
    reasons: list[str]
    source_sql: str | None

    @property
    def sql(self) -> str | None:
        """``CREATE [UNIQUE] INDEX ...``, or None when a human must write it."""
        if self.status != "ok":
            return None
        unique = "UNIQUE " if self.unique else ""
        where = f" WHERE {self.where}" if self.where else ""
        return (
            f"CREATE {unique}INDEX {pg_ident(self.name)} ON {pg_ident(self.table)} "
            f"({', '.join(self.keys)}){where};"
        )


@dataclass
class PlanForeignKey:
    """A foreign key, added after the data with ALTER TABLE."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    on_update: str
    deferred: bool
    status: Literal["ok", "human"]
    reasons: list[str]

    @property
    def sql(self) -> str | None:
        """``ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ...``, or None for a human."""
        if self.status != "ok":
            return None
        cols = ", ".join(pg_ident(c) for c in self.columns)
        refs = ", ".join(pg_ident(c) for c in self.ref_columns)
        actions = ""
        if self.on_delete != "NO ACTION":
            actions += f" ON DELETE {self.on_delete}"
        if self.on_update != "NO ACTION":
            actions += f" ON UPDATE {self.on_update}"
        if self.deferred:
            actions += " DEFERRABLE INITIALLY DEFERRED"
        return (
            f"ALTER TABLE {pg_ident(self.table)} ADD CONSTRAINT {pg_ident(self.name)} "
            f"FOREIGN KEY ({cols}) REFERENCES {pg_ident(self.ref_table)} ({refs}){actions};"
        )


@dataclass
class IdentityStep:
    """After the load, move an identity's sequence past every id SQLite ever handed out."""

    table: str
    column: str
    floor: int  # sqlite_sequence's value for AUTOINCREMENT tables (ids never reused), else 0

    @property
    def sql(self) -> str:
        """The ``setval`` statement the copy runs once the rows are in."""
        col, table = pg_ident(self.column), pg_ident(self.table)
        sequence = f"pg_get_serial_sequence({pg_literal(table)}, {pg_literal(self.column)})"
        # Every name is quoted by psycopg and the floor is an int: nothing is spliced raw.
        top = f"GREATEST(COALESCE(MAX({col}), 0), {int(self.floor)})"
        # At the largest bigint the sequence is spent, as SQLite's rowid is: the next
        # insert without an id fails instead of the setval overflowing.
        spent = f"setval({sequence}, {BIGINT_MAX}, true)"
        follow = f"setval({sequence}, top + 1, false)"
        source = f"(SELECT {top} AS top FROM {table}) AS m"  # noqa: S608
        choice = f"CASE WHEN top >= {BIGINT_MAX} THEN {spent} ELSE {follow} END"
        return f"SELECT {choice} FROM {source};"  # noqa: S608


@dataclass
class PlanTable:
    """One table: columns with casts, keys, CHECKs, indexes, foreign keys."""

    name: str
    rows: int | None
    columns: list[PlanColumn]
    primary_key: tuple[str, ...]
    uniques: list[tuple[str, ...]]
    checks: list[PlanCheck]
    indexes: list[PlanIndex]
    foreign_keys: list[PlanForeignKey]
    without_rowid: bool = False
    strict: bool = False
    autoincrement: bool = False
    notes: list[str] = field(default_factory=list)

    def column(self, name: str) -> PlanColumn:
        """The column called ``name`` (exact spelling first, then SQLite's rule)."""
        for col in self.columns:
            if col.name == name:
                return col
        for col in self.columns:
            if ascii_lower(col.name) == ascii_lower(name):
                return col
        raise KeyError(name)

    def index(self, name: str) -> PlanIndex:
        """The index called ``name``."""
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(name)

    @property
    def create_sql(self) -> str:
        """``CREATE TABLE`` with a comment above each column giving its cast and reason."""
        return self._create(keys=True)

    @property
    def create_sql_for_copy(self) -> str:
        """``CREATE TABLE`` without PRIMARY KEY and UNIQUE: the copy adds them after the data
        (one index build instead of upkeep row by row). Key columns are NOT NULL from the
        start, as the primary key will make them."""
        return self._create(keys=False)

    def _create(self, *, keys: bool) -> str:
        entries: list[tuple[list[str], str]] = []
        for col in self.columns:
            sql = _column_sql(col)
            if not keys and col.name in self.primary_key and not col.not_null:
                sql += "" if col.cast.identity else " NOT NULL"
            entries.append((_column_comments(col), sql))
        if self.primary_key and keys:
            names = ", ".join(pg_ident(c) for c in self.primary_key)
            entries.append(([], f"PRIMARY KEY ({names})"))
        for unique in self.uniques if keys else []:
            entries.append(([], f"UNIQUE ({', '.join(pg_ident(c) for c in unique)})"))
        for check in self.checks:
            tr = check.translation
            if not tr.ok or tr.sql is None:
                continue
            name = f"CONSTRAINT {pg_ident(check.name)} " if check.name else ""
            notes = [f"CHECK from SQLite: {tr.source}", *tr.reasons]
            entries.append((notes, f"{name}CHECK ({tr.sql})"))
        lines = [f"CREATE TABLE {pg_ident(self.name)} ("]
        for i, (notes, sql) in enumerate(entries):
            lines += [f"    -- {comment_text(n)}" for n in notes]
            lines.append(f"    {sql}{',' if i < len(entries) - 1 else ''}")
        lines.append(");")
        return "\n".join(lines)


@dataclass
class PlanView:
    """A view and its translated query."""

    name: str
    columns: tuple[str, ...]
    translation: Translation

    @property
    def sql(self) -> str | None:
        """``CREATE VIEW`` with SQLite's column names, or None for a human."""
        if not self.translation.ok or self.translation.sql is None:
            return None
        cols = f" ({', '.join(pg_ident(c) for c in self.columns)})" if self.columns else ""
        return f"CREATE VIEW {pg_ident(self.name)}{cols} AS\n{self.translation.sql};"


@dataclass
class HumanItem:
    """Something the plan did not put in the DDL, or a decision a person should check."""

    kind: str  # trigger, view, check, index, default, foreign key, column, name, table...
    name: str
    reason: str
    table: str | None = None
    sqlite_sql: str | None = None

    def line(self) -> str:
        """One line: kind, object, reason."""
        where = f" on {self.table}" if self.table else ""
        return f"{self.kind} {self.name!r}{where}: {self.reason}"


@dataclass
class Plan:
    """Everything the migration will create, and why; see :func:`make_plan`."""

    source: str
    sqlite_version: str
    timezone: str | None
    overrides: dict[str, str]
    tables: list[PlanTable]
    views: list[PlanView]
    human: list[HumanItem]
    review: list[HumanItem]
    identities: list[IdentityStep]
    pragmas: dict[str, str | int]
    profile: dict[str, TableProfile]
    seconds: float = 0.0

    def table(self, name: str) -> PlanTable:
        """The table called ``name``."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def view(self, name: str) -> PlanView:
        """The view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def statements(self, phase: Phase) -> list[str]:
        """The SQL statements of one phase, in the order they must run.

        ``tables`` runs before the data; ``indexes``, ``foreign_keys``, ``views`` and
        ``identities`` after it (one sort per index and one validation per key is faster
        than upkeep row by row, and the sequences must see the loaded ids).
        """
        if phase == "tables":
            return [t.create_sql for t in self.tables]
        if phase == "indexes":
            return [i.sql for t in self.tables for i in t.indexes if i.sql]
        if phase == "foreign_keys":
            return [f.sql for t in self.tables for f in t.foreign_keys if f.sql]
        if phase == "views":
            return [v.sql for v in self.views if v.sql]
        return [step.sql for step in self.identities]

    def ddl(self) -> str:
        """The plan as a reviewable SQL file: header, tables, indexes, foreign keys, views.

        The identity ``setval`` statements are listed as comments at the end: they only mean
        something once the rows are loaded, and the copy runs them.
        """
        out = list(self._header())
        out.append("")
        out.append("-- == Tables ==")
        for table in self.tables:
            out.append("")
            out += [f"-- {comment_text(line)}" for line in _table_comments(table)]
            out.append(table.create_sql)
        out += ["", "-- == Indexes (built after the data) =="]
        for table in self.tables:
            for index in table.indexes:
                if index.sql is None:
                    continue
                out.append("")
                out += [f"-- {comment_text(line)}" for line in _index_comments(index)]
                out.append(index.sql)
        out += ["", "-- == Foreign keys (added after the data) =="]
        for table in self.tables:
            for fk in table.foreign_keys:
                if fk.sql is not None:
                    out.append(fk.sql)
        out += ["", "-- == Views =="]
        for view in self.views:
            if view.sql is None:
                continue
            out.append("")
            out.append(f"-- view {comment_text(view.name)} from SQLite:")
            out += [f"--   {comment_text(line)}" for line in view.translation.source.splitlines()]
            out += [f"-- {comment_text(r)}" for r in view.translation.reasons]
            out.append(view.sql)
        if self.identities:
            out += ["", "-- == After the load, the copy sets each identity past the largest id =="]
            out += [f"-- {comment_text(step.sql)}" for step in self.identities]
        return "\n".join(out) + "\n"

    def _header(self) -> Iterator[str]:
        name = Path(self.source).name
        yield f"-- PostgreSQL schema planned by harness migrate for {comment_text(name)}"
        yield f"-- (SQLite {self.sqlite_version}; {PLAN_FORMAT})"
        tz = self.timezone or "none: timestamps without time zone unless values carry offsets"
        yield f"-- timezone: {comment_text(tz)}"
        for key, value in sorted(self.overrides.items()):
            yield f"-- override: {comment_text(key)} = {comment_text(value)}"
        yield (
            f"-- {len(self.tables)} tables, {len(self.views)} views; "
            f"{len(self.human)} items need a human, {len(self.review)} to review"
        )
        yield "--"
        if self.human:
            yield "-- NEEDS A HUMAN (not in this file; nothing was dropped silently):"
            for i, item in enumerate(self.human, 1):
                yield f"-- {i:3d}. {comment_text(item.line())}"
                for line in (item.sqlite_sql or "").strip().splitlines():
                    yield f"--        {comment_text(line)}"
            yield "--"
        if self.review:
            yield "-- REVIEW (in this file, decided for you; check these):"
            for item in self.review:
                yield f"--   - {comment_text(item.line())}"

    def to_dict(self) -> dict[str, Any]:
        """Everything in the plan as JSON-ready data (statements included)."""
        data = dataclasses.asdict(self)
        data["format"] = PLAN_FORMAT
        data["statements"] = {phase: self.statements(phase) for phase in PHASES}
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=str, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan :meth:`to_dict` wrote (a run's ``plan.json``); ValueError when it is not
        one of this format."""
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"not a {PLAN_FORMAT} plan")
        return cls(
            source=data["source"],
            sqlite_version=data["sqlite_version"],
            timezone=data["timezone"],
            overrides=dict(data["overrides"]),
            tables=[_table_from(t) for t in data["tables"]],
            views=[
                PlanView(v["name"], tuple(v["columns"]), _translation(v["translation"]))
                for v in data["views"]
            ],
            human=[HumanItem(**h) for h in data["human"]],
            review=[HumanItem(**h) for h in data["review"]],
            identities=[IdentityStep(**i) for i in data["identities"]],
            pragmas=dict(data["pragmas"]),
            profile={
                name: TableProfile(
                    **{**p, "columns": {c: _column_profile(v) for c, v in p["columns"].items()}}
                )
                for name, p in data["profile"].items()
            },
            seconds=float(data.get("seconds", 0.0)),
        )


def _translation(data: Mapping[str, Any]) -> Translation:
    return Translation(data["source"], data["sql"], data["status"], tuple(data["reasons"]))


def _maybe_translation(data: Mapping[str, Any] | None) -> Translation | None:
    return None if data is None else _translation(data)


def _column_profile(data: Mapping[str, Any] | None) -> ColumnProfile | None:
    return None if data is None else ColumnProfile(**data)


def _table_from(data: Mapping[str, Any]) -> PlanTable:
    columns = [
        PlanColumn(
            name=c["name"],
            declared_type=c["declared_type"],
            cast=Cast(**{**c["cast"], "notes": tuple(c["cast"]["notes"])}),
            not_null=c["not_null"],
            default=_maybe_translation(c["default"]),
            generated=_maybe_translation(c["generated"]),
            generated_stored=c["generated_stored"],
            collation=c["collation"],
            profile=_column_profile(c["profile"]),
        )
        for c in data["columns"]
    ]
    checks = [
        PlanCheck(k["name"], k["column"], _translation(k["translation"])) for k in data["checks"]
    ]
    return PlanTable(
        name=data["name"],
        rows=data["rows"],
        columns=columns,
        primary_key=tuple(data["primary_key"]),
        uniques=[tuple(u) for u in data["uniques"]],
        checks=checks,
        indexes=[PlanIndex(**i) for i in data["indexes"]],
        foreign_keys=[
            PlanForeignKey(
                **{
                    **f,
                    "columns": tuple(f["columns"]),
                    "ref_columns": tuple(f["ref_columns"]),
                }
            )
            for f in data["foreign_keys"]
        ],
        without_rowid=data["without_rowid"],
        strict=data["strict"],
        autoincrement=data["autoincrement"],
        notes=list(data["notes"]),
    )


# -- comments -------------------------------------------------------------------------------


def _column_sql(col: PlanColumn) -> str:
    parts = [pg_ident(col.name), col.cast.ddl_type]
    if col.generated is not None and col.generated.ok and col.generated.sql:
        parts.append(f"GENERATED ALWAYS AS ({col.generated.sql}) STORED")
    if col.not_null and not col.cast.identity:
        parts.append("NOT NULL")
    if col.default is not None and col.default.ok and col.default.sql and not col.cast.identity:
        parts.append(f"DEFAULT {col.default.sql}")
    return " ".join(parts)


def _column_comments(col: PlanColumn) -> list[str]:
    declared = col.declared_type or "(no type)"
    lines = [f"{col.name}: {declared} -> {col.cast.ddl_type}{' (override)' * col.cast.override}"]
    lines.append(f"  {col.cast.reason}")
    if col.cast.rejects:
        detail = f" ({col.cast.rejects_detail})" if col.cast.rejects_detail else ""
        lines.append(f"  the copy will reject {col.cast.rejects} values{detail}")
    lines += [f"  note: {n}" for n in col.cast.notes]
    if col.default is not None:
        d = col.default
        if d.status == "ok":
            for reason in d.reasons:
                lines.append(f"  default {d.source}: {reason}")
        elif d.status == "dropped":
            lines.append(f"  default {d.source} omitted: {'; '.join(d.reasons)}")
        else:
            lines.append(f"  default {d.source} NOT SET, needs a human: {'; '.join(d.reasons)}")
    if col.collation:
        lines.append(
            f"  SQLite COLLATE {col.collation}: PostgreSQL compares it case-sensitively; "
            "indexes and view comparisons use lower()"
        )
    if col.generated is not None:
        g = col.generated
        if g.ok:
            lines.append(f"  generated from SQLite: {g.source} (stored in PostgreSQL)")
        else:
            lines.append(f"  generated {g.source} NOT SET, needs a human: {'; '.join(g.reasons)}")
    return lines


def _table_comments(table: PlanTable) -> list[str]:
    rows = "unknown" if table.rows is None else f"{table.rows:,}"
    traits = [
        t
        for t, on in (
            ("WITHOUT ROWID", table.without_rowid),
            ("STRICT", table.strict),
            ("AUTOINCREMENT", table.autoincrement),
        )
        if on
    ]
    lines = [
        f"table {table.name}: {rows} rows in SQLite" + (f" ({', '.join(traits)})" * bool(traits))
    ]
    for check in table.checks:
        tr = check.translation
        if tr.status == "dropped":
            lines.append(f"CHECK ({tr.source}) dropped: {'; '.join(tr.reasons)}")
        elif tr.status == "human":
            lines.append(f"CHECK ({tr.source}) NOT CREATED, needs a human: {'; '.join(tr.reasons)}")
    lines += table.notes
    return lines


def _index_comments(index: PlanIndex) -> list[str]:
    lines = [f"index {index.name} from SQLite: {index.source_sql or 'constraint'}"]
    lines += index.reasons
    return lines


# -- building the plan ----------------------------------------------------------------------


def _check_timezone(timezone: str | None) -> None:
    if timezone is None:
        return
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PlanOptionError(
            f"--timezone {timezone!r} is not an IANA time zone; use e.g. UTC or Europe/Paris"
        ) from None


def _resolve_overrides(
    schema: SourceSchema, overrides: Mapping[str, str] | None
) -> dict[tuple[str, str], str]:
    names = {t.name: [c.name for c in t.columns] for t in schema.tables}
    resolved: dict[tuple[str, str], str] = {}
    for key, value in (overrides or {}).items():
        table, column = split_override_key(key, names)
        parse_pg_type(value)  # fails early, with the option named
        resolved[(table, column)] = value
    return resolved


def sqlite_path_of(source: Path | str) -> Path:
    """A SQLite file given as a path or a ``sqlite:///`` URL."""
    if isinstance(source, str) and source.startswith("sqlite:"):
        return sqlite_path(source)
    return Path(source)


def make_plan(
    sqlite_path: Path | str,
    *,
    overrides: Mapping[str, str] | None = None,
    timezone: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    integrity: Integrity = "quick",
    workers: int | None = None,
) -> Plan:
    """Read, profile and plan the migration of the SQLite file at ``sqlite_path`` (a path or
    a ``sqlite:///`` URL).

    ``overrides`` maps ``"table.column"`` to a PostgreSQL type (``{"artifacts.metadata":
    "json"}``); ``timezone`` (an IANA name) makes timestamps ``timestamptz``, reading values
    without an offset in that zone. Nothing is written anywhere. Raises a
    :class:`~migrate.errors.SourceError` for a missing, non-SQLite, corrupt or locked file
    and :class:`~migrate.errors.PlanOptionError` for a bad option.
    """
    started = time.perf_counter()
    _check_timezone(timezone)
    path = sqlite_path_of(sqlite_path)
    schema = read_schema(path, integrity=integrity)
    wanted = _resolve_overrides(schema, overrides)
    checks: dict[str, dict[str, set[str]]] = {}
    for (table, column), pg_type in wanted.items():
        checks.setdefault(table, {})[column] = checks_for_override(pg_type)
    profiles = profile_schema(path, schema, sample_rows=sample_rows, checks=checks, workers=workers)
    builder = _Builder(schema, profiles, wanted, timezone)
    plan = builder.build()
    plan.seconds = time.perf_counter() - started
    return plan


class _Builder:
    def __init__(
        self,
        schema: SourceSchema,
        profiles: dict[str, TableProfile],
        overrides: dict[tuple[str, str], str],
        timezone: str | None,
    ) -> None:
        self.schema = schema
        self.profiles = profiles
        self.overrides = overrides
        self.timezone = timezone
        self.human: list[HumanItem] = []
        self.review: list[HumanItem] = []
        self.casts: dict[str, dict[str, Cast]] = {}
        self.infos: dict[str, TableInfo] = {}

    def build(self) -> Plan:
        schema = self.schema
        for table in schema.tables:
            self._casts(table)
        tables = [self._table(t) for t in schema.tables]
        for planned, source in zip(tables, schema.tables, strict=True):
            planned.foreign_keys = self._foreign_keys(source)
        views = self._views()
        for trigger in schema.triggers:
            self.human.append(
                HumanItem(
                    "trigger",
                    trigger.name,
                    "SQLite triggers are not translated: write a PL/pgSQL trigger function "
                    "and CREATE TRIGGER for it",
                    trigger.table,
                    trigger.sql,
                )
            )
        for skipped in schema.skipped:
            self.human.append(
                HumanItem(skipped.kind, skipped.name, skipped.reason, None, skipped.sql)
            )
        self._names(tables, views)
        self.review.append(
            HumanItem(
                "collation",
                "text ordering",
                "SQLite orders text byte by byte (BINARY); PostgreSQL by the database's "
                "collation: create the target database with LC_COLLATE 'C' where ORDER BY "
                "or < on text must match SQLite",
            )
        )
        identities = [
            IdentityStep(t.name, c.name, schema.sequences.get(t.name, 0))
            for t in tables
            for c in t.columns
            if c.cast.identity
        ]
        return Plan(
            source=str(schema.path),
            sqlite_version=schema.sqlite_version,
            timezone=self.timezone,
            overrides={f"{t}.{c}": v for (t, c), v in self.overrides.items()},
            tables=tables,
            views=views,
            human=self.human,
            review=self.review,
            identities=identities,
            pragmas=dict(schema.pragmas),
            profile=self.profiles,
        )

    # -- columns -------------------------------------------------------------------------
    def _casts(self, table: SourceTable) -> None:
        profile = self.profiles.get(table.name)
        fk_columns = frozenset(c for fk in table.foreign_keys for c in fk.columns)
        casts: dict[str, Cast] = {}
        for col in table.columns:
            casts[col.name] = choose_cast(
                table,
                col,
                profile.columns.get(col.name) if profile else None,
                override=self.overrides.get((table.name, col.name)),
                timezone=self.timezone,
                foreign_key_columns=fk_columns,
            )
        self.casts[table.name] = casts
        self.infos[ascii_lower(table.name)] = TableInfo.of(
            table.name,
            [ColumnInfo(c.name, casts[c.name].pg_type, c.collation) for c in table.columns],
        )

    def _table(self, table: SourceTable) -> PlanTable:
        info = self.infos[ascii_lower(table.name)]
        profile = self.profiles.get(table.name)
        columns: list[PlanColumn] = []
        for col in table.columns:
            cast = self.casts[table.name][col.name]
            default = translate_default(col.default, cast.pg_type) if col.default else None
            generated = None
            if col.generated is not None:
                generated = translate_expression(col.generated, info, "generated")
            plan_col = PlanColumn(
                name=col.name,
                declared_type=col.declared_type,
                cast=cast,
                not_null=col.not_null,
                default=default,
                generated=generated,
                generated_stored=col.generated_stored,
                collation=col.collation,
                profile=profile.columns.get(col.name) if profile else None,
            )
            columns.append(plan_col)
            self._column_items(table, plan_col)
        plan = PlanTable(
            name=table.name,
            rows=profile.rows if profile else None,
            columns=columns,
            primary_key=table.primary_key,
            uniques=[],
            checks=[],
            indexes=[],
            foreign_keys=[],
            without_rowid=table.without_rowid,
            strict=table.strict,
            autoincrement=table.autoincrement,
        )
        for problem in table.problems:
            self.human.append(HumanItem("table", table.name, problem, None, table.sql))
        if not table.primary_key:
            plan.notes.append("no primary key: rows are identified by SQLite's rowid in rejects")
        for check in table.checks:
            tr = translate_expression(check.expression, info, "check")
            plan.checks.append(PlanCheck(check.name, check.column, tr))
            label = check.name or f"CHECK ({check.expression})"
            if tr.status == "human":
                self.human.append(
                    HumanItem("check", label, "; ".join(tr.reasons), table.name, check.expression)
                )
            elif tr.status == "dropped":
                self.review.append(
                    HumanItem("check", label, "dropped: " + "; ".join(tr.reasons), table.name)
                )
        for index in table.indexes:
            self._index(table, plan, index, info)
        return plan

    def _column_items(self, table: SourceTable, col: PlanColumn) -> None:
        name = f"{table.name}.{col.name}"
        for translation, what in ((col.default, "default"), (col.generated, "generated column")):
            if translation is not None and translation.status == "human":
                self.human.append(
                    HumanItem(
                        what, name, "; ".join(translation.reasons), table.name, translation.source
                    )
                )
        cast = col.cast
        if cast.rejects:
            detail = f" ({cast.rejects_detail})" if cast.rejects_detail else ""
            self.review.append(
                HumanItem(
                    "rejects",
                    name,
                    f"{cast.rejects} values will be rejected as {cast.pg_type}{detail}",
                )
            )
        for note in cast.notes:
            self.review.append(HumanItem("column", name, note))
        if col.collation:
            self.review.append(
                HumanItem(
                    "collation",
                    name,
                    f"COLLATE {col.collation} has no PostgreSQL built-in: the column is plain "
                    "text, its indexes use lower(); application queries comparing it must use "
                    "lower() (or ILIKE) to stay case-insensitive",
                )
            )

    # -- indexes and keys ------------------------------------------------------------------
    def _index(
        self, table: SourceTable, plan: PlanTable, index: SourceIndex, info: TableInfo
    ) -> None:
        # Key order means nothing to a constraint; only a collation makes it an index.
        plain = all(k.column is not None and k.collation == "BINARY" for k in index.keys)
        if index.origin == "pk" and plain:
            return  # PRIMARY KEY in CREATE TABLE
        if index.origin == "u" and plain and index.where is None:
            plan.uniques.append(tuple(k.column for k in index.keys if k.column is not None))
            return
        keys: list[str] = []
        reasons: list[str] = []
        human: list[str] = []
        for key in index.keys:
            tr = translate_index_key(key.expression, key.column, key.collation, info)
            if not tr.ok or tr.sql is None:
                human += tr.reasons
                continue
            order = " DESC" if key.desc else ""
            keys.append(tr.sql + order)
            reasons += [r for r in tr.reasons if r not in reasons]
            if key.desc:
                col = info.column(key.column) if key.column else None
                nullable = col is None or not table.column(col.name).not_null
                reasons.append(
                    f"{key.column or key.expression} DESC kept"
                    + (
                        "; NULLs come first in PostgreSQL's DESC (last in SQLite's), so "
                        "ORDER BY ... DESC queries written for PostgreSQL use the index"
                        if nullable
                        else ""
                    )
                )
            if key.expression is not None:
                reasons.append(f"expression key {key.expression} -> {tr.sql}")
        where = None
        if index.where is not None:
            tr = translate_expression(index.where, info, "predicate")
            if tr.ok and tr.sql is not None:
                where = tr.sql
                reasons.append(f"partial index: WHERE {index.where} -> WHERE {tr.sql}")
                reasons += [r for r in tr.reasons if r not in reasons]
            else:
                human += tr.reasons
        if index.origin in ("u", "pk"):
            kind = "PRIMARY KEY" if index.origin == "pk" else "UNIQUE constraint"
            reasons.insert(
                0,
                f"{kind} with a collation PostgreSQL lacks: a unique index on the folded keys "
                "keeps the uniqueness SQLite enforced",
            )
            if index.origin == "pk":
                plain_keys = tuple(k.column for k in index.keys if k.column is not None)
                if len(plain_keys) != len(index.keys):
                    human.append("primary key on expressions")
        status: Literal["ok", "human"] = "human" if human else "ok"
        name = index.name
        if index.origin in ("u", "pk"):
            name = derived_name(table.name, *(k.column or "expr" for k in index.keys), suffix="key")
        plan.indexes.append(
            PlanIndex(
                name,
                table.name,
                index.unique,
                keys,
                where,
                status,
                human or reasons,
                index.sql,
            )
        )
        if human:
            self.human.append(
                HumanItem("index", index.name, "; ".join(human), table.name, index.sql)
            )

    def _unique_sets(self, table: SourceTable) -> list[set[str]]:
        """Column sets PostgreSQL will hold a unique constraint or plain unique index on."""
        sets = [set(table.primary_key)] if table.primary_key else []
        for index in table.indexes:
            if (
                index.unique
                and index.where is None
                and all(k.column is not None and k.collation == "BINARY" for k in index.keys)
            ):
                sets.append({k.column for k in index.keys if k.column is not None})
        return sets

    def _foreign_keys(self, table: SourceTable) -> list[PlanForeignKey]:
        out: list[PlanForeignKey] = []
        used: set[str] = set()
        for fk in table.foreign_keys:
            reasons: list[str] = []
            try:
                parent = self.schema.table(fk.ref_table)
            except KeyError:
                parent = None
            ref_cols: tuple[str, ...] = ()
            if parent is None:
                reasons.append(f"references {fk.ref_table}, which is no table in this database")
            elif any(c is None for c in fk.ref_columns):
                if not parent.primary_key:
                    reasons.append(f"references the rowid of {parent.name}, which has no key")
                ref_cols = parent.primary_key
            else:
                ref_cols = tuple(parent.column(c).name for c in fk.ref_columns if c is not None)
            if parent is not None and ref_cols:
                if set(ref_cols) not in self._unique_sets(parent):
                    reasons.append(
                        f"PostgreSQL needs a primary key or unique constraint on "
                        f"{parent.name} ({', '.join(ref_cols)}); SQLite only checks at write time"
                    )
                for child, ref in zip(fk.columns, ref_cols, strict=False):
                    a = self.casts[table.name][table.column(child).name].pg_type
                    b = self.casts[parent.name][ref].pg_type
                    if a != b and not {a, b} <= _INTEGER_TYPES:
                        reasons.append(f"{child} is {a} but {parent.name}.{ref} is {b}")
            actions = {fk.on_delete.upper(), fk.on_update.upper()}
            if not actions <= _FK_ACTIONS:
                reasons.append(f"unknown action in {sorted(actions - _FK_ACTIONS)}")
            name = derived_name(table.name, *fk.columns, suffix="fkey")
            n = 2
            while name in used:
                name = derived_name(table.name, *fk.columns, str(n), suffix="fkey")
                n += 1
            used.add(name)
            status: Literal["ok", "human"] = "human" if reasons else "ok"
            plan_fk = PlanForeignKey(
                name=name,
                table=table.name,
                columns=tuple(table.column(c).name for c in fk.columns),
                ref_table=parent.name if parent else fk.ref_table,
                ref_columns=ref_cols,
                on_delete=fk.on_delete.upper(),
                on_update=fk.on_update.upper(),
                deferred=fk.deferred,
                status=status,
                reasons=reasons,
            )
            out.append(plan_fk)
            if reasons:
                self.human.append(
                    HumanItem(
                        "foreign key",
                        f"{table.name} ({', '.join(fk.columns)}) -> {fk.ref_table}",
                        "; ".join(reasons),
                        table.name,
                    )
                )
        return out

    # -- views ---------------------------------------------------------------------------
    def _views(self) -> list[PlanView]:
        relations = dict(self.infos)
        blocked: set[str] = set()
        views: list[PlanView] = []
        for view in self.schema.views:
            if view.problem:
                tr = Translation(view.sql, None, "human", (view.problem,))
            else:
                tr = translate_view(view.sql, relations)
                depends = _referenced(view.sql) & blocked
                if tr.ok and depends:
                    tr = Translation(
                        view.sql,
                        None,
                        "human",
                        (f"reads view(s) {sorted(depends)}, which need a human first",),
                    )
            views.append(PlanView(view.name, view.columns, tr))
            relations[ascii_lower(view.name)] = TableInfo.of(
                view.name, [ColumnInfo(c, "unknown") for c in view.columns]
            )
            if not tr.ok:
                blocked.add(ascii_lower(view.name))
                self.human.append(
                    HumanItem("view", view.name, "; ".join(tr.reasons), None, view.sql)
                )
        return views

    def _names(self, tables: list[PlanTable], views: list[PlanView]) -> None:
        """PostgreSQL cuts names at 63 bytes: say so, and catch the collisions it causes."""
        relations: dict[str, str] = {}
        for name, table in (
            *((t.name, None) for t in tables),
            *((v.name, None) for v in views),
            *((i.name, t.name) for t in tables for i in t.indexes if i.sql),
        ):
            short = truncated_pg_name(name)
            if short != name:
                self.human.append(
                    HumanItem(
                        "name",
                        name,
                        f"longer than {PG_MAX_IDENTIFIER_BYTES} bytes: PostgreSQL keeps "
                        f"{short!r}; rename it in SQLite or edit this plan",
                        table,
                    )
                )
            clash = relations.get(short)
            if clash is not None:
                self.human.append(
                    HumanItem(
                        "name",
                        name,
                        f"collides with {clash!r} in PostgreSQL once cut to 63 bytes",
                        table,
                    )
                )
            relations[short] = name
        for t in tables:
            seen: dict[str, str] = {}
            for c in t.columns:
                short = truncated_pg_name(c.name)
                if short != c.name or short in seen:
                    self.human.append(
                        HumanItem(
                            "name",
                            f"{t.name}.{c.name}",
                            f"PostgreSQL keeps {short!r} (63 bytes)"
                            + (f", the same as {seen[short]!r}" if short in seen else ""),
                            t.name,
                        )
                    )
                seen[short] = c.name


def _referenced(view_sql: str) -> set[str]:
    """Lower-case names of the relations a view's SQL reads (best effort, for ordering)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(view_sql, read="sqlite")
    except SqlglotError:
        return set()
    select = tree.args.get("expression") if isinstance(tree, exp.Create) else tree
    if select is None:
        return set()
    return {ascii_lower(t.name) for t in select.find_all(exp.Table)}


# -- rendering ------------------------------------------------------------------------------


def _storage_text(profile: ColumnProfile | None) -> str:
    if profile is None or not profile.rows:
        return "-"
    parts = [f"{k} {v:,}" for k, v in profile.storage.items() if v]
    if profile.nulls:
        parts.append(f"null {profile.nulls:,}")
    return ", ".join(parts)


def render_plan(plan: Plan, console: Console) -> None:
    """Print the plan as rich tables: casts per table, indexes, and what needs a human."""
    # Names come from the source database: Text() keeps rich from reading them as markup.
    head = Text("Migration plan", style="bold")
    head.append(
        f" for {plan.source} (SQLite {plan.sqlite_version}), {len(plan.tables)} tables, "
        f"{len(plan.views)} views, planned in {plan.seconds:.1f} s",
        style="",
    )
    console.print(head)
    for table in plan.tables:
        rows = "?" if table.rows is None else f"{table.rows:,}"
        grid = Table(title=Text(f"{table.name} ({rows} rows)"), title_justify="left")
        grid.add_column("column")
        grid.add_column("SQLite type")
        grid.add_column("stored")
        grid.add_column("PostgreSQL")
        grid.add_column("rejects", justify="right")
        grid.add_column("reason")
        for col in table.columns:
            cast = col.cast
            grid.add_row(
                Text(col.name),
                Text(col.declared_type or "-"),
                Text(_storage_text(col.profile)),
                Text(cast.ddl_type.replace(" GENERATED BY DEFAULT AS IDENTITY", " identity")),
                Text(f"{cast.rejects:,}" if cast.rejects else "", style="bold red"),
                Text(cast.reason),
            )
        console.print(grid)
    indexes = Table(title="indexes", title_justify="left")
    indexes.add_column("index")
    indexes.add_column("table")
    indexes.add_column("PostgreSQL")
    indexes.add_column("why")
    for table in plan.tables:
        for index in table.indexes:
            indexes.add_row(
                Text(index.name),
                Text(table.name),
                Text(index.sql or "needs a human", style="" if index.sql else "bold red"),
                Text("; ".join(index.reasons)),
            )
    console.print(indexes)
    if plan.human:
        todo = Table(title="needs a human (not in the DDL)", title_justify="left")
        todo.add_column("kind")
        todo.add_column("object")
        todo.add_column("why")
        for item in plan.human:
            todo.add_row(Text(item.kind), Text(item.name), Text(item.reason))
        console.print(todo)
    if plan.review:
        console.print(Text(f"{len(plan.review)} decisions to review (see the SQL file header)"))
