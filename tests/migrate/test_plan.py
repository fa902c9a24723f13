"""The plan for the reference dataset: complete, reasoned, and honest about what it left out."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.sqltypes import TypeEngine

from harness.schema import CREATE_INDEXES
from harness.target.tables import metadata
from migrate import Plan, make_plan, render_plan


def test_every_table_and_column_is_planned(reference_plan: Plan, reference_db: Path) -> None:
    conn = sqlite3.connect(f"file:{reference_db}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        assert [t.name for t in reference_plan.tables] == tables
        for name in tables:
            columns = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))]
            assert [c.name for c in reference_plan.table(name).columns] == columns
            assert (
                reference_plan.table(name).rows
                == conn.execute(
                    f'SELECT count(*) FROM "{name}"'  # noqa: S608
                ).fetchone()[0]
            )
    finally:
        conn.close()


def _pg_type(sqltype: TypeEngine[object]) -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return sqltype.compile(dialect=dialect).lower()


def test_matches_the_api_schema_except_integer_widening(reference_plan: Plan) -> None:
    """harness.target.tables is what a faithful migration gives; the plan only widens
    INTEGER columns the API declares as integer to bigint (SQLite integers are 64-bit)."""
    widened = []
    for model in metadata.sorted_tables:
        planned = reference_plan.table(model.name)
        for column in model.columns:
            ours = planned.column(column.name)
            theirs = _pg_type(column.type).replace("without time zone", "").strip()
            theirs = {"double precision": "double precision"}.get(theirs, theirs)
            if (theirs, ours.cast.pg_type) == ("integer", "bigint"):
                widened.append(f"{model.name}.{column.name}")
                continue
            assert ours.cast.pg_type == theirs, (model.name, column.name)
            assert ours.cast.identity == (column.identity is not None), column.name
            assert ours.not_null == (not column.nullable) or column.primary_key
        planned_indexes = {i.name for i in planned.indexes}
        assert planned_indexes == {i.name for i in model.indexes if i.name}
    assert sorted(widened) == ["artifact_entities.mentions", "topics.depth"]


def test_defaults_are_translated(reference_plan: Plan) -> None:
    artifacts = reference_plan.table("artifacts")
    created = artifacts.column("created_at").default
    assert created is not None and created.sql == "(now() AT TIME ZONE 'UTC')"
    computed = reference_plan.table("scores").column("computed_at").default
    assert computed is not None and computed.source == "CURRENT_TIMESTAMP"
    assert computed.sql == "(now() AT TIME ZONE 'UTC')"
    retracted = artifacts.column("is_retracted").default
    assert retracted is not None and retracted.sql == "FALSE"
    kind = artifacts.column("kind").default
    assert kind is not None and kind.sql == "'paper'"
    trust = reference_plan.table("sources").column("trust").default
    assert trust is not None and trust.sql == "0.5"


def test_indexes_are_translated_with_reasons(reference_plan: Plan) -> None:
    indexes = {i.name: i for t in reference_plan.tables for i in t.indexes}
    assert len(indexes) == len(CREATE_INDEXES)
    assert all(i.status == "ok" for i in indexes.values())
    live = indexes["ix_artifacts_published_live"]
    assert live.keys == ['"published_at" DESC'] and live.where == 'NOT "is_retracted"'
    assert any("partial index" in r for r in live.reasons)
    assert indexes["ix_scores_discovery"].keys == ['"discovery_score" DESC', '"artifact_id"']
    assert indexes["ix_entities_lower_name"].keys == ['(LOWER("name"))']
    slug = indexes["ux_topics_slug"]
    assert slug.unique and slug.keys == ['(LOWER("slug"))']
    assert any("COLLATE NOCASE" in r for r in slug.reasons)


def test_checks_translated_and_boolean_check_dropped_with_a_reason(reference_plan: Plan) -> None:
    checks = {c.translation.source: c.translation for c in reference_plan.table("artifacts").checks}
    assert checks["length(title) > 0"].sql == 'LENGTH("title") > 0'
    dropped = checks["is_retracted IN (0, 1)"]
    assert dropped.status == "dropped"
    assert any(
        "is_retracted" in item.name for item in reference_plan.review if item.kind == "check"
    )
    assert "CHECK (is_retracted IN (0, 1)) dropped" in reference_plan.ddl()


def test_trigger_needs_a_human_and_the_view_is_translated(reference_plan: Plan) -> None:
    (item,) = reference_plan.human
    assert (item.kind, item.name, item.table) == (
        "trigger",
        "artifacts_touch_updated_at",
        "artifacts",
    )
    assert item.sqlite_sql is not None and "UPDATE artifacts SET updated_at" in item.sqlite_sql
    ddl = reference_plan.ddl()
    header = ddl.split("-- == Tables ==")[0]
    assert "NEEDS A HUMAN" in header and "artifacts_touch_updated_at" in header
    assert "UPDATE artifacts SET updated_at = datetime('now')" in header
    assert all(line.startswith("--") for line in header.strip().splitlines())
    view = reference_plan.view("live_discoveries")
    assert view.translation.ok
    assert view.sql is not None and 'WHERE NOT "a"."is_retracted"' in view.sql
    assert view.sql.startswith(
        'CREATE VIEW "live_discoveries" ("id", "title", "published_at", "discovery_score") AS'
    )


def test_identity_sequences_are_recorded_for_after_the_load(reference_plan: Plan) -> None:
    steps = {(s.table, s.column): s for s in reference_plan.identities}
    assert set(steps) == {
        ("sources", "id"),
        ("topics", "id"),
        ("entities", "id"),
        ("artifacts", "id"),
        ("bookmarks", "id"),
    }
    assert steps[("bookmarks", "id")].floor > 0  # AUTOINCREMENT: sqlite_sequence
    assert steps[("artifacts", "id")].floor == 0
    assert "setval(pg_get_serial_sequence('\"bookmarks\"'" in reference_plan.ddl()
    assert all(
        s.startswith("SELECT CASE WHEN top >= 9223372036854775807 THEN setval(")
        for s in reference_plan.statements("identities")
    )


def test_json_and_table_views(reference_plan: Plan) -> None:
    data = json.loads(reference_plan.to_json())
    assert data["format"] == "harness.migrate.plan/1"
    assert len(data["tables"]) == len(reference_plan.tables)
    assert data["statements"]["indexes"] == reference_plan.statements("indexes")
    assert data["profile"]["artifacts"]["rows"] == reference_plan.table("artifacts").rows
    out = io.StringIO()
    render_plan(reference_plan, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "double precision" in text and "bigint identity" in text
    assert "artifacts_touch_updated_at" in text


def test_plan_is_deterministic(reference_db: Path, reference_plan: Plan) -> None:
    assert make_plan(reference_db).ddl() == reference_plan.ddl()


def test_a_plan_reads_back_from_its_json(reference_plan: Plan) -> None:
    from migrate.plan import Plan as PlanClass
    from migrate.run import plan_digest

    again = PlanClass.from_dict(json.loads(reference_plan.to_json()))
    assert again.ddl() == reference_plan.ddl()
    assert plan_digest(again) == plan_digest(reference_plan)
    assert [t.create_sql_for_copy for t in again.tables] == [
        t.create_sql_for_copy for t in reference_plan.tables
    ]
    with pytest.raises(ValueError, match="not a"):
        PlanClass.from_dict({"format": "something else"})
