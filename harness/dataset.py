"""Realistic synthetic data for the reference schema, at any scale, streamed in chunks.

Rows are generated with numpy a chunk of artifacts at a time and written with ``executemany``,
so memory stays flat however many artifacts are asked for. Everything derives from the seed
and the anchor date: the same seed and anchor give the same bytes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import operator
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness import __version__
from harness.errors import DatasetError
from harness.popularity import ZipfSampler
from harness.schema import (
    CREATE_INDEXES,
    CREATE_TABLES,
    CREATE_TRIGGERS,
    CREATE_VIEWS,
    SCHEMA_VERSION,
    TABLES,
)

Row = tuple[Any, ...]
Rows = list[Row]
IntArray = npt.NDArray[np.int64]

# The ranking services this stands for keep two years of publications online.
HISTORY_DAYS = 730
# 10k artifacts is about 120k rows across tables: large enough that executemany dominates,
# small enough that a chunk costs a few MB.
DEFAULT_CHUNK = 10_000
SOURCES = 50
USERS = 5_000

_WORDS = [
    "adaptive",
    "attention",
    "bayesian",
    "benchmark",
    "causal",
    "citation",
    "clustering",
    "contrastive",
    "corpus",
    "dense",
    "diffusion",
    "discovery",
    "distributed",
    "dynamic",
    "efficient",
    "embedding",
    "entity",
    "evaluation",
    "explainable",
    "federated",
    "few-shot",
    "genome",
    "graph",
    "hierarchical",
    "hybrid",
    "inference",
    "kernel",
    "knowledge",
    "language",
    "large",
    "latent",
    "learning",
    "linear",
    "low-rank",
    "manifold",
    "markov",
    "model",
    "molecular",
    "multimodal",
    "network",
    "neural",
    "novel",
    "online",
    "optimal",
    "particle",
    "probabilistic",
    "protein",
    "quantum",
    "random",
    "ranking",
    "recurrent",
    "reinforcement",
    "retrieval",
    "robust",
    "sampling",
    "scalable",
    "semantic",
    "sequence",
    "signal",
    "sparse",
    "spectral",
    "stochastic",
    "streaming",
    "structured",
    "supervised",
    "survey",
    "temporal",
    "tensor",
    "topic",
    "transfer",
    "transformer",
    "uncertainty",
    "unsupervised",
    "variational",
    "vision",
    "weak",
    "zero-shot",
    "analysis",
    "approach",
    "framework",
    "method",
    "study",
    "towards",
    "understanding",
    "scaling",
    "laws",
    "catalysts",
    "materials",
    "climate",
    "epidemic",
    "search",
    "memory",
]
_FIRST = [
    "Ada",
    "Alan",
    "Barbara",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jun",
    "Karl",
    "Lena",
    "Mei",
    "Nia",
    "Omar",
    "Priya",
]
_LAST = [
    "Okafor",
    "Schmidt",
    "Tanaka",
    "Rossi",
    "Novak",
    "Silva",
    "Kim",
    "Haddad",
    "Larsen",
    "Moreau",
    "Ivanova",
    "Gupta",
    "Levi",
]
_ENTITY_KINDS = ("person", "organization", "method", "dataset", "chemical", "gene")
_ENTITY_KIND_P = (0.40, 0.15, 0.20, 0.10, 0.08, 0.07)
_ARTIFACT_KINDS = ("paper", "preprint", "dataset", "software", "patent", "post")
_ARTIFACT_KIND_P = (0.55, 0.25, 0.06, 0.06, 0.03, 0.05)
_SOURCE_KINDS = ("journal", "preprint", "blog", "patent", "news")
_LANGUAGES = ("en", "de", "fr", "zh", "es", "ja")
_LANGUAGE_P = (0.85, 0.04, 0.03, 0.04, 0.02, 0.02)


def _today_utc() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day)


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate. ``anchor`` is "now" for the data: publications span the two years
    before it. It defaults to today's midnight UTC, so recent-window queries find rows."""

    artifacts: int
    seed: int = 42
    anchor: datetime = field(default_factory=_today_utc)
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if self.artifacts < 1:
            raise DatasetError(f"--artifacts must be at least 1 (got {self.artifacts})")
        if self.chunk < 1:
            raise DatasetError("chunk size must be at least 1")
        if self.anchor.tzinfo is not None:
            raise DatasetError("anchor must be a naive UTC datetime")

    @property
    def topics(self) -> int:
        return max(20, self.artifacts // 500)

    @property
    def entities(self) -> int:
        return max(50, self.artifacts // 20)

    @property
    def start(self) -> datetime:
        return self.anchor - timedelta(days=HISTORY_DAYS)


@dataclass
class DatasetSummary:
    """What was written, for the CLI and benchmarks."""

    path: Path
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class _Clock:
    """Formats epoch seconds as SQLite's ``YYYY-MM-DD HH:MM:SS`` text from lookup tables:
    several times faster than ``strftime`` or numpy's datetime formatting."""

    def __init__(self, start: datetime, days: int) -> None:
        self.epoch0 = int(start.replace(tzinfo=UTC).timestamp())
        self._days = [(start + timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(days + 40)]
        self._tod = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]

    def text(self, seconds: IntArray) -> list[str]:
        """``seconds`` counts from the start day's midnight."""
        days, tods = np.divmod(seconds, 86_400)
        return list(
            map(
                operator.add,
                map(self._days.__getitem__, days.tolist()),
                map(self._tod.__getitem__, tods.tolist()),
            )
        )


_CAPITALISED = [w.capitalize() for w in _WORDS]


def _words(rng: np.random.Generator, n: int, low: int, high: int) -> list[str]:
    """``n`` phrases of ``low`` to ``high`` vocabulary words, the first capitalised."""
    vocab, caps = _WORDS, _CAPITALISED
    lengths = rng.integers(low, high + 1, n).tolist()
    picks = rng.integers(0, len(vocab), (n, high)).tolist()
    return [
        caps[row[0]] + "".join([" " + vocab[i] for i in row[1:k]])
        for row, k in zip(picks, lengths, strict=True)
    ]


def _sparse_words(
    rng: np.random.Generator, n: int, low: int, high: int, p_null: float
) -> list[str | None]:
    """Like :func:`_words` with a share of NULLs, generating text only for the non-NULL rows."""
    present = rng.random(n) >= p_null
    texts = iter(_words(rng, int(present.sum()), low, high))
    return [next(texts) if keep else None for keep in present.tolist()]


def _nullable(values: Sequence[Any], rng: np.random.Generator, p_null: float) -> list[Any]:
    nulls = (rng.random(len(values)) < p_null).tolist()
    return [None if z else v for v, z in zip(values, nulls, strict=True)]


def _unique_pairs(left: IntArray, right: IntArray, *extra: Any) -> tuple[Any, ...]:
    """Drop repeated (left, right) pairs, keeping the first, in (left, right) order."""
    key = left * (int(right.max(initial=0)) + 1) + right
    _, first = np.unique(key, return_index=True)
    first.sort()
    return (left[first], right[first], *(e[first] for e in extra))


class _Generator:
    """Holds the popularity samplers and clock shared by every chunk."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        s = spec.seed
        self.clock = _Clock(spec.start, HISTORY_DAYS)
        self.span = HISTORY_DAYS * 86_400
        self.topic_pop = ZipfSampler(spec.topics, exponent=1.0, seed=[s, 1])
        self.entity_pop = ZipfSampler(spec.entities, exponent=1.0, seed=[s, 2])
        self.source_pop = ZipfSampler(SOURCES, exponent=0.8, seed=[s, 3])
        # Citation in-degree is heavy-tailed: a few artifacts gather a large share of links.
        self.cite_pop = ZipfSampler(spec.artifacts, exponent=0.9, seed=[s, 4])
        self.user_pop = ZipfSampler(USERS, exponent=1.1, seed=[s, 5])

    # -- small tables ---------------------------------------------------------------
    def dataset_info(self) -> Rows:
        spec = self.spec
        return [
            ("anchor", spec.anchor.strftime("%Y-%m-%d %H:%M:%S")),
            ("artifacts", str(spec.artifacts)),
            ("generator", f"harness {__version__}"),
            ("schema_version", SCHEMA_VERSION),
            ("seed", str(spec.seed)),
        ]

    def sources(self) -> Rows:
        rng = np.random.default_rng([self.spec.seed, 10])
        names = _words(rng, SOURCES, 1, 3)
        kinds = rng.choice(len(_SOURCE_KINDS), SOURCES).tolist()
        trust = rng.beta(5, 2, SOURCES).tolist()
        return [
            (
                i + 1,
                f"{names[i]} {_SOURCE_KINDS[kinds[i]].title()} #{i + 1}",
                _SOURCE_KINDS[kinds[i]],
                trust[i],
            )
            for i in range(SOURCES)
        ]

    def topics(self) -> Rows:
        n = self.spec.topics
        rng = np.random.default_rng([self.spec.seed, 11])
        names = _words(rng, n, 1, 3)
        roots = max(1, n // 20)
        depth = [0] * n
        parent: list[int | None] = [None] * n
        for i in range(roots, n):
            p = int(rng.integers(0, i))
            while depth[p] >= 3:
                p = int(rng.integers(0, i))
            parent[i] = p + 1
            depth[i] = depth[p] + 1
        return [
            (i + 1, parent[i], names[i], f"{names[i].lower().replace(' ', '-')}-{i + 1}", depth[i])
            for i in range(n)
        ]

    def entities(self) -> Rows:
        n = self.spec.entities
        rng = np.random.default_rng([self.spec.seed, 12])
        kinds = rng.choice(len(_ENTITY_KINDS), n, p=_ENTITY_KIND_P).tolist()
        first = rng.integers(0, len(_FIRST), n).tolist()
        last = rng.integers(0, len(_LAST), n).tolist()
        words = _words(rng, n, 1, 2)
        seen = self.clock.text(rng.integers(0, self.span, n))
        described = (rng.random(n) < 0.6).tolist()
        rows: Rows = []
        for i in range(n):
            kind = _ENTITY_KINDS[kinds[i]]
            name = (
                f"{_FIRST[first[i]]} {_LAST[last[i]]} {i + 1}"
                if kind == "person"
                else f"{words[i]} {kind} {i + 1}"
            )
            desc = f"{kind.title()} known for {words[i].lower()}" if described[i] else None
            rows.append((i + 1, name, kind, desc, seen[i]))
        return rows

    # -- artifacts and their links, one chunk at a time ----------------------------------
    def artifact_chunk(self, index: int, lo: int, hi: int) -> list[tuple[str, Rows]]:
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 100, index])
        ids = np.arange(lo, hi, dtype=np.int64)
        n = len(ids)
        # Ids are assigned in ingestion order, so they rise with publication time (+ jitter).
        base = (ids - 1) * self.span // max(spec.artifacts, 1)
        published = np.clip(base + rng.integers(-6 * 3600, 6 * 3600, n), 0, self.span - 1)
        created = np.minimum(
            published + rng.exponential(2 * 86_400, n).astype(np.int64), self.span - 1
        )
        updated = np.minimum(created + rng.integers(3600, 30 * 86_400, n), self.span - 1)
        pub_txt = self.clock.text(published)
        created_txt = self.clock.text(created)
        updated_txt = _nullable(self.clock.text(updated), rng, 0.7)

        titles = _words(rng, n, 4, 11)
        kinds = rng.choice(len(_ARTIFACT_KINDS), n, p=_ARTIFACT_KIND_P).tolist()
        langs = rng.choice(len(_LANGUAGES), n, p=_LANGUAGE_P).tolist()
        src = self.source_pop.sample(rng, n).tolist()
        retracted = (rng.random(n) < 0.005).astype(np.int64).tolist()
        pages = rng.integers(1, 60, n).tolist()
        open_access = (rng.random(n) < 0.4).tolist()
        version = rng.integers(1, 5, n).tolist()
        tag_a = rng.integers(0, len(_WORDS), n).tolist()
        tag_b = rng.integers(0, len(_WORDS), n).tolist()
        # Formatted directly: json.dumps per row costs more than the insert. The vocabulary
        # holds plain ASCII words, so no escaping is needed.
        metadata = _nullable(
            [
                f'{{"pages":{p},"open_access":{"true" if o else "false"},"version":{v},'
                f'"tags":["{_WORDS[a]}","{_WORDS[b]}"]}}'
                for p, o, v, a, b in zip(pages, open_access, version, tag_a, tag_b, strict=True)
            ],
            rng,
            0.05,
        )
        blob = rng.bytes(16 * n)
        fingerprints = _nullable([blob[16 * i : 16 * i + 16] for i in range(n)], rng, 0.02)
        id_list = ids.tolist()
        urls = _nullable([f"https://example.org/a/{i}" for i in id_list], rng, 0.1)
        artifacts = list(
            zip(
                id_list,
                [f"10.5555/hx.{i:09d}" for i in id_list],
                src,
                titles,
                [_ARTIFACT_KINDS[k] for k in kinds],
                urls,
                [_LANGUAGES[k] for k in langs],
                pub_txt,
                created_txt,
                updated_txt,
                retracted,
                metadata,
                fingerprints,
                strict=True,
            )
        )

        computed = self.clock.text(np.minimum(created + rng.integers(60, 86_400, n), self.span - 1))
        scores = list(
            zip(
                id_list,
                rng.beta(2.0, 5.0, n).tolist(),
                rng.beta(2.0, 2.0, n).tolist(),
                rng.beta(1.2, 8.0, n).tolist(),
                computed,
                strict=True,
            )
        )

        k_topics = np.minimum(1 + rng.poisson(1.5, n), 6)
        t_art = np.repeat(ids, k_topics)
        t_top = self.topic_pop.sample(rng, len(t_art))
        t_rel = 1.0 - rng.random(len(t_art)) * 0.95
        t_art, t_top, t_rel = _unique_pairs(t_art, t_top, t_rel)
        artifact_topics = list(zip(t_art.tolist(), t_top.tolist(), t_rel.tolist(), strict=True))

        k_ent = np.minimum(rng.poisson(3.0, n), 12)
        e_art = np.repeat(ids, k_ent)
        e_ent = self.entity_pop.sample(rng, len(e_art))
        e_men = 1 + rng.geometric(0.5, len(e_art))
        e_sal = rng.beta(2.0, 3.0, len(e_art))
        e_art, e_ent, e_men, e_sal = _unique_pairs(e_art, e_ent, e_men, e_sal)
        artifact_entities = list(
            zip(e_art.tolist(), e_ent.tolist(), e_men.tolist(), e_sal.tolist(), strict=True)
        )

        citations = self._citations(rng, ids, created)
        bookmarks = self._bookmarks(rng, lo, hi, created)
        return [
            ("artifacts", artifacts),
            ("scores", scores),
            ("artifact_topics", artifact_topics),
            ("artifact_entities", artifact_entities),
            ("citations", citations),
            ("bookmarks", bookmarks),
        ]

    def _citations(self, rng: np.random.Generator, ids: IntArray, created: IntArray) -> Rows:
        k = np.minimum(rng.poisson(4.0, len(ids)), 40)
        k[ids < 2] = 0
        citing = np.repeat(ids, k)
        when = np.repeat(created, k)
        cited = self.cite_pop.sample(rng, len(citing))
        # Only earlier work can be cited: fold later picks back into 1 .. citing-1.
        later = cited >= citing
        cited[later] = 1 + (cited[later] - 1) % (citing[later] - 1)
        citing, cited, when = _unique_pairs(citing, cited, when)
        contexts = _sparse_words(rng, len(citing), 3, 8, 0.7)
        return list(
            zip(citing.tolist(), cited.tolist(), contexts, self.clock.text(when), strict=True)
        )

    def _bookmarks(self, rng: np.random.Generator, lo: int, hi: int, created: IntArray) -> Rows:
        n = (hi - 1) // 10 - (lo - 1) // 10
        if n <= 0:
            return []
        first_id = (lo - 1) // 10 + 1
        target = self.cite_pop.sample(rng, n)
        target = 1 + (target - 1) % (hi - 1)
        users = self.user_pop.sample(rng, n).tolist()
        when = self.clock.text(
            np.minimum(created[:n] + rng.integers(0, 86_400 * 30, n), self.span - 1)
        )
        notes = _sparse_words(rng, n, 2, 6, 0.8)
        return [
            (first_id + i, int(target[i]), f"user-{users[i]:05d}", notes[i], when[i])
            for i in range(n)
        ]


def generate_rows(spec: DatasetSpec) -> Iterator[tuple[str, Rows]]:
    """Yield ``(table, rows)`` batches in an order that satisfies every foreign key."""
    gen = _Generator(spec)
    yield "dataset_info", gen.dataset_info()
    yield "sources", gen.sources()
    yield "topics", gen.topics()
    yield "entities", gen.entities()
    for index, lo in enumerate(range(1, spec.artifacts + 1, spec.chunk)):
        hi = min(lo + spec.chunk, spec.artifacts + 1)
        yield from gen.artifact_chunk(index, lo, hi)


# Batches that end a unit of work: the small tables, then each chunk of artifacts.
_UNIT_ENDS = ("entities", "bookmarks")
# How long the writer waits for the generator before checking that it is still alive.
_POLL_S = 1.0


def _produce(spec: DatasetSpec, out: Any) -> None:
    """Child process: generate every batch and send it to the writer, a unit at a time."""
    try:
        unit: list[tuple[str, Rows]] = []
        for item in generate_rows(spec):
            unit.append(item)
            if item[0] in _UNIT_ENDS:
                out.put(unit)
                unit = []
        if unit:
            out.put(unit)
        out.put(None)
    except BaseException as exc:  # handed to the writer, which re-raises it
        out.put(DatasetError(f"dataset generation failed: {type(exc).__name__}: {exc}"))


def _in_subprocess(spec: DatasetSpec, depth: int) -> Iterator[tuple[str, Rows]]:
    """Generate in a child process, ``depth`` units ahead of the writer.

    Generating rows and binding them in ``executemany`` both hold the GIL, so a thread cannot
    overlap them; a process can. The bounded queue keeps memory flat.
    """
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue(maxsize=depth)
    child = ctx.Process(
        target=_produce, args=(spec, channel), name="dataset-generator", daemon=True
    )
    child.start()
    try:
        while True:
            try:
                unit = channel.get(timeout=_POLL_S)
            except queue.Empty:
                if not child.is_alive():
                    raise DatasetError(
                        f"dataset generator process died (exit code {child.exitcode})"
                    ) from None
                continue
            if unit is None:
                return
            if isinstance(unit, BaseException):
                raise unit
            yield from unit
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        channel.close()


def create_schema(conn: sqlite3.Connection, *, indexes: bool) -> None:
    """Create the reference tables (and, if asked, indexes, views and triggers)."""
    for ddl in CREATE_TABLES:
        conn.execute(ddl)
    if indexes:
        finish_schema(conn)


def finish_schema(conn: sqlite3.Connection) -> None:
    """Create indexes, views and triggers, then gather planner statistics."""
    for ddl in (*CREATE_INDEXES, *CREATE_VIEWS, *CREATE_TRIGGERS):
        conn.execute(ddl)
    conn.execute("ANALYZE")


def insert_sql(table: str, width: int) -> str:
    """The INSERT statement for ``width`` columns of ``table`` (names from our own schema)."""
    if table not in TABLES:
        raise ValueError(f"not a reference table: {table!r}")
    return f'INSERT INTO "{table}" VALUES ({", ".join("?" * width)})'  # noqa: S608


def open_for_bulk_load(path: Path) -> sqlite3.Connection:
    """A connection tuned for a one-shot bulk load: no journal, no fsync, exclusive lock.

    A crash mid-load leaves a broken file, which is why the dataset is written to a
    temporary name and renamed only when complete.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    # 64 MB of page cache: enough for index builds, small enough for the 300 MB RSS budget.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def close_as_application_db(conn: sqlite3.Connection) -> None:
    """Leave the file the way applications run SQLite: WAL journal, foreign keys declared."""
    conn.execute("PRAGMA locking_mode = NORMAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


ProgressCallback = Callable[[int], None]


def write_dataset(
    path: Path | str,
    spec: DatasetSpec,
    *,
    force: bool = False,
    on_artifacts: ProgressCallback | None = None,
) -> DatasetSummary:
    """Write the reference dataset to ``path``; return row counts and time taken.

    ``on_artifacts`` is called with the number of artifacts written after each chunk.
    """
    target = Path(path)
    if target.exists() and not force:
        raise DatasetError(f"{target} already exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise DatasetError(f"folder {target.parent} does not exist; create it first")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    conn = open_for_bulk_load(partial)
    try:
        create_schema(conn, indexes=False)
        conn.execute("BEGIN")
        # Two chunks of artifacts ahead keep the writer busy without growing memory.
        for table, batch in _in_subprocess(spec, depth=2):
            if batch:
                conn.executemany(insert_sql(table, len(batch[0])), batch)
                rows[table] += len(batch)
            if table == "bookmarks":
                # One transaction per chunk keeps the journal-less load's memory bounded.
                conn.execute("COMMIT")
                conn.execute("BEGIN")
                if on_artifacts is not None:
                    on_artifacts(rows["artifacts"])
        conn.execute("COMMIT")
        finish_schema(conn)
        close_as_application_db(conn)
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(partial) + suffix).unlink()
    return DatasetSummary(path=target, rows=rows, seconds=time.perf_counter() - started)


def write_with_progress(
    path: Path | str, spec: DatasetSpec, *, force: bool = False, console: Any = None
) -> DatasetSummary:
    """:func:`write_dataset` with a rich progress bar counting artifacts."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]dataset"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("artifacts"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("artifacts", total=spec.artifacts)
        summary = write_dataset(
            path, spec, force=force, on_artifacts=lambda n: progress.update(task, completed=n)
        )
        progress.update(task, completed=spec.artifacts)
    return summary
