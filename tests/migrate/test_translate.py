"""Expression translation: type-aware rewrites, and a human where no rewrite is safe."""

from __future__ import annotations

import pytest

from migrate.translate import (
    ColumnInfo,
    TableInfo,
    translate_default,
    translate_expression,
    translate_index_key,
    translate_view,
)

T = TableInfo.of(
    "artifacts",
    [
        ColumnInfo("id", "bigint"),
        ColumnInfo("is_retracted", "boolean"),
        ColumnInfo("published_at", "timestamp"),
        ColumnInfo("title", "text"),
        ColumnInfo("metadata", "jsonb"),
        ColumnInfo("Slug", "text", "NOCASE"),
    ],
)


@pytest.mark.parametrize(
    ("sqlite", "kind", "postgres"),
    [
        ("is_retracted = 0", "predicate", 'NOT "is_retracted"'),
        ("is_retracted = 1", "predicate", '"is_retracted"'),
        ("is_retracted <> 0 AND id > 3", "predicate", '"is_retracted" AND "id" > 3'),
        ("is_retracted IS NOT 0", "predicate", 'NOT ("is_retracted" IS FALSE)'),
        ("is_retracted + 1 > 1", "check", 'CAST("is_retracted" AS INT) + 1 > 1'),
        ("length(title) > 0", "check", 'LENGTH("title") > 0'),
        ("TITLE <> ''", "check", "\"title\" <> ''"),
        ("slug = 'Abc'", "check", "LOWER(\"Slug\") = LOWER('Abc')"),
        ("title = 'x' COLLATE NOCASE", "check", "LOWER(\"title\") = LOWER('x')"),
        ("title LIKE 'a%'", "check", "\"title\" ILIKE 'a%'"),
        ('title <> "draft"', "check", "\"title\" <> 'draft'"),
        (
            "published_at > datetime('now', '-7 days')",
            "check",
            "\"published_at\" > (CURRENT_TIMESTAMP AT TIME ZONE 'UTC') - INTERVAL '7 DAYS'",
        ),
    ],
)
def test_translates(sqlite: str, kind: str, postgres: str) -> None:
    result = translate_expression(sqlite, T, kind)  # type: ignore[arg-type]
    assert (result.status, result.sql) == ("ok", postgres)


def test_boolean_check_that_the_type_enforces_is_dropped_with_a_reason() -> None:
    result = translate_expression("is_retracted IN (0, 1)", T, "check")
    assert result.status == "dropped" and result.sql is None
    assert "type itself enforces it" in result.reasons[0]
    inside = translate_expression("is_retracted IN (0, 1) AND id > 0", T, "check")
    assert inside.ok and inside.sql == '("is_retracted" IS NOT NULL OR NULL) AND "id" > 0'
    assert translate_expression("json_valid(metadata)", T, "check").status == "dropped"


@pytest.mark.parametrize(
    ("sqlite", "why"),
    [
        ("typeof(id) = 'integer'", "typeof"),
        ("title GLOB 'a*'", "GLOB"),
        ("strftime('%Y', published_at) = '2024'", "published_at becomes timestamp"),
        ("my_function(id) > 0", "my_function"),
        ("rowid > 0", "rowid"),
        ("nope > 0", "no column"),
        ("is_retracted = 'yes'", "compared with text"),
        ("title COLLATE mine = 'x'", "application-defined"),
        ("id >", "cannot parse"),
    ],
)
def test_needs_a_human_never_raises(sqlite: str, why: str) -> None:
    result = translate_expression(sqlite, T, "check")
    assert result.status == "human" and result.sql is None
    assert why in result.reasons[0]


def test_current_time_is_refused_where_postgres_needs_immutability() -> None:
    result = translate_expression("published_at > datetime('now')", T, "predicate")
    assert result.status == "human" and "immutable" in result.reasons[0]


def test_index_keys() -> None:
    assert translate_index_key(None, "slug", "NOCASE", T).sql == '(LOWER("Slug"))'
    assert translate_index_key("lower(title)", None, "BINARY", T).sql == '(LOWER("title"))'
    assert translate_index_key(None, "TITLE", "BINARY", T).sql == '"title"'
    assert translate_index_key(None, "title", "RTRIM", T).sql == '(RTRIM("title"))'
    assert translate_index_key(None, "title", "MINE", T).status == "human"


@pytest.mark.parametrize(
    ("sqlite", "pg_type", "postgres"),
    [
        ("datetime('now')", "timestamp", "(now() AT TIME ZONE 'UTC')"),
        ("CURRENT_TIMESTAMP", "timestamp", "(now() AT TIME ZONE 'UTC')"),
        ("CURRENT_TIMESTAMP", "timestamptz", "now()"),
        ("datetime('now')", "text", "to_char((now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS')"),
        ("date('now')", "date", "CAST((now() AT TIME ZONE 'UTC') AS date)"),
        ("0", "boolean", "FALSE"),
        ("1", "boolean", "TRUE"),
        ("0.5", "double precision", "0.5"),
        ("-1", "bigint", "-1"),
        ("'paper'", "text", "'paper'"),
        ("'it''s'", "text", "'it''s'"),
        ("0", "text", "'0'"),
        ("X'00ff'", "bytea", "'\\x00ff'::bytea"),
        ("(1 + 2)", "bigint", "((1 + 2))"),
    ],
)
def test_defaults(sqlite: str, pg_type: str, postgres: str) -> None:
    result = translate_default(sqlite, pg_type)
    assert (result.status, result.sql) == ("ok", postgres)


def test_defaults_that_need_a_human() -> None:
    assert translate_default("2", "boolean").status == "human"
    assert translate_default("strftime('%s', 'now')", "bigint").status == "human"
    assert translate_default("NULL", "text").status == "dropped"


def test_view_resolves_names_and_rewrites_booleans() -> None:
    scores = TableInfo.of(
        "scores", [ColumnInfo("artifact_id", "bigint"), ColumnInfo("score", "double precision")]
    )
    relations = {"artifacts": T, "scores": scores}
    view = translate_view(
        "CREATE VIEW v AS SELECT A.ID AS Total, s.score, sum(is_retracted) AS n "
        "FROM Artifacts AS a JOIN scores s ON s.artifact_id = a.id "
        "WHERE a.is_retracted = 0 AND slug = 'x' GROUP BY total ORDER BY Total",
        relations,
    )
    assert view.ok, view.reasons
    assert view.sql == (
        'SELECT "a"."id" AS "total", "s"."score", SUM(CAST("is_retracted" AS INT)) AS "n" '
        'FROM "artifacts" AS "a" JOIN "scores" AS "s" ON "s"."artifact_id" = "a"."id" '
        'WHERE NOT "a"."is_retracted" AND LOWER("Slug") = LOWER(\'x\') '
        'GROUP BY "total" ORDER BY "total" NULLS FIRST'
    )
    missing = translate_view("CREATE VIEW w AS SELECT * FROM gone", relations)
    assert missing.status == "human" and "gone" in missing.reasons[0]


def test_now_compared_with_timestamptz_is_an_instant() -> None:
    table = TableInfo.of("e", [ColumnInfo("at", "timestamptz")])
    result = translate_expression("at < datetime('now')", table, "check")
    assert result.sql == '"at" < CURRENT_TIMESTAMP'
