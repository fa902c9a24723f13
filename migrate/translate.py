"""SQLite expressions to PostgreSQL: defaults, CHECKs, index keys and predicates, views.

sqlglot does the dialect work (functions, operators, quoting). On top of it this module does
what a dialect change cannot know, because it depends on the *target types* the plan chose:

- a 0/1 comparison on a column that becomes ``boolean`` (``is_retracted = 0`` becomes
  ``NOT is_retracted``; a boolean used as a number becomes ``CAST(... AS INT)``);
- ``COLLATE NOCASE`` (no built-in PostgreSQL equivalent) becomes ``lower()`` on both sides
  of a comparison, in an ORDER BY, or as an index key;
- SQLite's ``LIKE`` ignores ASCII case: it becomes ``ILIKE``;
- names are matched case-insensitively, as SQLite does, and written with the catalog's
  spelling, quoted.

What it cannot translate with confidence (SQLite date functions over columns, GLOB, typeof,
functions sqlglot does not map) comes back with ``status == "human"`` and the reason: never
a guess, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

Status = Literal["ok", "dropped", "human"]
Kind = Literal["check", "predicate", "index_key", "generated", "view"]


@dataclass(frozen=True)
class ColumnInfo:
    """What a translation needs to know about a column: its name and target type."""

    name: str  # the catalog's spelling
    pg_type: str  # the PostgreSQL type the plan gives it
    collation: str | None = None  # the column's declared SQLite collation (NOCASE, RTRIM)


@dataclass(frozen=True)
class TableInfo:
    """A table (or view) whose columns expressions may name."""

    name: str
    columns: Mapping[str, ColumnInfo]  # keyed by lower-case name

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name``, matched as SQLite does (ASCII case-insensitive)."""
        return self.columns.get(ascii_lower(name))

    @classmethod
    def of(cls, name: str, columns: Iterable[ColumnInfo]) -> TableInfo:
        """Build from a list of columns."""
        return cls(name, {ascii_lower(c.name): c for c in columns})


@dataclass(frozen=True)
class Translation:
    """A translated expression or statement.

    ``status`` is ``ok`` (``sql`` holds PostgreSQL), ``dropped`` (nothing is needed in
    PostgreSQL, ``reasons`` says why) or ``human`` (``reasons`` says what a person must do).
    """

    source: str
    sql: str | None
    status: Status
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when ``sql`` is usable PostgreSQL."""
        return self.status == "ok"


class UntranslatableError(Exception):
    """Raised inside a translation when something cannot be translated with confidence."""


def ascii_lower(name: str) -> str:
    """SQLite folds only ASCII letters when it compares names."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

BOOLEAN_TYPES = frozenset({"boolean", "bool"})
TIME_TYPES = frozenset({"timestamp", "timestamptz", "date"})
JSON_TYPES = frozenset({"json", "jsonb"})

# Functions sqlglot leaves as they are written that exist in PostgreSQL with the same meaning.
_SAME_FUNCTIONS = frozenset(
    {"lower", "upper", "length", "abs", "coalesce", "nullif", "trim", "ltrim", "rtrim"}
    | {"replace", "round", "sign", "sqrt", "exp", "ln", "power", "floor", "ceil", "ceiling"}
)
# sqlglot expression types whose SQLite meaning PostgreSQL does not share (or that sqlglot
# renders as SQLite functions PostgreSQL lacks): a human decides.
_UNTRANSLATABLE: dict[type[exp.Expr], str] = {
    exp.Glob: "GLOB has no PostgreSQL operator (rewrite as LIKE or a regular expression)",
    exp.Typeof: "typeof() reports SQLite storage classes; PostgreSQL's types make it moot",
    exp.TimeToStr: "strftime() formats differ from PostgreSQL's to_char()",
    exp.StrToTime: "SQLite date parsing differs from PostgreSQL's",
    exp.Date: "SQLite's date() works on text; the column's PostgreSQL type changes that",
    exp.JSONExtract: "json_extract() returns SQL values in SQLite, jsonb in PostgreSQL",
    exp.JSONExtractScalar: "SQLite's JSON operators return typed values, PostgreSQL's text",
}
_NOW_FUNCTIONS = frozenset({"datetime", "julianday", "unixepoch", "time"})
_UTC_NOW = "CURRENT_TIMESTAMP AT TIME ZONE 'UTC'"
_MODIFIER = re.compile(
    r"\s*([+-]?\d+(?:\.\d+)?)\s+(second|minute|hour|day|month|year)s?\s*", re.IGNORECASE
)


def _parse(text: str) -> exp.Expr:
    try:
        tree = sqlglot.parse_one(text, read="sqlite")
    except SqlglotError as exc:
        raise UntranslatableError(f"sqlglot cannot parse it ({_first_line(exc)})") from None
    if tree is None or isinstance(tree, exp.Command):
        raise UntranslatableError("sqlglot cannot parse it")
    return tree


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _is_int_literal(node: exp.Expr, *values: int) -> bool:
    if isinstance(node, exp.Boolean):
        return int(bool(node.this)) in values
    if isinstance(node, exp.Neg):
        return False
    return (
        isinstance(node, exp.Literal)
        and not node.is_string
        and node.this.isdigit()
        and int(node.this) in values
    )


def _bool_of(node: exp.Expr) -> int:
    if isinstance(node, exp.Boolean):
        return int(bool(node.this))
    return int(node.this)


def _info(node: exp.Expr) -> ColumnInfo | None:
    value = node.meta.get("column")
    return value if isinstance(value, ColumnInfo) else None


def _typed(node: exp.Expr, types: frozenset[str]) -> ColumnInfo | None:
    """The column ``node`` is, when it is a column of one of ``types``."""
    if not isinstance(node, exp.Column):
        return None
    info = _info(node)
    return info if info is not None and info.pg_type in types else None


@dataclass
class _Rewrite:
    """The type-aware rewrites, applied in place under a holder node.

    The holder lets a rewrite replace the whole expression like any inner node (sqlglot's
    ``replace`` cannot swap a tree's root in the caller's variable).
    """

    kind: Kind
    reasons: list[str] = field(default_factory=list)
    holder: exp.Expr = field(default_factory=lambda: exp.Paren(this=exp.Null()))

    def note(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def hold(self, tree: exp.Expr) -> exp.Expr:
        """Put ``tree`` under the holder; return the holder."""
        self.holder.set("this", tree)
        return self.holder

    def is_root(self, node: exp.Expr) -> bool:
        """True when ``node`` is the whole expression."""
        return node.parent is self.holder

    # -- COLLATE -----------------------------------------------------------------------
    def collations(self, tree: exp.Expr) -> exp.Expr:
        comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Like)
        for node in list(tree.find_all(*comparisons)):
            operands = [node.this, node.expression] if "expression" in node.args else [node.this]
            operands += list(node.args.get("expressions") or [])
            coll = next((c for c in map(_collation_of, operands) if c), None)
            if coll is None or coll == "BINARY":
                for op in operands:
                    _strip_collate(op)
                continue
            for op in operands:
                if op is not None:
                    current = _strip_collate(op)
                    current.replace(self._fold(current, coll))
        for ordered in list(tree.find_all(exp.Ordered)):
            coll = _collation_of(ordered.this)
            if coll and coll != "BINARY":
                ordered.set("this", self._fold(_strip_collate(ordered.this), coll))
        for collate in list(tree.find_all(exp.Collate)):
            coll = _collate_name(collate)
            if coll == "BINARY":
                collate.replace(collate.this)
            else:
                collate.replace(self._fold(collate.this, coll))
        return tree

    def _fold(self, node: exp.Expr, collation: str) -> exp.Expr:
        while isinstance(node, exp.Paren):
            node = node.this
        if collation == "NOCASE":
            if isinstance(node, exp.Lower):
                return node.copy()  # already folded: lower(lower(x)) adds nothing
            self.note(
                "COLLATE NOCASE has no PostgreSQL built-in: compared through lower() "
                "(which also folds non-ASCII letters, where NOCASE folds ASCII only)"
            )
            return exp.Lower(this=node.copy())
        if collation == "RTRIM":
            self.note("COLLATE RTRIM becomes rtrim() on the compared values")
            return exp.Anonymous(this="rtrim", expressions=[node.copy()])
        raise UntranslatableError(
            f"collation {collation} is an application-defined SQLite collation"
        )

    # -- booleans ------------------------------------------------------------------------
    def booleans(self, tree: exp.Expr) -> exp.Expr:
        for node in list(tree.find_all(exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ)):
            left, right = node.this, node.expression
            col, lit = (left, right) if _typed(left, BOOLEAN_TYPES) else (right, left)
            if not _typed(col, BOOLEAN_TYPES):
                continue
            if _typed(lit, BOOLEAN_TYPES):
                continue  # boolean against boolean: fine as it is
            if not _is_int_literal(lit, 0, 1):
                if isinstance(lit, exp.Literal) and lit.is_string:
                    raise UntranslatableError(
                        f"{col.sql('sqlite')} becomes boolean but is compared with text "
                        f"{lit.sql('sqlite')}"
                    )
                continue  # compared with an expression: cast below
            truth = _bool_of(lit) == 1
            if isinstance(node, exp.NEQ | exp.NullSafeNEQ):
                truth = not truth
            column = col.copy()
            if isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ):
                # IS / IS NOT keep NULL apart: col IS NOT 0 is "true or NULL".
                new: exp.Expr = exp.Is(this=column, expression=exp.Boolean(this=_bool_of(lit) == 1))
                if isinstance(node, exp.NullSafeNEQ):
                    new = exp.Not(this=exp.Paren(this=new))
            else:
                new = column if truth else exp.Not(this=column)
            self.note(f"{node.sql('sqlite')} on a boolean column becomes {new.sql('postgres')}")
            node.replace(new)
        for member in list(tree.find_all(exp.In)):
            col = member.this
            values = member.args.get("expressions") or []
            if not _typed(col, BOOLEAN_TYPES) or not values:
                continue
            if not all(_is_int_literal(v, 0, 1) for v in values):
                continue
            wanted = {_bool_of(v) for v in values}
            if wanted == {0, 1}:
                if self.is_root(member) and self.kind == "check":
                    raise _AlwaysTrueError(
                        f"{member.sql('sqlite')} holds for every value of a boolean column: "
                        "the type itself enforces it"
                    )
                new = exp.Is(this=col.copy(), expression=exp.Not(this=exp.Null()))
                new = exp.Paren(this=exp.Or(this=new, expression=exp.Null()))
            else:
                new = col.copy() if wanted == {1} else exp.Not(this=col.copy())
            self.note(f"{member.sql('sqlite')} on a boolean column becomes {new.sql('postgres')}")
            member.replace(new)
        for column in list(tree.find_all(exp.Column)):
            if _typed(column, BOOLEAN_TYPES) and not _boolean_context(column):
                self.note(
                    f"{column.sql('sqlite')} is boolean in PostgreSQL: cast to integer where "
                    "SQLite used it as a number"
                )
                column.replace(exp.cast(column.copy(), "INT"))
        return tree

    # -- columns whose type changes from text ----------------------------------------------
    def retyped(self, tree: exp.Expr) -> exp.Expr:
        for node in list(tree.find_all(exp.Column)):
            info = _info(node)
            if info is None:
                continue
            if info.pg_type in JSON_TYPES:
                parent = _up(node)
                if isinstance(parent, exp.Anonymous) and parent.name.lower() == "json_valid":
                    if self.is_root(parent) and self.kind == "check":
                        raise _AlwaysTrueError(f"{info.pg_type} holds only valid JSON")
                    self.note(f"json_valid({info.name}) is always true for {info.pg_type}")
                    parent.replace(exp.Boolean(this=True))
                    continue
            if (info.pg_type in TIME_TYPES | JSON_TYPES) and not _plain_context(node):
                raise UntranslatableError(
                    f"{info.name} becomes {info.pg_type}: the SQLite text or date function "
                    "applied to it needs rewriting for that type"
                )
        return tree

    # -- functions -------------------------------------------------------------------------
    def functions(self, tree: exp.Expr) -> exp.Expr:
        for like in list(tree.find_all(exp.Like)):
            self.note("SQLite's LIKE ignores ASCII case: ILIKE keeps that")
            like.replace(exp.ILike(this=like.this.copy(), expression=like.expression.copy()))
        for node in list(tree.find_all(exp.Anonymous, exp.CurrentTimestamp, exp.CurrentDate)):
            name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
            if isinstance(node, exp.CurrentTimestamp | exp.CurrentDate) or name in _NOW_FUNCTIONS:
                node.replace(self._now(node))
            elif isinstance(node, exp.Anonymous) and name not in _SAME_FUNCTIONS:
                raise UntranslatableError(
                    f"SQLite function {node.name}() has no PostgreSQL equivalent sqlglot knows"
                )
        for kind, why in _UNTRANSLATABLE.items():
            found = tree.find(kind)
            if found is not None:
                raise UntranslatableError(f"{found.sql('sqlite')}: {why}")
        return tree

    def _now(self, node: exp.Expr) -> exp.Expr:
        """SQLite's 'now' in UTC, typed for comparison with a timestamp column."""
        if self.kind in ("index_key", "predicate", "generated"):
            raise UntranslatableError(
                "uses the current time, which PostgreSQL does not allow in an index or a "
                "generated column (the function must be immutable)"
            )
        args = [a for a in node.args.get("expressions") or []]
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.CurrentDate):
            raise UntranslatableError("CURRENT_DATE is text in SQLite and a date in PostgreSQL")
        if name and name != "datetime":
            raise UntranslatableError(f"{node.sql('sqlite')} has no exact PostgreSQL equivalent")
        if args and not (isinstance(args[0], exp.Literal) and args[0].name.lower() == "now"):
            raise UntranslatableError(f"{node.sql('sqlite')} is SQLite date arithmetic on a value")
        other = _compared_with(node)
        target = _typed(other, frozenset({"timestamp", "timestamptz"})) if other else None
        if target is None:
            raise UntranslatableError(
                f"{node.sql('sqlite')} is UTC text in SQLite; here it is not compared with a "
                "timestamp column, so its PostgreSQL type is unclear"
            )
        # An instant for timestamptz; UTC wall time for timestamp, as SQLite stored it.
        sql = "CURRENT_TIMESTAMP" if target.pg_type == "timestamptz" else _UTC_NOW
        for modifier in args[1:]:
            match = (
                _MODIFIER.fullmatch(modifier.name) if isinstance(modifier, exp.Literal) else None
            )
            if match is None:
                raise UntranslatableError(
                    f"date modifier {modifier.sql('sqlite')} is not translated"
                )
            amount, unit = match.groups()
            sign = "-" if amount.startswith("-") else "+"
            sql = f"({sql}) {sign} INTERVAL '{amount.lstrip('+-')} {unit.lower()}s'"
        self.note(f"{node.sql('sqlite')} (UTC text) becomes {sql}, a UTC timestamp like the column")
        return sqlglot.parse_one(sql, read="postgres")


class _AlwaysTrueError(Exception):
    """The whole expression holds for every value the target type admits."""


def _up(node: exp.Expr) -> exp.Expr:
    """The nearest ancestor that is not a parenthesis; ``node`` itself at the top."""
    parent = node.parent
    while isinstance(parent, exp.Paren) and parent.parent is not None:
        parent = parent.parent
    if parent is None or (isinstance(parent, exp.Paren) and parent.parent is None):
        return node  # the holder: node is the whole expression
    return parent


def _compared_with(node: exp.Expr) -> exp.Expr | None:
    """The other operand when ``node`` is one side of a comparison (arithmetic allowed)."""
    current: exp.Expr = node
    parent = current.parent
    while isinstance(parent, exp.Paren | exp.Add | exp.Sub):
        current, parent = parent, parent.parent
    if isinstance(parent, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        return _expr(parent.expression if parent.this is current else parent.this)
    if isinstance(parent, exp.Between):
        return _expr(parent.this)
    return None


def _expr(value: object) -> exp.Expr:
    """``value`` as an expression: sqlglot's node arguments are typed loosely."""
    if not isinstance(value, exp.Expr):
        raise UntranslatableError(f"unexpected SQL structure ({type(value).__name__})")
    return value


def _boolean_context(node: exp.Expr) -> bool:
    """True where PostgreSQL accepts a boolean as it is (conditions, projections, ORDER BY)."""
    parent = _up(node)
    safe = (
        exp.And,
        exp.Or,
        exp.Not,
        exp.Where,
        exp.Having,
        exp.Join,
        exp.Is,
        exp.Select,
        exp.Alias,
        exp.Ordered,
        exp.Group,
        exp.Count,
        exp.Distinct,
        exp.If,
    )
    if isinstance(parent, safe):
        return True
    if isinstance(parent, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.NullSafeNEQ):
        other = parent.expression if parent.this is node else parent.this
        return _typed(other, BOOLEAN_TYPES) is not None
    return parent is node  # the whole expression is the column


def _plain_context(node: exp.Expr) -> bool:
    """True where a column keeps its meaning whatever its type (compare, project, order)."""
    parent = _up(node)
    plain = (
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.Between,
        exp.In,
        exp.Is,
        exp.Select,
        exp.Alias,
        exp.Ordered,
        exp.Group,
        exp.Count,
        exp.Distinct,
        exp.Max,
        exp.Min,
        exp.Coalesce,
    )
    return isinstance(parent, plain) or parent is node


def _collate_name(node: exp.Collate) -> str:
    target = _expr(node.expression)
    return str(target.name or target.sql()).strip('"').upper()


def _collation_of(node: exp.Expr | None) -> str | None:
    """The collation SQLite applies to ``node``: explicit COLLATE first, then the column's."""
    if node is None:
        return None
    inner = node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, exp.Collate):
        return _collate_name(inner)
    info = _info(inner) if isinstance(inner, exp.Column) else None
    return info.collation if info is not None else None


def _strip_collate(node: exp.Expr) -> exp.Expr:
    inner = node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, exp.Collate):
        stripped = inner.this
        inner.replace(stripped)
        return stripped if inner is node else node
    return node


# -- resolving names ---------------------------------------------------------------------


def _resolve_single(tree: exp.Expr, table: TableInfo) -> list[str]:
    """Bind every column to ``table``'s catalog names; return notes on legacy string quotes."""
    notes: list[str] = []
    for col in list(tree.find_all(exp.Column)):
        qualifier = col.table
        if qualifier and ascii_lower(qualifier) != ascii_lower(table.name):
            raise UntranslatableError(
                f"refers to {qualifier}.{col.name}, outside table {table.name}"
            )
        info = table.column(col.name)
        if info is None:
            ident = col.this
            if isinstance(ident, exp.Identifier) and ident.quoted and not qualifier:
                # SQLite's legacy rule: a double-quoted name that is no column is a string.
                notes.append(
                    f"\"{col.name}\" is no column: SQLite read it as the string '{col.name}'"
                )
                col.replace(exp.Literal.string(col.name))
                continue
            if ascii_lower(col.name) in ("rowid", "oid", "_rowid_"):
                raise UntranslatableError(
                    "uses SQLite's rowid, which a PostgreSQL table does not have"
                )
            raise UntranslatableError(f"names {col.name!r}, which is no column of {table.name}")
        col.set("this", _catalog(info.name))
        col.set("table", None)
        col.meta["column"] = info
    return notes


def _resolve_view(select: exp.Expr, relations: Mapping[str, TableInfo]) -> None:
    """Bind tables and columns in every scope of a view's query to catalog names."""
    ctes = {ascii_lower(c.alias_or_name) for c in select.find_all(exp.CTE)}
    for table in list(select.find_all(exp.Table)):
        name = ascii_lower(table.name)
        if name in ctes and not table.args.get("db"):
            continue
        db = table.args.get("db")
        if db is not None and ascii_lower(db.name) not in ("main",):
            raise UntranslatableError(f"reads {db.name}.{table.name} from another SQLite database")
        rel = relations.get(name)
        if rel is None:
            raise UntranslatableError(
                f"reads {table.name}, which is no table or view being migrated"
            )
        table.set("db", None)
        table.set("this", _catalog(rel.name))
    for scope in traverse_scope(select):
        _resolve_scope(scope, relations)


def _resolve_scope(scope: Scope, relations: Mapping[str, TableInfo]) -> None:
    sources: dict[str, TableInfo | None] = {}
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table):
            sources[ascii_lower(alias)] = relations.get(ascii_lower(source.name))
        else:
            sources[ascii_lower(alias)] = None  # a subquery or CTE: its own names
    for col in scope.columns:
        if col.meta.get("column") is not None:
            continue
        found: ColumnInfo | None = None
        if col.table:
            rel = sources.get(ascii_lower(col.table))
            found = rel.column(col.name) if rel is not None else None
            if rel is not None and ascii_lower(col.table) == ascii_lower(rel.name):
                col.set("table", _catalog(rel.name))  # qualified by the table's own name
        else:
            hits = [rel.column(col.name) for rel in sources.values() if rel is not None]
            matches = [h for h in hits if h is not None]
            found = matches[0] if len(matches) == 1 else None
        if found is not None:
            col.set("this", _catalog(found.name))
            col.meta["column"] = found
    # ORDER BY may name an input column that is not projected under that name; a name that
    # is a result alias refers to the alias, as in SQLite.
    query = scope.expression
    order = query.args.get("order") if isinstance(query, exp.Select) else None
    if order is None:
        return
    aliases = {ascii_lower(e.alias) for e in query.expressions if isinstance(e, exp.Alias)}
    for col in order.find_all(exp.Column):
        if col.meta.get("column") is not None or col.table or ascii_lower(col.name) in aliases:
            continue
        hits = [rel.column(col.name) for rel in sources.values() if rel is not None]
        matches = [h for h in hits if h is not None]
        if len(matches) == 1:
            col.set("this", _catalog(matches[0].name))
            col.meta["column"] = matches[0]


def _catalog(name: str) -> exp.Identifier:
    """An identifier spelled as the catalog spells it, quoted, and marked as resolved."""
    ident = exp.to_identifier(name, quoted=True)
    ident.meta["catalog"] = True
    return ident


def _lower_aliases(tree: exp.Expr) -> None:
    """Names that are not catalog names (aliases) are folded to lower case, as SQLite
    compares them case-insensitively and PostgreSQL compares quoted names exactly."""
    for ident in list(tree.find_all(exp.Identifier)):
        if not ident.meta.get("catalog"):
            ident.set("this", ascii_lower(ident.name))
            ident.set("quoted", True)


# -- entry points --------------------------------------------------------------------------


def _run(
    source: str, kind: Kind, body: Callable[[_Rewrite], exp.Expr], *, wrap: bool = False
) -> Translation:
    rewrite = _Rewrite(kind)
    try:
        tree = body(rewrite)
        sql = tree.sql(dialect="postgres", identify=True)
    except _AlwaysTrueError as why:
        return Translation(source, None, "dropped", (str(why),))
    except UntranslatableError as why:
        return Translation(source, None, "human", (str(why),))
    except SqlglotError as exc:
        return Translation(source, None, "human", (f"sqlglot: {_first_line(exc)}",))
    return Translation(source, f"({sql})" if wrap else sql, "ok", tuple(rewrite.reasons))


def translate_expression(text: str, table: TableInfo, kind: Kind = "check") -> Translation:
    """Translate one expression over ``table``'s columns (a CHECK, a predicate, a key)."""

    def body(rewrite: _Rewrite) -> exp.Expr:
        tree = rewrite.hold(_parse(text))
        for note in _resolve_single(tree, table):
            rewrite.note(note)
        rewrite.collations(tree)
        rewrite.booleans(tree)
        rewrite.retyped(tree)
        rewrite.functions(tree)
        return _expr(tree.this)

    return _run(text, kind, body)


def translate_index_key(
    text: str | None, column: str | None, collation: str, table: TableInfo
) -> Translation:
    """One index key: a column or an expression, under the collation SQLite applies to it.

    The key comes back without ASC/DESC (the caller adds the order); an expression key is
    wrapped in parentheses as PostgreSQL requires.
    """
    source = text if text is not None else (column or "")
    if text is None and column is not None:
        info = table.column(column)
        if info is None:
            return Translation(source, None, "human", (f"no column {column!r}",))
        text = '"' + info.name.replace('"', '""') + '"'
    if text is None:
        return Translation(source, None, "human", ("the expression of this key could not be read",))
    if collation not in ("BINARY", ""):
        if not collation.isidentifier():
            return Translation(source, None, "human", (f"collation {collation!r}",))
        text = f"{text} COLLATE {collation}" if column else f"({text}) COLLATE {collation}"
    result = translate_expression(text, table, "index_key")
    if not result.ok or result.sql is None:
        return Translation(source, None, result.status, result.reasons)
    plain_column = re.fullmatch(r'"(?:[^"]|"")+"', result.sql) is not None
    sql = result.sql if plain_column else f"({result.sql})"
    return Translation(source, sql, "ok", result.reasons)


def translate_view(sql: str, relations: Mapping[str, TableInfo]) -> Translation:
    """Translate a CREATE VIEW's query (the SELECT only; the caller writes CREATE VIEW)."""

    def body(rewrite: _Rewrite) -> exp.Expr:
        tree = _parse(sql)
        if not isinstance(tree, exp.Create) or tree.expression is None:
            raise UntranslatableError("not a CREATE VIEW ... AS SELECT statement sqlglot can read")
        query = rewrite.hold(tree.expression)
        _resolve_view(query.this, relations)
        _lower_aliases(query)
        rewrite.collations(query)
        rewrite.booleans(query)
        rewrite.retyped(query)
        rewrite.functions(query)
        return _expr(query.this)

    return _run(sql, "view", body)


def translate_default(text: str, pg_type: str) -> Translation:
    """A column default for a column of ``pg_type``; ``sql`` is None for a NULL default.

    SQLite's ``CURRENT_TIMESTAMP`` and ``datetime('now')`` are UTC text: on ``timestamptz``
    they become ``now()``; on ``timestamp`` ``now()`` in UTC (plain ``now()`` would store the
    server's local time); on ``text`` the same text format from ``to_char``.
    """
    try:
        tree = _parse(text)
    except UntranslatableError as why:
        return Translation(text, None, "human", (str(why),))
    while isinstance(tree, exp.Paren):
        tree = tree.this
    base = pg_type.split("(")[0].strip()
    now = _default_now(tree, base, text)
    if now is not None:
        return now
    if isinstance(tree, exp.Null):
        return Translation(text, None, "dropped", ("DEFAULT NULL is PostgreSQL's default too",))
    if base in BOOLEAN_TYPES:
        if _is_int_literal(tree, 0, 1):
            value = "TRUE" if _bool_of(tree) else "FALSE"
            return Translation(text, value, "ok", (f"0/1 default becomes {value}",))
        return Translation(text, None, "human", (f"default {text} for a boolean column",))
    if isinstance(tree, exp.HexString):
        if base != "bytea":
            return Translation(text, None, "human", (f"blob default {text} on {pg_type}",))
        return Translation(text, f"'\\x{tree.this}'::bytea", "ok", ("blob literal as bytea",))
    literal = tree.this if isinstance(tree, exp.Neg) else tree
    if isinstance(literal, exp.Literal):
        if literal.is_string:
            if base in JSON_TYPES:
                return Translation(text, tree.sql("postgres"), "ok", ())
            return Translation(text, tree.sql("postgres"), "ok", ())
        if base in ("text", "varchar", "char"):
            # SQLite stores a numeric default in a TEXT column as text: keep it text.
            quoted = exp.Literal.string(tree.sql("sqlite")).sql("postgres")
            return Translation(text, quoted, "ok", ("numeric default stored as text",))
        return Translation(text, tree.sql("postgres"), "ok", ())

    def body(rewrite: _Rewrite) -> exp.Expr:
        tree = rewrite.hold(_parse(text))
        rewrite.functions(tree)
        if tree.find(exp.Column) is not None:
            raise UntranslatableError("a default cannot name a column")
        return _expr(tree.this)

    return _run(text, "check", body, wrap=True)


_NOW_TEXT = {
    "timestamp": "YYYY-MM-DD HH24:MI:SS",
    "date": "YYYY-MM-DD",
    "time": "HH24:MI:SS",
}


def _default_now(tree: exp.Expr, base: str, text: str) -> Translation | None:
    """Translate SQLite's "now" defaults; None when ``tree`` is not one."""
    kind: str | None = None
    if isinstance(tree, exp.CurrentTimestamp):
        kind = "timestamp"
    elif isinstance(tree, exp.CurrentDate):
        kind = "date"
    elif isinstance(tree, exp.CurrentTime):
        kind = "time"
    elif isinstance(tree, exp.Anonymous | exp.Date):
        name = tree.name.lower() if isinstance(tree, exp.Anonymous) else "date"
        args = list(tree.args.get("expressions") or []) or [tree.this]
        if name in ("datetime", "date", "time") and len(args) == 1:
            arg = args[0]
            if isinstance(arg, exp.Literal) and arg.is_string and arg.name.lower() == "now":
                kind = {"datetime": "timestamp"}.get(name, name)
    if kind is None:
        return None
    utc = "(now() AT TIME ZONE 'UTC')"
    if base == "timestamptz" and kind == "timestamp":
        return Translation(
            text, "now()", "ok", (f"{text} is the current time (UTC): now() on timestamptz",)
        )
    if base == "timestamp" and kind == "timestamp":
        return Translation(
            text,
            utc,
            "ok",
            (
                f"{text} is UTC: now() AT TIME ZONE 'UTC' (plain now() on a timestamp "
                "column would store the server's local time); PostgreSQL keeps microseconds",
            ),
        )
    if base == "date" and kind == "date":
        return Translation(text, f"CAST({utc} AS date)", "ok", (f"{text} is the UTC date",))
    if base in ("text", "varchar"):
        fmt = _NOW_TEXT[kind]
        return Translation(
            text, f"to_char({utc}, '{fmt}')", "ok", (f"{text} as the same UTC text SQLite writes",)
        )
    return Translation(text, None, "human", (f"default {text} on a {base} column",))
