"""The critical endpoints' answers: snapshot from one API, compare with another.

The rollback drill points the API back at the SQLite file and checks it serves the critical
endpoints with the answers PostgreSQL gave before the candidate load wrote anything. Both
APIs run with the dataset's anchor as "now", so time windows match.
"""

from __future__ import annotations

from typing import Any

import httpx

from harness.errors import HarnessError


def critical_paths(base: str) -> list[str]:
    """The critical endpoints with ids that exist in this dataset (from ``/meta``)."""
    try:
        meta = httpx.get(f"{base}/meta", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise HarnessError(f"the API at {base} does not answer /meta: {exc}") from None
    ids = meta["ids"]
    artifact = int(ids["artifacts"]["min_id"])
    topic = int(ids["topics"]["min_id"])
    entity = int(ids["entities"]["min_id"])
    return [
        "/discoveries?limit=50",
        "/discoveries?limit=20&since_days=7",
        f"/topics/{topic}/timeline",
        f"/topics/{topic + 1}/timeline?limit=10",
        f"/entities/{entity}",
        f"/artifacts/{artifact}",
        f"/artifacts/{artifact}/citations?direction=out",
        f"/artifacts/{artifact}/citations?direction=in",
    ]


def snapshot(base: str, paths: list[str]) -> dict[str, Any]:
    """``{path: {"status": code, "body": json}}`` from the API at ``base``."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in paths:
            response = client.get(path)
            try:
                body = response.json()
            except ValueError:
                body = response.text
            out[path] = {"status": response.status_code, "body": body}
    return out


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """One line per endpoint whose answer differs."""
    lines = []
    for path, want in expected.items():
        have = got.get(path)
        if have is None:
            lines.append(f"{path}: not requested")
        elif have["status"] != want["status"]:
            lines.append(f"{path}: status {have['status']}, PostgreSQL gave {want['status']}")
        elif have["body"] != want["body"]:
            lines.append(f"{path}: a different answer than PostgreSQL gave")
    return lines
