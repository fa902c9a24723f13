"""``ApiUser``: production-like traffic on the reference API, over Locust's FastHttpUser.

The mix reads far more than it writes, leans on the cached hot endpoints and draws every id
with Zipf-skewed popularity from the dataset's real id ranges (``GET /meta``, read once per
process), so the API's cache and indexes behave as they do in production. Ids in URLs are
replaced by ``[id]`` in request names, so Locust's statistics group per endpoint:

==================  ======  =========================================================
task                weight  request names
==================  ======  =========================================================
discoveries         20      ``/discoveries``, ``/discoveries?since_days=7``,
                            ``/discoveries?min_score=[score]``
trending_topics     10      ``/topics/trending``
topic_timeline      12      ``/topics/[id]/timeline``
entity_profile      15      ``/entities/[id]``
artifact            18      ``/artifacts/[id]``
citations_out       7       ``/artifacts/[id]/citations?direction=out``
citations_in        7       ``/artifacts/[id]/citations?direction=in``
create_artifact     3       ``POST /artifacts``
create_batch        1       ``POST /artifacts/batch`` (10-100 artifacts)
health              7       ``/health``
==================  ======  =========================================================

Change the mix with a subclass (``weights = {...}``) or for one run with
``HARNESS_API_WEIGHTS="discoveries=20,health=1"`` (tasks not named get 0); think time with
``think_time`` / ``HARNESS_THINK_TIME``; skew with ``zipf_exponent`` / ``HARNESS_ZIPF_EXPONENT``.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from typing import Any, ClassVar, get_args
from urllib.parse import urlsplit

from locust.contrib.fasthttp import FastHttpUser

from harness.errors import ConfigError, HarnessError
from harness.target.models import MAX_BATCH, ArtifactKind
from harness.urls import mask_url
from harness.users import settings
from harness.users.base import WeightedTasks, shared_popularity
from harness.users.base import stop_test as _stop_test
from harness.workload import IdRange, Popularity, check_ranges

META_TIMEOUT_S = 10.0
# Score thresholds a dashboard offers: few distinct values, so they are cacheable as in real use.
MIN_SCORES = (0.5, 0.6, 0.7, 0.8, 0.9)
KINDS: tuple[str, ...] = get_args(ArtifactKind)

#: Request names each task can emit (method, name), for reports and SLA tables.
REQUEST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "discoveries": (
        ("GET", "/discoveries"),
        ("GET", "/discoveries?since_days=7"),
        ("GET", "/discoveries?min_score=[score]"),
    ),
    "trending_topics": (("GET", "/topics/trending"),),
    "topic_timeline": (("GET", "/topics/[id]/timeline"),),
    "entity_profile": (("GET", "/entities/[id]"),),
    "artifact": (("GET", "/artifacts/[id]"),),
    "citations_out": (("GET", "/artifacts/[id]/citations?direction=out"),),
    "citations_in": (("GET", "/artifacts/[id]/citations?direction=in"),),
    "create_artifact": (("POST", "/artifacts"),),
    "create_batch": (("POST", "/artifacts/batch"),),
    "health": (("GET", "/health"),),
}

_titles = itertools.count(1)


def fetch_id_ranges(base_url: str) -> dict[str, IdRange]:
    """Read the dataset's id ranges from the API's ``GET /meta``."""
    url = base_url.rstrip("/") + "/meta"
    try:
        # Plain urllib: under Locust its socket is gevent's, and this setup read stays out of
        # the run's statistics.
        with urllib.request.urlopen(url, timeout=META_TIMEOUT_S) as response:  # noqa: S310
            body = json.load(response)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read id ranges from {mask_url(url)} ({type(exc).__name__}: {exc}); "
            "is the reference API running there? give its base URL as --host"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("ids"), dict):
        raise ConfigError(f"{mask_url(url)} did not answer with the reference API's /meta body")
    return check_ranges(body["ids"], where=mask_url(url))


class ApiUser(WeightedTasks, FastHttpUser):
    """A client of the reference API: weighted reads, a few writes, skewed ids."""

    weights: ClassVar[dict[str, int]] = {
        "discoveries": 20,
        "trending_topics": 10,
        "topic_timeline": 12,
        "entity_profile": 15,
        "artifact": 18,
        "citations_out": 7,
        "citations_in": 7,
        "create_artifact": 3,
        "create_batch": 1,
        "health": 7,
    }
    weights_env: ClassVar[str] = settings.API_WEIGHTS_ENV
    think_time: ClassVar[tuple[float, float]] = (0.5, 1.5)
    #: Artifacts per ``POST /artifacts/batch``, drawn uniformly from ``(low, high)``.
    batch_size: ClassVar[tuple[int, int]] = (10, 100)

    popularity: Popularity

    def on_start(self) -> None:
        """Load (once per process) the id ranges this user draws from."""
        super().on_start()
        try:
            base = self._base_url()
            self.popularity = shared_popularity(
                base,
                self.resolved_exponent,
                self.popularity_seed(),
                lambda: fetch_id_ranges(base),
            )
        except HarnessError as exc:
            _stop_test(self.environment, exc)

    def _base_url(self) -> str:
        host = self.host or ""
        if urlsplit(host).scheme not in {"http", "https"}:
            raise ConfigError(
                f"{type(self).__name__} needs the API's base URL as --host "
                f"(e.g. http://127.0.0.1:8000), got {mask_url(host)!r}"
            )
        return host

    def _id(self, kind: str) -> int:
        return self.popularity.draw(self.rng, kind)

    # -- reads -------------------------------------------------------------------------------

    def task_discoveries(self) -> None:
        """Top discoveries; a fifth of them for the last week, a tenth above a score."""
        roll = self.rng.random()
        if roll < 0.2:
            self.client.get("/discoveries?since_days=7", name="/discoveries?since_days=7")
        elif roll < 0.3:
            score = MIN_SCORES[int(self.rng.integers(len(MIN_SCORES)))]
            self.client.get(
                f"/discoveries?min_score={score}", name="/discoveries?min_score=[score]"
            )
        else:
            self.client.get("/discoveries", name="/discoveries")

    def task_trending_topics(self) -> None:
        """Topics with the most new artifacts this week."""
        self.client.get("/topics/trending", name="/topics/trending")

    def task_topic_timeline(self) -> None:
        """A popular topic's newest artifacts."""
        self.client.get(f"/topics/{self._id('topics')}/timeline", name="/topics/[id]/timeline")

    def task_entity_profile(self) -> None:
        """An entity profile (cached by the API)."""
        self.client.get(f"/entities/{self._id('entities')}", name="/entities/[id]")

    def task_artifact(self) -> None:
        """One artifact with scores, topics, entities and citation counts."""
        self.client.get(f"/artifacts/{self._id('artifacts')}", name="/artifacts/[id]")

    def task_citations_out(self) -> None:
        """What an artifact cites."""
        self.client.get(
            f"/artifacts/{self._id('artifacts')}/citations?direction=out",
            name="/artifacts/[id]/citations?direction=out",
        )

    def task_citations_in(self) -> None:
        """Who cites an artifact."""
        self.client.get(
            f"/artifacts/{self._id('artifacts')}/citations?direction=in",
            name="/artifacts/[id]/citations?direction=in",
        )

    def task_health(self) -> None:
        """Liveness probe, as load balancers send it."""
        self.client.get("/health", name="/health")

    # -- writes ------------------------------------------------------------------------------

    def new_artifact(self) -> dict[str, Any]:
        """A valid ``POST /artifacts`` body with a real source and 1-3 real topics."""
        rng = self.rng
        return {
            "title": f"harness load artifact {self.user_index}-{next(_titles)}",
            "source_id": self._id("sources"),
            "kind": KINDS[int(rng.integers(len(KINDS)))],
            "discovery_score": round(float(rng.random()), 6),
            "novelty": round(float(rng.random()), 6),
            "impact": round(float(rng.random()), 6),
            "topic_ids": self.popularity.draw_distinct(rng, "topics", int(rng.integers(1, 4))),
            "metadata": {"origin": "harness.users.ApiUser"},
        }

    def task_create_artifact(self) -> None:
        """Ingest one artifact."""
        self.client.post("/artifacts", json=self.new_artifact(), name="/artifacts")

    def task_create_batch(self) -> None:
        """Ingest a batch in one transaction."""
        low, high = self.batch_size
        size = int(self.rng.integers(max(1, low), min(high, MAX_BATCH) + 1))
        body = {"artifacts": [self.new_artifact() for _ in range(size)]}
        self.client.post("/artifacts/batch", json=body, name="/artifacts/batch")
