"""Schema parity and target integrity: what the plan says PostgreSQL should hold, checked
against PostgreSQL's catalog, and the rules the data must keep there.

Schema: every planned table and column (type, NOT NULL, default), CHECK constraints,
primary key, UNIQUE constraints, foreign keys (columns, target, actions), indexes (unique,
partial, expression keys, DESC) and views. Integrity: no orphan rows for any planned foreign
key, every identity's sequence past the largest id, no NULL where the plan says NOT NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from migrate.names import pg_ident, truncated_pg_name
from migrate.plan import Plan, PlanIndex, PlanTable

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_TYPE_ALIASES = {
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "varchar": "character varying",
    "char": "character",
}


@dataclass
class Finding:
    """One check: where, what, whether it passed, and what was found."""

    section: str  # schema, counts, profiles, rows, integrity, queries
    table: str
    check: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class PgColumn:
    """A column as PostgreSQL's catalog has it."""

    name: str
    pg_type: str
    not_null: bool
    default: str | None
    identity: bool


def _normal_type(pg_type: str) -> str:
    base = pg_type.strip().lower().replace(", ", ",")
    for short, long in _TYPE_ALIASES.items():
        if base == short or base.startswith(short + "("):
            return long + base[len(short) :]
    return base


def pg_columns(pg: psycopg.Connection[Any], schema: str) -> dict[str, list[PgColumn]]:
    """table -> its columns in order, for every table of ``schema``."""
    rows = pg.execute(
        """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0
             AND NOT a.attisdropped
           ORDER BY c.relname, a.attnum""",
        (schema,),
    ).fetchall()
    out: dict[str, list[PgColumn]] = {}
    for table, name, pg_type, not_null, default, identity in rows:
        out.setdefault(table, []).append(
            PgColumn(name, pg_type, bool(not_null), default, bool(identity))
        )
    return out


def schema_findings(
    pg: psycopg.Connection[Any], schema: str, plan: Plan, tables: list[PlanTable]
) -> list[Finding]:
    """Compare the planned schema with the catalog, table by table."""
    columns = pg_columns(pg, schema)
    constraints = _constraints(pg, schema)
    indexes = _indexes(pg, schema)
    out: list[Finding] = []
    for table in tables:
        name = truncated_pg_name(table.name)
        if name not in columns:
            out.append(Finding("schema", table.name, "table", False, "missing on the target"))
            continue
        out += _columns(table, columns[name])
        out += _keys(table, constraints.get(name, []))
        out += [_index(table, index, indexes) for index in table.indexes if index.sql]
    views = {
        r[0]
        for r in pg.execute(
            "SELECT viewname FROM pg_views WHERE schemaname = %s", (schema,)
        ).fetchall()
    }
    for view in plan.views:
        if view.sql is None:
            continue
        there = truncated_pg_name(view.name) in views
        out.append(Finding("schema", view.name, "view", there, "" if there else "missing"))
    return out


def _columns(table: PlanTable, actual: list[PgColumn]) -> list[Finding]:
    out = []
    by_name = {c.name: c for c in actual}
    for col in table.columns:
        found = by_name.get(truncated_pg_name(col.name))
        check = f"column {col.name}"
        if found is None:
            out.append(Finding("schema", table.name, check, False, "missing on the target"))
            continue
        problems = []
        want = _normal_type(col.cast.pg_type)
        if _normal_type(found.pg_type) != want:
            problems.append(f"type {found.pg_type}, expected {want}")
        want_not_null = col.not_null or col.name in table.primary_key or col.cast.identity
        if want_not_null and not found.not_null:
            problems.append("NOT NULL missing")
        if col.cast.identity and not found.identity:
            problems.append("not an identity column")
        wants_default = (
            col.default is not None and col.default.ok and col.default.sql and not col.cast.identity
        )
        if wants_default and found.default is None:
            problems.append(f"default missing (expected {col.default.sql if col.default else ''})")
        out.append(Finding("schema", table.name, check, not problems, "; ".join(problems)))
    return out


def _constraints(pg: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    rows = pg.execute(
        """SELECT c.relname, k.contype::text, k.conname,
                  ARRAY(SELECT attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                        ORDER BY u.o),
                  f.relname,
                  ARRAY(SELECT attname FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                        JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                        ORDER BY u.o),
                  k.confdeltype::text, k.confupdtype::text
           FROM pg_constraint k
           JOIN pg_class c ON c.oid = k.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_class f ON f.oid = k.confrelid
           WHERE n.nspname = %s""",
        (schema,),
    ).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, *rest in rows:
        out.setdefault(table, []).append(tuple(rest))
    return out


def _keys(table: PlanTable, found: list[tuple[Any, ...]]) -> list[Finding]:
    out = []
    kinds = [(kind, tuple(cols)) for kind, _n, cols, *_ in found]
    if table.primary_key:
        ok = ("p", tuple(truncated_pg_name(c) for c in table.primary_key)) in kinds
        out.append(
            Finding(
                "schema",
                table.name,
                "primary key",
                ok,
                "" if ok else f"PRIMARY KEY ({', '.join(table.primary_key)}) missing",
            )
        )
    for unique in table.uniques:
        ok = ("u", tuple(truncated_pg_name(c) for c in unique)) in kinds
        out.append(
            Finding(
                "schema",
                table.name,
                f"unique ({', '.join(unique)})",
                ok,
                "" if ok else "missing",
            )
        )
    checks_wanted = sum(1 for c in table.checks if c.translation.ok)
    checks_found = sum(1 for kind, *_ in found if kind == "c")
    out.append(
        Finding(
            "schema",
            table.name,
            "check constraints",
            checks_found >= checks_wanted,
            f"{checks_found} of {checks_wanted}",
        )
    )
    fks = {
        (tuple(cols), ref, tuple(ref_cols)): (d, u)
        for kind, _n, cols, ref, ref_cols, d, u in found
        if kind == "f"
    }
    for fk in table.foreign_keys:
        if fk.sql is None:
            continue
        key = (
            tuple(truncated_pg_name(c) for c in fk.columns),
            truncated_pg_name(fk.ref_table),
            tuple(truncated_pg_name(c) for c in fk.ref_columns),
        )
        check = f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}"
        actions = fks.get(key)
        if actions is None:
            out.append(Finding("schema", table.name, check, False, "missing"))
            continue
        got = (_ACTIONS.get(actions[0], actions[0]), _ACTIONS.get(actions[1], actions[1]))
        ok = got == (fk.on_delete, fk.on_update)
        detail = "" if ok else f"ON DELETE {got[0]} ON UPDATE {got[1]}, expected {fk.on_delete}"
        out.append(Finding("schema", table.name, check, ok, detail))
    return out


def _indexes(pg: psycopg.Connection[Any], schema: str) -> dict[str, tuple[Any, ...]]:
    rows = pg.execute(
        """SELECT i.relname, x.indisunique, x.indpred IS NOT NULL, x.indexprs IS NOT NULL,
                  x.indnkeyatts, x.indoption::int2[]
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_namespace n ON n.oid = i.relnamespace
           WHERE n.nspname = %s""",
        (schema,),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _index(table: PlanTable, index: PlanIndex, found: dict[str, tuple[Any, ...]]) -> Finding:
    check = f"index {index.name}"
    actual = found.get(truncated_pg_name(index.name))
    if actual is None:
        return Finding("schema", table.name, check, False, "missing")
    unique, partial, expressions, nkeys, options = actual
    problems = []
    if bool(unique) != index.unique:
        problems.append("unique" if index.unique else "unexpectedly unique")
    if bool(partial) != (index.where is not None):
        problems.append("partial predicate missing" if index.where else "unexpected predicate")
    wants_expr = any(not k.split(" ")[0].startswith('"') for k in index.keys)
    if wants_expr and not expressions:
        problems.append("expression key missing")
    if nkeys != len(index.keys):
        problems.append(f"{nkeys} keys, expected {len(index.keys)}")
    desc_wanted = [k.endswith(" DESC") for k in index.keys]
    desc_found = [bool(int(o) & 1) for o in (options or [])][: len(desc_wanted)]
    if desc_found and desc_found != desc_wanted:
        problems.append("key order (DESC) differs")
    return Finding("schema", table.name, check, not problems, "; ".join(problems))


# -- integrity ------------------------------------------------------------------------------


def integrity_findings(
    pg: psycopg.Connection[Any],
    schema: str,
    tables: list[PlanTable],
    present: dict[str, set[str]],
) -> list[Finding]:
    """Orphans for every planned foreign key, identity sequences, NULLs in NOT NULL columns.
    ``present`` maps each table on the target to its columns: what is missing there is the
    schema section's finding, not checked here."""
    s = pg_ident(schema)
    out: list[Finding] = []
    for table in tables:
        columns = present.get(truncated_pg_name(table.name))
        if columns is None:
            continue
        t = f"{s}.{pg_ident(table.name)}"
        for fk in table.foreign_keys:
            parent = present.get(truncated_pg_name(fk.ref_table), set())
            if (
                fk.sql is None
                or not {truncated_pg_name(c) for c in fk.columns} <= columns
                or not {truncated_pg_name(c) for c in fk.ref_columns} <= parent
            ):
                continue
            p = f"{s}.{pg_ident(fk.ref_table)}"
            filled = " AND ".join(f"c.{pg_ident(col)} IS NOT NULL" for col in fk.columns)
            match = " AND ".join(
                f"r.{pg_ident(rc)} = c.{pg_ident(col)}"
                for col, rc in zip(fk.columns, fk.ref_columns, strict=True)
            )
            (n,) = pg.execute(
                f"SELECT count(*) FROM {t} c WHERE {filled} AND NOT EXISTS "  # noqa: S608
                f"(SELECT 1 FROM {p} r WHERE {match})".encode()
            ).fetchone() or (0,)
            out.append(
                Finding(
                    "integrity",
                    table.name,
                    f"orphans ({', '.join(fk.columns)}) -> {fk.ref_table}",
                    n == 0,
                    f"{n} orphan rows" if n else "",
                )
            )
        for col in table.columns:
            if truncated_pg_name(col.name) not in columns:
                continue
            if col.cast.identity:
                out.append(_sequence(pg, t, table.name, col.name))
            elif col.not_null:
                (n,) = pg.execute(
                    f"SELECT count(*) FROM {t} WHERE {pg_ident(col.name)} IS NULL".encode()  # noqa: S608
                ).fetchone() or (0,)
                if n:
                    out.append(
                        Finding(
                            "integrity", table.name, f"NOT NULL {col.name}", False, f"{n} NULLs"
                        )
                    )
    return out


def _sequence(pg: psycopg.Connection[Any], t: str, table: str, column: str) -> Finding:
    check = f"sequence of {column}"
    row = pg.execute("SELECT pg_get_serial_sequence(%s, %s)", (t, column)).fetchone()
    if not row or row[0] is None:
        return Finding("integrity", table, check, False, "no sequence")
    sequence = row[0]
    last, called, maximum = pg.execute(
        f"SELECT s.last_value, s.is_called, (SELECT max({pg_ident(column)}) FROM {t}) "  # noqa: S608
        f"FROM {sequence} s".encode()
    ).fetchone() or (None, None, None)
    next_value = None if last is None else (last + 1 if called else last)
    ok = maximum is None or (next_value is not None and next_value > maximum)
    detail = "" if ok else f"next value {next_value} but the largest {column} is {maximum}"
    return Finding("integrity", table, check, ok, detail)
