"""Search over many transcripts: p50/p95 of GET /v1/search's work on SQLite (FTS5) and on
PostgreSQL (tsvector + GIN), and the time indexing one finished job adds.

Usage::

    python -m bench.search [--jobs 10000] [--backends sqlite,postgres] [--repeat 5]

Builds ``--jobs`` completed transcripts of 5 minutes each (~800 words in 60-100 segments) from
real Vietnamese sentences (../shared/data/vi-text/news-dantri.txt.gz, seeded, so every run
indexes the same text) into a fresh database per backend, migrated to head: the jobs in bulk
INSERTs, their segments through the same ``index_job`` the worker calls, a few hundred jobs per
transaction. Then it times ``finder.search`` (the route's whole work less HTTP: parse, match,
filter, rank, mark, first page of 20) for a mix of queries picked from the indexed words:
common and rare words, typed with and without diacritics, several words, phrases, a metadata
filter. Last it times ``index_job`` for new 5-minute jobs, each in its own transaction with the
status UPDATE as the worker does. Prints a table, the CPU model and flags and the load average.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from sqlalchemy import insert, update

from shared.search import finder
from shared.search.filters import Filters
from shared.search.folding import fold, words
from shared.search.index import index_job
from shared.search.query import parse
from shared.store.migrations import upgrade
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import Job

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "vi-text" / "news-dantri.txt.gz"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PROJECTS = [f"p{i}" for i in range(20)]


def sentences() -> list[str]:
    with gzip.open(TEXT, "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    return [s for line in lines for s in re.split(r"(?<=[.!?])\s+", line) if len(s.split()) > 3]


def transcript(rng: random.Random, pool: list[str]) -> dict:
    """~800 words of real sentences in 60-100 segments over 300 s."""
    target = rng.randint(60, 100)
    text_words: list[str] = []
    while len(text_words) < 800:
        text_words += rng.choice(pool).split()
    cuts = sorted(rng.sample(range(1, len(text_words)), target - 1))
    pieces = [text_words[a:b] for a, b in zip([0, *cuts], [*cuts, len(text_words)], strict=True)]
    step = 300.0 / len(text_words)
    segments, at = [], 0
    for piece in pieces:
        segments.append({"text": " ".join(piece), "start": round(at * step, 2),
                         "end": round((at + len(piece)) * step, 2)})
        at += len(piece)
    return {"text": " ".join(text_words), "segments": segments, "duration_s": 300.0}


def build(
    url: str, jobs: int, seed: int = 7, chunk: int = 250, write: bool = True
) -> tuple[float, Counter[str]]:
    """Fill a fresh database; returns build seconds and the indexed words' counts. With
    ``write`` false only the counts (of a database built before with the same arguments)."""
    if write:
        upgrade(url)
    rng, pool = random.Random(seed), sentences()
    engine = make_engine(url)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    for first in range(0, jobs, chunk):
        batch = []
        for i in range(first, min(jobs, first + chunk)):
            result = transcript(rng, pool)
            counts.update(words(result["text"]))
            batch.append(_job_row(i, result))
        if not write:
            continue
        with engine.begin() as conn:
            conn.execute(insert(Job), batch)
            for row in batch:
                index_job(conn, row["id"], row["result"])
        print(f"  {min(jobs, first + chunk)}/{jobs} jobs", end="\r", file=sys.stderr)
    with engine.begin() as conn:  # the statistics autovacuum would gather a little later
        if write:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - started, counts


def _job_row(i: int, result: dict) -> dict:
    return {
        "id": uuid.UUID(int=random.Random(i).getrandbits(128)), "status": "completed",
        "source": "path", "input_path": f"/archive/{i}.wav", "transcript": result["text"],
        "result": result, "duration_s": 300.0, "metadata": {"project": PROJECTS[i % len(PROJECTS)]},
        "decoding_options": {}, "queue": "bulk",
    }


def query_mix(counts: Counter[str]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    ranked = [w for w, _ in counts.most_common() if w.isalpha()]
    accented = [w for w in ranked if fold(w) != w]
    common = accented[:6]
    rare = [w for w in accented if 3 <= counts[w] <= 30][:6]
    mid = accented[100:112]
    none = {}
    return {
        "common, accented": [(w, none) for w in common],
        "common, unaccented": [(fold(w), none) for w in common],
        "rare, accented": [(w, none) for w in rare],
        "rare, unaccented": [(fold(w), none) for w in rare],
        "two words, unaccented": [
            (f"{fold(a)} {fold(b)}", none) for a, b in zip(mid[::2], mid[1::2], strict=True)
        ],
        "phrase, accented": [
            ('"chính phủ"', none), ('"thành phố"', none), ('"kinh tế"', none), ('"bão lũ"', none)
        ],
        "phrase, unaccented": [
            ('"chinh phu"', none), ('"thanh pho"', none), ('"bao lu mien trung"', none)
        ],
        "common + metadata filter": [(w, {"project": "p3"}) for w in common[:3]],
    }


def time_queries(url: str, mix: dict, repeat: int) -> dict[str, list[float]]:
    sessions = make_session_factory(make_engine(url))
    timings: dict[str, list[float]] = {}
    for kind, queries in mix.items():
        for q, meta in queries:
            for _ in range(repeat):
                started = time.perf_counter()
                with sessions() as session:
                    finder.search(session, parse(q), Filters(metadata=meta), 20, None)
                timings.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
    return timings


def time_indexing(url: str, count: int = 40) -> tuple[list[float], list[float]]:
    """Milliseconds: index_job alone, and the whole finishing transaction with it."""
    rng, pool = random.Random(99), sentences()
    engine = make_engine(url)
    alone, whole = [], []
    for i in range(count):
        result = transcript(rng, pool)
        row = {**_job_row(i, result), "id": uuid.uuid4(), "status": "processing", "result": None}
        with engine.begin() as conn:
            conn.execute(insert(Job), [row])
        started = time.perf_counter()
        with engine.begin() as conn:
            finish = update(Job).where(Job.id == row["id"])
            conn.execute(finish.values(status="completed", result=result))
            mid = time.perf_counter()
            index_job(conn, row["id"], result)
            alone.append((time.perf_counter() - mid) * 1000)
        whole.append((time.perf_counter() - started) * 1000)
    return alone, whole


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", info)
    flag_line = re.search(r"flags\s*:\s*(.*)", info)
    flags = set(flag_line.group(1).split()) if flag_line else set()
    wanted = sorted(f for f in flags if f.startswith(("avx512", "amx")))
    name = model.group(1) if model else "?"
    return f"{name}; {os.cpu_count()} CPUs; {' '.join(wanted) or 'no avx512/amx'}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def databases(
    backends: list[str], workdir: Path, reuse: dict[str, str]
) -> Iterator[tuple[str, str, Callable[[], None]]]:
    for backend in backends:
        if backend in reuse:
            yield backend, reuse[backend], lambda: None
        elif backend == "sqlite":
            yield backend, f"sqlite:///{workdir / 'search.sqlite3'}", lambda: None
        else:
            name = f"stt_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')

            def drop(name: str = name) -> None:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            yield backend, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sqlite-url", help="a database built before with the same --jobs")
    parser.add_argument("--postgres-url", help="the same, PostgreSQL; kept afterwards")
    args = parser.parse_args()
    reuse = {k: v for k, v in (("sqlite", args.sqlite_url), ("postgres", args.postgres_url)) if v}
    print(f"CPU: {cpu()}\nload average at start: {load()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        for backend, url, drop in databases(args.backends.split(","), Path(tmp), reuse):
            try:
                built_s, counts = build(url, args.jobs, write=backend not in reuse)
                done = "reused" if backend in reuse else f"indexed in {built_s:.0f} s"
                print(f"{backend}: {args.jobs} jobs {done} "
                      f"({sum(counts.values())} words; load {load()})")
                for kind, ms in time_queries(url, query_mix(counts), args.repeat).items():
                    rows.append((backend, kind, len(ms), pct(ms, 50), pct(ms, 95), max(ms)))
                alone, whole = time_indexing(url)
                rows.append((backend, "index one 5-min job (index_job)", len(alone),
                             pct(alone, 50), pct(alone, 95), max(alone)))
                rows.append((backend, "finish transaction incl. index", len(whole),
                             pct(whole, 50), pct(whole, 95), max(whole)))
            finally:
                drop()
    print(f"\n{'backend':9} {'what':34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for backend, kind, n, p50, p95, top in rows:
        print(f"{backend:9} {kind:34} {n:4d} {p50:8.1f} {p95:8.1f} {top:8.1f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
