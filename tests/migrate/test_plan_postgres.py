"""The plan's DDL on real PostgreSQL: it runs, and the catalog holds every schema feature."""

from __future__ import annotations

from migrate import Plan, make_plan
from tests.migrate.conftest import MakeDb, apply_ddl, pg_rows


def _index_def(url: str, name: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    (row,) = pg_rows(url, "SELECT pg_get_indexdef(to_regclass(%s))", (quoted,))
    return str(row[0])


def test_reference_ddl_runs_and_keeps_every_feature(reference_plan: Plan, pg_database: str) -> None:
    url = pg_database
    apply_ddl(url, reference_plan.ddl())
    tables = {
        r[0] for r in pg_rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables == {t.name for t in reference_plan.tables}

    columns = {
        (t, c): (nullable, dtype, default, identity)
        for t, c, nullable, dtype, default, identity in pg_rows(
            url,
            "SELECT table_name, column_name, is_nullable, data_type, column_default, "
            "identity_generation FROM information_schema.columns WHERE table_schema = 'public'",
        )
    }
    for table in reference_plan.tables:
        for col in table.columns:
            nullable, _dtype, _default, _identity = columns[(table.name, col.name)]
            in_pk = col.name in table.primary_key
            assert (nullable == "NO") == (col.not_null or in_pk), (table.name, col.name)
    assert columns[("scores", "discovery_score")][1] == "double precision"
    assert columns[("artifacts", "published_at")][1] == "timestamp without time zone"
    assert columns[("artifacts", "is_retracted")][1:3] == ("boolean", "false")
    assert columns[("artifacts", "metadata")][1] == "jsonb"
    assert columns[("artifacts", "fingerprint")][1] == "bytea"
    # PostgreSQL prints it as timezone('UTC'::text, now()) or now() AT TIME ZONE, by version
    created_default = str(columns[("artifacts", "created_at")][2])
    assert "now()" in created_default and "'UTC'::text" in created_default
    assert columns[("artifacts", "kind")][2] == "'paper'::text"
    assert columns[("artifacts", "id")][3] == "BY DEFAULT"
    assert columns[("bookmarks", "id")][3] == "BY DEFAULT"
    assert columns[("scores", "artifact_id")][3] is None

    checks = pg_rows(
        url,
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'c' ORDER BY 1, 2",
    )
    artifacts_checks = [d for t, d in checks if t == "artifacts"]
    assert artifacts_checks == [
        "CHECK ((kind = ANY (ARRAY['paper'::text, 'preprint'::text, 'dataset'::text, "
        "'software'::text, 'patent'::text, 'post'::text])))",
        "CHECK ((length(title) > 0))",
    ]
    assert ("citations", "CHECK ((citing_id <> cited_id))") in checks
    assert ("topics", "CHECK (((depth >= 0) AND (depth <= 3)))") in checks

    live = _index_def(url, "ix_artifacts_published_live")
    assert live.endswith("USING btree (published_at DESC) WHERE (NOT is_retracted)")
    assert _index_def(url, "ix_scores_discovery").endswith("(discovery_score DESC, artifact_id)")
    assert _index_def(url, "ix_entities_lower_name").endswith("USING btree (lower(name))")
    slug = _index_def(url, "ux_topics_slug")
    assert slug.startswith("CREATE UNIQUE INDEX") and slug.endswith("(lower(slug))")

    fks = {
        (t, cols): (ref, on_delete)
        for t, cols, ref, on_delete in pg_rows(
            url,
            "SELECT conrelid::regclass::text, "
            "(SELECT string_agg(attname, ',') FROM pg_attribute "
            " WHERE attrelid = conrelid AND attnum = ANY(conkey)), "
            "confrelid::regclass::text, confdeltype FROM pg_constraint WHERE contype = 'f'",
        )
    }
    assert fks[("topics", "parent_id")] == ("topics", "n")  # SET NULL
    assert fks[("artifacts", "source_id")] == ("sources", "r")  # RESTRICT
    assert fks[("scores", "artifact_id")] == ("artifacts", "c")  # CASCADE
    assert len(fks) == sum(len(t.foreign_keys) for t in reference_plan.tables)

    (view,) = pg_rows(url, "SELECT definition FROM pg_views WHERE viewname = 'live_discoveries'")
    assert "NOT a.is_retracted" in view[0]


def test_identity_statements_move_sequences_past_loaded_ids(
    reference_plan: Plan, pg_database: str
) -> None:
    url = pg_database
    apply_ddl(url, reference_plan.ddl())
    apply_ddl(
        url,
        "INSERT INTO sources (id, name, kind) VALUES (41, 'a', 'blog');"
        "INSERT INTO artifacts (id, external_id, source_id, title, published_at) "
        "VALUES (7, 'x', 41, 't', '2024-01-01 00:00:00');"
        "INSERT INTO bookmarks (id, artifact_id, user_ref) VALUES (3, 7, 'u');",
    )
    apply_ddl(url, "\n".join(reference_plan.statements("identities")))
    apply_ddl(
        url,
        "INSERT INTO sources (name, kind) VALUES ('b', 'news');"
        "INSERT INTO bookmarks (artifact_id, user_ref) VALUES (7, 'v');",
    )
    assert pg_rows(url, "SELECT max(id) FROM sources") == [(42,)]
    floor = next(s.floor for s in reference_plan.identities if s.table == "bookmarks")
    assert pg_rows(url, "SELECT max(id) FROM bookmarks") == [(floor + 1,)]
    row = pg_rows(url, "SELECT is_retracted, created_at IS NOT NULL, kind FROM artifacts")
    assert row == [(False, True, "paper")]


HOSTILE = 'a"; DROP TABLE b; --'


def test_hostile_names_round_trip(make_db: MakeDb, pg_database: str) -> None:
    db = make_db(
        [
            "CREATE TABLE b (id INTEGER PRIMARY KEY)",
            'CREATE TABLE "a""; DROP TABLE b; --" ('
            " id INTEGER PRIMARY KEY,"
            " \"select\" TEXT NOT NULL DEFAULT 'it''s',"
            ' "with space" REAL CHECK ("with space" >= 0),'
            ' "Quote""d" INTEGER REFERENCES b (id) ON DELETE CASCADE,'
            ' "new\nline; DROP TABLE b" TEXT)',
            'CREATE INDEX "ix ""odd""" ON "a""; DROP TABLE b; --" ("select" DESC) '
            'WHERE "with space" > 0',
            'CREATE VIEW "v w" AS SELECT "select", "with space" FROM "a""; DROP TABLE b; --"',
        ],
        {"b": [(1,)], HOSTILE: [(1, "x", 1.5, 1, "y")]},
    )
    plan = make_plan(db)
    ddl = plan.ddl()
    apply_ddl(pg_database, ddl)
    tables = {r[0] for r in pg_rows(pg_database, "SELECT tablename FROM pg_tables")}
    assert {"b", HOSTILE} <= tables
    columns = [
        r[0]
        for r in pg_rows(
            pg_database,
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            (HOSTILE,),
        )
    ]
    assert columns == ["id", "select", "with space", 'Quote"d', "new\nline; DROP TABLE b"]
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_views WHERE viewname = 'v w'") == [(1,)]
    odd = _index_def(pg_database, 'ix "odd"')
    assert odd.endswith('("select" DESC) WHERE ("with space" > (0)::double precision)')
    apply_ddl(pg_database, "\n".join(plan.statements("identities")))
    assert pg_rows(pg_database, "SELECT count(*) FROM b") == [(0,)]  # b exists, intact


def test_ddl_with_items_for_a_human_still_runs(make_db: MakeDb, pg_database: str) -> None:
    db = make_db(
        [
            "CREATE TABLE p (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT, "
            "name TEXT UNIQUE COLLATE NOCASE)",
            "CREATE TABLE c (k TEXT PRIMARY KEY, p_code TEXT REFERENCES p (code), "
            "n INTEGER CHECK (typeof(n) = 'integer'), twice INTEGER AS (n * 2) STORED, "
            "at TEXT DEFAULT (strftime('%s', 'now'))) WITHOUT ROWID",
            "CREATE INDEX ix_glob ON c (k) WHERE k GLOB 'a*'",
            "CREATE VIEW odd AS SELECT printf('%d', n) AS s FROM c",
            "CREATE VIEW on_odd AS SELECT s FROM odd",
        ],
        {"p": [(1, "a", "A")], "c": [("a", "a", 1, None)]},
    )
    plan = make_plan(db)
    kinds = sorted((item.kind, item.name) for item in plan.human)
    assert kinds == [
        ("check", "CHECK (typeof(n) = 'integer')"),
        ("default", "c.at"),
        ("foreign key", "c (p_code) -> p"),
        ("index", "ix_glob"),
        ("view", "odd"),
        ("view", "on_odd"),
    ]
    apply_ddl(pg_database, plan.ddl())
    twice = pg_rows(
        pg_database,
        "SELECT generation_expression FROM information_schema.columns "
        "WHERE table_name = 'c' AND column_name = 'twice'",
    )
    assert twice == [("(n * 2)",)]
    name_index = next(i for i in plan.table("p").indexes if i.unique)
    assert name_index.keys == ['(LOWER("name"))']
