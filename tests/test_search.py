"""GET /v1/search on both stacks (SQLite FTS5; PostgreSQL tsvector + GIN): words found with and
without diacritics, exact matches first, phrases, filters, pages, per-key isolation, a deleted
job gone at once, the migration indexing jobs completed before it, and hostile queries.

Completed jobs are written as the worker writes them (status, result and index rows in one
transaction) with a realistic result; one test goes through a real worker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text, update

from shared.apikeys import hash_key
from shared.jobs.records import Submission, create_job
from shared.search import finder
from shared.search.folding import fold, words
from shared.search.index import index_job
from shared.search.query import parse
from shared.store.migrations import alembic_config
from shared.store.sessions import make_engine, make_session_factory, session_scope
from shared.store.tables import Job, JobStatus, SearchSegment
from tests.conftest import _drop_postgres_database, _postgres_database
from tests.test_e2e import submit_file, wait_job

BAD_QUERIES = [
    "", " ", '"', '""', '"unbalanced', "*", "bão*", "NEAR(bão lũ)", "bão OR lũ", "bão AND lũ",
    "NOT bão", "-bão", "folded:bão", "exact : lũ", "^bão", "bão + lũ", "(bão", "bão)", "{exact}",
    "'; DROP TABLE jobs; --", "' OR 1=1 --", "\\", "'bão'", "bão & lũ | !x", "bão <-> lũ", "%",
    "_", "\x00", "a" * 10_000, "bão " * 3000, "x" * 200, "😀", "\u0301", "🎙 bão",
]


def result_json(*segments: tuple[str, float, float] | tuple[str, float, float, str]) -> dict:
    """A result as the pipeline stores it: segments with words and times."""
    segs = []
    for seg in segments:
        text_, start, end = seg[:3]
        spoken = seg[3] if len(seg) > 3 else ""
        step = (end - start) / max(1, len(text_.split()))
        segs.append({
            "text": text_, "start": start, "end": end, "spoken_text": spoken, "tokens": [],
            "words": [
                {"text": w, "start": start + i * step, "end": start + (i + 1) * step,
                 "confidence": 0.9}
                for i, w in enumerate((spoken or text_).split())
            ],
        })
    return {"text": " ".join(s["text"] for s in segs), "segments": segs, "duration_s": 300.0,
            "input_format": "wav", "engine": {"engine": "conformer"}}


def completed_job(stack, *segments, meta=None, owner=None, batch_id=None, status="completed",
                  created_at=None) -> str:
    """A job created through the records layer, then finished as the worker finishes one."""
    sessions = make_session_factory(make_engine(stack.settings.database_url))
    job_id = uuid.uuid4()
    with sessions() as session:
        create_job(session, Submission(
            job_id=job_id, source="path", input_path=stack.settings.data_dir / "x.wav",
            original_filename="call.wav", sha256=uuid.uuid4().hex, input_format="wav",
            meta=meta or {}, api_key_id=owner,
        ))
    result = result_json(*segments)
    with session_scope(sessions) as session:
        values = {"status": status, "result": result, "transcript": result["text"],
                  "duration_s": 300.0, "batch_id": batch_id}
        if created_at is not None:
            values["created_at"] = created_at
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        if status == JobStatus.COMPLETED:
            index_job(session.connection(), job_id, result)
    return str(job_id)


@pytest.fixture()
def tag():
    """Each test's jobs carry their own tag, so tests sharing a stack never see each other's."""
    return {"t": uuid.uuid4().hex}


def find(client, q, tag, headers=None, **params) -> dict:
    args = {"q": q, **{f"metadata.{k}": v for k, v in tag.items()}, **params}
    response = client.get("/v1/search", query_string=args, headers=headers or {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_folding_and_query_parsing():
    assert fold("Đường") == "duong" and fold("bão lũ") == "bao lu" and fold("Ư") == "u"
    assert words("Bão lũ, miền Trung!") == ["bão", "lũ", "miền", "trung"]
    query = parse('"miền Trung" bao OR "unbalanced')
    assert [c.words for c in query.clauses] == [
        ("miền", "trung"), ("bao",), ("or",), ("unbalanced",)
    ]
    assert query.marked == ("miền",)


def test_found_with_and_without_diacritics(client, stack, tag):
    job = completed_job(
        stack,
        ("Chào buổi sáng.", 0.0, 2.0),
        ("Bão lũ miền Trung gây thiệt hại trên đường Đồng Khởi.", 12.5, 17.25),
        meta=tag,
    )
    for q in ("bao lu mien trung", "bão lũ miền Trung", "BAO LU", "duong dong khoi", "đường"):
        hits = find(client, q, tag)["results"]
        assert [(h["job_id"], h["start"], h["end"]) for h in hits] == [(job, 12.5, 17.25)], q
    hit = find(client, "bao lu", tag)["results"][0]
    assert hit["highlight"].startswith("<mark>Bão</mark> <mark>lũ</mark> miền")
    assert [hit["text"][s:e] for s, e in hit["marks"]] == ["Bão", "lũ"]
    assert hit["metadata"] == tag and hit["job"]["status"] == "completed"
    assert hit["links"]["audio"].endswith(f"/v1/jobs/{job}/audio")
    assert find(client, "bao lu mien bac", tag)["results"] == []  # every word must match


def test_accented_query_ranks_exact_matches_first(client, stack, tag):
    # The unaccented segment is short and says "bao" three times: BM25/ts_rank prefer it.
    loose = completed_job(stack, ("bao bao bao", 0.0, 1.0), meta=tag)
    exact = completed_job(
        stack, ("Cơn bão số ba đã đổ bộ vào vùng ven biển sáng nay theo tin mới", 5.0, 9.0),
        meta=tag,
    )
    assert [h["job_id"] for h in find(client, "bão", tag)["results"]] == [exact, loose]
    assert {h["job_id"] for h in find(client, "bao", tag)["results"]} == {exact, loose}


def test_phrase_needs_the_words_together(client, stack, tag):
    together = completed_job(stack, ("Mưa lớn ở miền Trung kéo dài", 0.0, 3.0), meta=tag)
    apart = completed_job(stack, ("Trung tâm dự báo miền Bắc", 0.0, 3.0), meta=tag)
    assert {h["job_id"] for h in find(client, "mien trung", tag)["results"]} == {together, apart}
    assert [h["job_id"] for h in find(client, '"mien trung"', tag)["results"]] == [together]
    assert [h["job_id"] for h in find(client, '"miền Trung" mưa', tag)["results"]] == [together]


def test_spoken_form_is_searchable_too(client, stack, tag):
    job = completed_job(
        stack, ("Hẹn ngày 20/10 lúc 9h.", 1.0, 4.0, "hẹn ngày hai mươi tháng mười lúc chín giờ"),
        meta=tag,
    )
    spoken = find(client, "hai muoi thang muoi", tag)["results"]
    assert [(h["job_id"], h["form"]) for h in spoken] == [(job, "spoken")]
    assert spoken[0]["highlight"].count("<mark>") == 4
    written = find(client, "20 10", tag)["results"]
    assert [(h["job_id"], h["form"]) for h in written] == [(job, "written")]
    # No phrase spans the end of the written form and the start of the spoken one.
    assert find(client, '"9h hẹn"', tag)["results"] == []


def test_filters(client, stack, tag):
    now = datetime.now(UTC)
    batch = uuid.uuid4()
    old = completed_job(stack, ("Tin bão khẩn cấp", 0.0, 2.0), meta={**tag, "project": "a"},
                        created_at=now - timedelta(days=10))
    new = completed_job(stack, ("Tin bão mới nhất", 0.0, 2.0), meta={**tag, "project": "b"},
                        batch_id=batch)
    completed_job(stack, ("Tin bão thất bại", 0.0, 2.0), meta=tag, status="failed")

    def ids(**params):
        return {h["job_id"] for h in find(client, "tin bao", tag, **params)["results"]}

    assert ids() == {old, new}  # a failed job was never indexed
    assert ids(**{"metadata.project": "a"}) == {old}
    assert ids(batch_id=str(batch)) == {new}
    assert ids(created_after=(now - timedelta(days=1)).isoformat()) == {new}
    assert ids(created_before=(now - timedelta(days=1)).isoformat().replace("+00:00", "Z")) == {
        old
    }
    assert ids(status="completed") == {old, new} and ids(status="failed") == set()
    bad = client.get("/v1/search", query_string={"q": "bao", "status": "done"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("window", [1000, 2])
def test_pages_follow_the_cursor(client, stack, tag, window, monkeypatch):
    monkeypatch.setattr(finder, "WINDOW", window)  # 2: many windows, one page crossing them
    segments = [(f"Đợt lũ thứ {i} ở Huế", float(i * 10), float(i * 10 + 5)) for i in range(7)]
    completed_job(stack, *segments[:4], meta=tag)
    completed_job(stack, *segments[4:], meta=tag)
    for q in ("lu hue", "lũ Huế"):
        everything = find(client, q, tag, limit=100)["results"]
        assert len(everything) == 7
        seen, cursor = [], None
        while True:
            page = find(client, q, tag, limit=3, **({"cursor": cursor} if cursor else {}))
            seen += page["results"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [(h["job_id"], h["segment"]) for h in seen] == [
            (h["job_id"], h["segment"]) for h in everything
        ]
    other = find(client, "lu hue", tag, limit=3)["next_cursor"]  # a cursor of another query
    response = client.get("/v1/search", query_string={"q": "lũ Huế", "cursor": other})
    assert response.status_code == 400


def test_a_key_finds_only_its_own_jobs(stack, tag):
    from api.app import create_app

    keys = {"alice": "stt_alice-search-key-0123456789abcdef", "bob": "stt_bob-search-key-01234"}
    app = create_app(stack.settings.model_copy(
        update={"api_keys": {name: hash_key(key) for name, key in keys.items()}}
    ))
    client = app.test_client()
    alice = completed_job(stack, ("Báo cáo doanh thu quý ba", 0.0, 3.0), meta=tag, owner="alice")
    bob = completed_job(stack, ("Báo cáo doanh thu quý tư", 0.0, 3.0), meta=tag, owner="bob")
    for name, job in (("alice", alice), ("bob", bob)):
        headers = {"Authorization": f"Bearer {keys[name]}"}
        assert [h["job_id"] for h in find(client, "bao cao", tag, headers)["results"]] == [job]
    assert client.get("/v1/search", query_string={"q": "bao cao"}).status_code == 401


def test_a_deleted_job_is_gone_at_once(client, stack, tag):
    job = completed_job(stack, ("Sạt lở đất ở Quảng Nam", 0.0, 3.0), meta=tag)
    assert len(find(client, "sat lo", tag)["results"]) == 1
    assert client.delete(f"/v1/jobs/{job}").status_code == 204
    assert find(client, "sat lo", tag)["results"] == []
    sessions = make_session_factory(make_engine(stack.settings.database_url))
    with sessions() as session:
        rows = select(func.count()).where(SearchSegment.job_id == uuid.UUID(job))
        assert session.scalar(rows) == 0
        if stack.backend == "sqlite":  # no orphaned FTS5 entries either
            orphans = "SELECT count(*) FROM search_fts WHERE rowid NOT IN (SELECT id FROM {})"
            assert session.scalar(text(orphans.format("search_segments"))) == 0


@pytest.mark.parametrize("q", BAD_QUERIES)
def test_hostile_queries_never_answer_500(client, q):
    response = client.get("/v1/search", query_string={"q": q})
    assert response.status_code in (200, 400), response.get_data()[:300]
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] in {
            "invalid_query", "query_too_long", "invalid_request"
        }


@pytest.mark.parametrize(
    "cursor", ["x", "eyJ4IjogMX0=", "WyJhbGwiLCAxLCA5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ=="]
)
def test_bad_cursors_are_refused(client, cursor):
    response = client.get("/v1/search", query_string={"q": "bao", "cursor": cursor})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"


def test_missing_and_long_queries_have_their_codes(client):
    assert client.get("/v1/search").get_json()["error"]["code"] == "invalid_query"
    long = client.get("/v1/search", query_string={"q": "a" * 10_000})
    assert long.status_code == 400 and long.get_json()["error"]["code"] == "query_too_long"


@pytest.fixture()
def database_at_0008(stack, tmp_path):
    if stack.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    name = _postgres_database()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    _drop_postgres_database(name)


def test_migration_indexes_jobs_completed_before_it(stack, database_at_0008):
    from api.app import create_app

    url = database_at_0008
    command.upgrade(alembic_config(url), "0008")
    engine = make_engine(url)
    job_id = uuid.uuid4()
    result = result_json(("Giá xăng tăng mạnh từ chiều nay", 3.0, 6.0))
    with make_session_factory(engine)() as session:  # a job as 0008 stored it
        session.add(Job(id=job_id, status="completed", source="path", input_path="/x.wav",
                        result=result, transcript=result["text"], meta={"m": 1}))
        session.commit()
    command.upgrade(alembic_config(url), "head")
    client = create_app(stack.settings.model_copy(update={"database_url": url})).test_client()
    hits = client.get("/v1/search", query_string={"q": "gia xang"}).get_json()["results"]
    assert [(h["job_id"], h["start"]) for h in hits] == [(str(job_id), 3.0)]
    command.downgrade(alembic_config(url), "0008")
    assert not {"search_segments", "search_fts"} & set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_worker_indexes_the_job_it_completes(worker, client, stack, vi_clip):
    job = wait_job(client, submit_file(client, vi_clip, metadata='{"e2e": "search"}')["id"])
    assert job["status"] == "completed", job["error"]
    first = words(job["transcript"])[0]
    hits = find(client, fold(first), {"e2e": "search"}, limit=100)["results"]
    assert job["id"] in {h["job_id"] for h in hits}


def test_metadata_filters_match_numbers_and_booleans_as_written(client, stack, tag):
    """A filter value is text; a stored number or boolean matches its JSON spelling, on both
    databases alike (SQLite's json_extract gives 12345 and 1 where PostgreSQL gives text)."""
    job = completed_job(
        stack, ("Tin bão khẩn cấp", 0.0, 2.0),
        meta={**tag, "customer": 12345, "vip": True, "score": 1.5, "note": None},
    )

    def ids(**params):
        return {h["job_id"] for h in find(client, "tin bao", tag, **params)["results"]}

    for key, value in (("customer", "12345"), ("vip", "true"), ("score", "1.5")):
        assert ids(**{f"metadata.{key}": value}) == {job}, key
    for key, value in (("customer", "1234"), ("vip", "1"), ("vip", "True"), ("note", "None"),
                       ("note", ""), ("absent", "")):
        assert ids(**{f"metadata.{key}": value}) == set(), (key, value)
