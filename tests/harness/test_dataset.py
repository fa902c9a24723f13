"""The reference dataset: determinism, the SQLite features it must carry, realistic shapes."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from harness.dataset import DatasetSpec, write_dataset
from harness.errors import DatasetError
from harness.schema import CREATE_INDEXES, TABLES
from tests.conftest import ANCHOR


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def conn(reference_db: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(f"file:{reference_db}?mode=ro", uri=True)
    yield c
    c.close()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    spec = DatasetSpec(artifacts=1_500, seed=5, anchor=ANCHOR, chunk=400)
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    write_dataset(a, spec)
    write_dataset(b, spec)
    write_dataset(c, DatasetSpec(artifacts=1_500, seed=6, anchor=ANCHOR, chunk=400))
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


def test_every_table_has_rows(conn: sqlite3.Connection) -> None:
    for table in TABLES:
        assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] > 0, table  # noqa: S608


def test_index_kinds_real_schemas_have(conn: sqlite3.Connection) -> None:
    sql = {
        name: text
        for name, text in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    assert len(sql) == len(CREATE_INDEXES)
    assert "WHERE is_retracted = 0" in sql["ix_artifacts_published_live"]  # partial
    assert "DESC" in sql["ix_artifacts_published_live"]  # DESC
    assert "lower(name)" in sql["ix_entities_lower_name"]  # expression
    assert sql["ux_artifacts_external_id"].startswith("CREATE UNIQUE INDEX")
    assert "(discovery_score DESC, artifact_id)" in sql["ix_scores_discovery"]  # composite
    assert "(topic_id, artifact_id)" in sql["ix_artifact_topics_topic"]
    assert "COLLATE NOCASE" in sql["ux_topics_slug"]


def test_constraints_defaults_and_autoincrement(conn: sqlite3.Connection) -> None:
    ddl = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    assert "DEFAULT (datetime('now'))" in ddl["artifacts"]
    assert "DEFAULT CURRENT_TIMESTAMP" in ddl["scores"]
    assert "CHECK (is_retracted IN (0, 1))" in ddl["artifacts"]
    assert "AUTOINCREMENT" in ddl["bookmarks"]
    assert "sqlite_sequence" in ddl
    fks = conn.execute("PRAGMA foreign_key_list(artifact_topics)").fetchall()
    assert {(fk[2], fk[6]) for fk in fks} == {("artifacts", "CASCADE"), ("topics", "CASCADE")}
    topic_fk = conn.execute("PRAGMA foreign_key_list(topics)").fetchall()
    assert topic_fk[0][6] == "SET NULL"
    notnull = {c[1]: c[3] for c in conn.execute("PRAGMA table_info(artifacts)")}
    assert notnull["title"] == 1 and notnull["url"] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'view'").fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 1
    )


def test_values_are_stored_the_way_sqlite_applications_store_them(conn: sqlite3.Connection) -> None:
    types = conn.execute(
        "SELECT typeof(published_at), typeof(is_retracted), typeof(metadata), "
        "typeof(fingerprint), typeof(id) FROM artifacts WHERE metadata IS NOT NULL "
        "AND fingerprint IS NOT NULL LIMIT 1"
    ).fetchone()
    assert types == ("text", "integer", "text", "blob", "integer")
    assert conn.execute("SELECT DISTINCT is_retracted FROM artifacts ORDER BY 1").fetchall() == [
        (0,),
        (1,),
    ]
    assert (
        conn.execute(
            "SELECT count(*) FROM artifacts WHERE metadata IS NOT NULL AND NOT json_valid(metadata)"
        ).fetchone()[0]
        == 0
    )
    # Timestamps are ISO text in SQLite's own datetime() format.
    bad = conn.execute(
        "SELECT count(*) FROM artifacts WHERE datetime(published_at) IS NOT published_at"
    ).fetchone()[0]
    assert bad == 0
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_scores_keep_full_double_precision(conn: sqlite3.Connection) -> None:
    values = [r[0] for r in conn.execute("SELECT discovery_score FROM scores LIMIT 200")]
    # A single-precision value has at most ~8 significant digits; real doubles need ~17.
    assert max(len(repr(v)) for v in values) >= 17
    low, high = conn.execute(
        "SELECT min(discovery_score), max(discovery_score) FROM scores"
    ).fetchone()
    assert 0.0 <= low < high <= 1.0


def test_publication_dates_cover_two_years_before_the_anchor(conn: sqlite3.Connection) -> None:
    first, last = conn.execute(
        "SELECT min(published_at), max(published_at) FROM artifacts"
    ).fetchone()
    span = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    assert 700 <= span.days <= 730
    assert last < ANCHOR.isoformat(sep=" ")
    assert (
        conn.execute("SELECT count(*) FROM artifacts WHERE created_at < published_at").fetchone()[0]
        == 0
    )


def test_popularity_is_skewed(conn: sqlite3.Connection) -> None:
    in_degree = [
        r[0]
        for r in conn.execute("SELECT count(*) FROM citations GROUP BY cited_id ORDER BY 1 DESC")
    ]
    median = in_degree[len(in_degree) // 2]
    assert in_degree[0] >= 20 * median  # heavy tail: the most cited dwarfs the typical one
    topic_links = [
        r[0]
        for r in conn.execute(
            "SELECT count(*) FROM artifact_topics GROUP BY topic_id ORDER BY 1 DESC"
        )
    ]
    assert topic_links[0] >= 5 * topic_links[len(topic_links) // 2]
    assert (
        conn.execute("SELECT count(*) FROM citations WHERE cited_id >= citing_id").fetchone()[0]
        == 0
    )


def test_topics_form_a_hierarchy(conn: sqlite3.Connection) -> None:
    roots = conn.execute("SELECT count(*) FROM topics WHERE parent_id IS NULL").fetchone()[0]
    assert roots >= 1
    bad = conn.execute(
        "SELECT count(*) FROM topics AS t JOIN topics AS p ON p.id = t.parent_id "
        "WHERE t.depth <> p.depth + 1"
    ).fetchone()[0]
    assert bad == 0


def test_foreign_keys_hold(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "x.db"
    target.write_text("keep me")
    with pytest.raises(DatasetError, match="--force"):
        write_dataset(target, DatasetSpec(artifacts=10, anchor=ANCHOR))
    assert target.read_text() == "keep me"


def test_a_failed_write_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    target = tmp_path / "y.db"

    def explode(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(
            target, DatasetSpec(artifacts=50, anchor=ANCHOR, chunk=10), on_artifacts=explode
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("artifacts", [0, -5])
def test_rejects_non_positive_sizes(artifacts: int) -> None:
    with pytest.raises(DatasetError, match="at least 1"):
        DatasetSpec(artifacts=artifacts)


def test_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        write_dataset(tmp_path / "nope" / "x.db", DatasetSpec(artifacts=5, anchor=ANCHOR))
