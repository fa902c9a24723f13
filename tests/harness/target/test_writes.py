"""Ingestion through the API on both backends: validation, transactions, constraints."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.target.server import running_api
from harness.target.settings import ApiSettings
from tests.conftest import ANCHOR, writable_pg_copy


def _artifact(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "title": "Measured pool sizing under load",
        "source_id": 1,
        "discovery_score": 0.42,
        "topic_ids": [1, 2],
        "metadata": {"pages": 3, "tags": ["pools"]},
    }
    item.update(overrides)
    return item


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest,
    reference_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    """One writable copy per backend for the module: each test reads back only what it wrote."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            db = str(tmp_path_factory.mktemp("writes") / "w.db")
            shutil.copyfile(reference_db, db)
        else:
            db = stack.enter_context(
                writable_pg_copy(
                    request.getfixturevalue("pg_url"), request.getfixturevalue("_pg_template")
                )
            )
        base = stack.enter_context(running_api(ApiSettings(db=db, now=ANCHOR)))
        yield stack.enter_context(httpx.Client(base_url=base))


def test_single_insert_is_readable_back(api: httpx.Client) -> None:
    created = api.post("/artifacts", json=_artifact())
    assert created.status_code == 201
    new_id = created.json()["id"]
    body = api.get(f"/artifacts/{new_id}").json()
    assert body["title"] == "Measured pool sizing under load"
    assert body["discovery_score"] == 0.42
    assert body["metadata"] == {"pages": 3, "tags": ["pools"]}
    assert {t["id"] for t in body["topics"]} == {1, 2}
    assert body["is_retracted"] is False


def test_new_ids_continue_after_the_dataset(api: httpx.Client) -> None:
    top = api.get("/meta").json()["ids"]["artifacts"]["max_id"]
    assert api.post("/artifacts", json=_artifact()).json()["id"] == top + 1


def test_batch_of_100_is_one_transaction(api: httpx.Client) -> None:
    batch = {"artifacts": [_artifact(title=f"batch item {i}") for i in range(100)]}
    created = api.post("/artifacts/batch", json=batch)
    assert created.status_code == 201
    ids = created.json()["ids"]
    assert len(ids) == 100 and ids == sorted(ids)
    assert api.get(f"/artifacts/{ids[57]}").json()["title"] == "batch item 57"


def test_a_bad_row_rolls_the_whole_batch_back(api: httpx.Client) -> None:
    before = api.get("/meta").json()["ids"]["artifacts"]["max_id"]
    batch = {"artifacts": [_artifact(), _artifact(source_id=987654)]}
    response = api.post("/artifacts/batch", json=batch)
    assert response.status_code == 422
    assert "constraint" in response.json()["detail"]
    assert api.get("/meta").json()["ids"]["artifacts"]["max_id"] == before


@pytest.mark.parametrize(
    "body",
    [
        _artifact(discovery_score=1.5),
        _artifact(title=""),
        _artifact(kind="novel"),
        _artifact(source_id=0),
        _artifact(topic_ids=list(range(1, 20))),
        _artifact(unexpected="field"),
        {"title": "missing score and source"},
        [],
    ],
)
def test_invalid_bodies_are_rejected_before_sql(api: httpx.Client, body: Any) -> None:
    response = api.post("/artifacts", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_malformed_json_is_422(api: httpx.Client) -> None:
    response = api.post(
        "/artifacts", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_batch_over_100_is_refused(api: httpx.Client) -> None:
    response = api.post("/artifacts/batch", json={"artifacts": [_artifact()] * 101})
    assert response.status_code == 422


def test_unknown_topic_is_a_constraint_error_not_a_500(api: httpx.Client) -> None:
    response = api.post("/artifacts", json=_artifact(topic_ids=[999_999]))
    assert response.status_code == 422


def test_sqlite_file_is_never_created_by_the_api(tmp_path: Path) -> None:
    from harness.errors import DatasetError

    missing = tmp_path / "nothing.db"
    with (
        pytest.raises(DatasetError, match="no such file"),
        running_api(ApiSettings(db=str(missing))),
    ):
        pass
    assert not missing.exists()


def test_the_recent_window_edge_is_the_same_on_both_backends(api: httpx.Client) -> None:
    # The window starts exactly at ANCHOR - 7 days: a row of that second is inside on both
    # backends, a row one second earlier is outside.
    inside = api.post(
        "/artifacts",
        json=_artifact(
            published_at="2026-10-25T00:00:00", discovery_score=1.0, title="edge inside"
        ),
    )
    outside = api.post(
        "/artifacts",
        json=_artifact(
            published_at="2026-10-24T23:59:59", discovery_score=1.0, title="edge outside"
        ),
    )
    assert inside.status_code == outside.status_code == 201
    top = api.get("/discoveries", params={"since_days": 7, "limit": 3}).json()
    titles = [row["title"] for row in top]
    assert "edge inside" in titles
    assert "edge outside" not in titles
