"""POST /v1/audio/transcriptions with the official `openai` package as the client, over real HTTP
against the app and the real worker process (tiny wav2vec2 model), on both stacks: every
response format, word times, a bad and a missing file, a wrong key, the wait limit, and the job
each call leaves in /v1/jobs, seen only by its own key."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.apikeys import hash_key
from tests.conftest import serve_app

openai = pytest.importorskip("openai")

KEY = "stt_openai-test-key-0123456789abcdefghijklmnop"
OTHER_KEY = "stt_openai-other-key-0123456789abcdefghijklm"
KEYS = {"openai-a": hash_key(KEY), "openai-b": hash_key(OTHER_KEY)}


def _keyed_app(stack, **overrides):
    from api.app import create_app

    return create_app(stack.settings.model_copy(update={"api_keys": KEYS, **overrides}))


@pytest.fixture(scope="module")
def base_url(stack, worker) -> Iterator[str]:
    for url in serve_app(_keyed_app(stack)):
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)


def _transcribe(client, clip: Path, **params):
    with clip.open("rb") as audio:
        return client.audio.transcriptions.with_raw_response.create(
            model=params.pop("model", "whisper-1"), file=audio, **params
        )


def _job(base_url: str, job_id: str, key: str = KEY) -> requests.Response:
    return requests.get(f"{base_url}/jobs/{job_id}", headers=_bearer(key), timeout=10)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_json_is_the_jobs_transcript_and_the_job_stays_the_callers(client, base_url, vi_clip):
    raw = _transcribe(client, vi_clip)
    job_id = raw.headers["X-Job-Id"]
    job = _job(base_url, job_id).json()
    assert raw.parse().text == job["transcript"] != ""
    assert job["status"] == "completed" and job["queue"] == "interactive"
    listed = requests.get(f"{base_url}/jobs", headers=_bearer(KEY), timeout=10).json()["jobs"]
    assert job_id in {j["id"] for j in listed}
    other = requests.get(f"{base_url}/jobs", headers=_bearer(OTHER_KEY), timeout=10).json()
    assert job_id not in {j["id"] for j in other["jobs"]}
    assert _job(base_url, job_id, OTHER_KEY).status_code == 404


@pytest.mark.parametrize(
    ("fmt", "starts"), [("text", ""), ("srt", "1\n00:00:0"), ("vtt", "WEBVTT\n")]
)
def test_text_and_subtitles(client, vi_clip, fmt, starts):
    body = _transcribe(client, vi_clip, response_format=fmt).parse()
    assert isinstance(body, str) and body.startswith(starts) and body.endswith("\n")
    if fmt == "text":
        assert body.strip() and "-->" not in body
    else:
        assert " --> " in body


def test_verbose_json_has_segments_and_words_only_when_asked(client, vi_clip):
    plain = _transcribe(client, vi_clip, response_format="verbose_json").parse()
    assert plain.language == "vietnamese" and plain.duration == pytest.approx(3.69, abs=0.15)
    assert plain.segments and plain.words is None
    first = plain.segments[0]
    assert first.id == 0 and first.tokens == [] and first.avg_logprob <= 0
    assert 0 <= first.start < first.end <= plain.duration + 0.05
    assert plain.text == " ".join(s.text for s in plain.segments)

    timed = _transcribe(
        client, vi_clip, response_format="verbose_json", timestamp_granularities=["word"]
    ).parse()
    assert timed.segments is None and timed.words
    assert " ".join(w.word for w in timed.words) == timed.text
    assert all(0 <= w.start <= w.end <= timed.duration + 0.05 for w in timed.words)
    both = _transcribe(
        client, vi_clip, response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    ).parse()
    assert both.segments and both.words


def test_prompt_becomes_hotwords_and_temperature_is_accepted(client, base_url, vi_clip):
    prompt = "Hà Nội, bão lũ miền Trung; một câu dài hơn sáu chữ thì không phải từ khoá"
    raw = _transcribe(client, vi_clip, prompt=prompt, temperature=0.7, language="vi")
    job = _job(base_url, raw.headers["X-Job-Id"]).json()
    assert job["decoding_options"] == {
        "decoder": "beam", "hotwords": ["Hà Nội", "bão lũ miền Trung"], "language": "vi"
    }
    assert job["status"] == "completed" and raw.parse().text == job["transcript"]


def test_bad_file_and_bad_field_raise_bad_request(client, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is text, not audio\n")
    with pytest.raises(openai.BadRequestError) as bad_file:
        _transcribe(client, fake)
    assert bad_file.value.code == "unsupported_format" and bad_file.value.param == "file"
    assert "checked by content" in bad_file.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bad_field:
        _transcribe(client, fake, response_format="docx")
    assert bad_field.value.param == "response_format"
    assert bad_field.value.type == "invalid_request_error"


def test_missing_file_is_a_bad_request_in_openais_shape(base_url):
    answer = requests.post(
        f"{base_url}/audio/transcriptions", headers=_bearer(KEY),
        files={"model": (None, "whisper-1")}, timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "send the audio as the multipart file `file`",
            "type": "invalid_request_error",
            "param": "file",
            "code": "missing_audio",
        }
    }


def test_wrong_key_raises_authentication_error(base_url, vi_clip):
    stranger = openai.OpenAI(base_url=base_url, api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        _transcribe(stranger, vi_clip)
    assert refused.value.code == "invalid_api_key"
    assert refused.value.type == "invalid_request_error"


def test_wait_limit_names_the_job_which_goes_on(stack, worker, vi_clip):
    """Default retries on: the answer says not to retry, so exactly one job is submitted."""
    for url in serve_app(_keyed_app(stack, openai_wait_s=0.0)):
        impatient = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
        before = _job_ids(url)
        with pytest.raises(openai.InternalServerError) as waited:
            _transcribe(impatient, vi_clip)
        job_id = waited.value.body["job_id"]
        assert waited.value.status_code == 504 and waited.value.code == "wait_timeout"
        assert job_id in waited.value.body["message"]
        assert _job_ids(url) - before == {job_id}
        deadline = time.monotonic() + 60
        while _job(f"{url}/v1", job_id).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the job never finished"
            time.sleep(0.3)


def _job_ids(url: str) -> set[str]:
    page = requests.get(f"{url}/v1/jobs?limit=200", headers=_bearer(KEY), timeout=10).json()
    return {job["id"] for job in page["jobs"]}


def _post(app, **form):
    return app.test_client().post(
        "/v1/audio/transcriptions", data=form, headers=_bearer(KEY),
        content_type="multipart/form-data",
    )


def test_a_named_model_routes_the_job_and_other_names_take_the_default(stack, vi_clip):
    """No worker serves `small`: the job stays queued where that model's workers would look."""
    app = _keyed_app(stack, models={"small": "wav2vec2:/nowhere"}, openai_wait_s=0.0)
    queues = {}
    for name in ("small", "whisper-1", "gpt-4o-transcribe"):
        answer = _post(app, model=name, file=(vi_clip.open("rb"), "clip.wav"))
        assert answer.status_code == 504 and answer.headers["x-should-retry"] == "false"
        job_id = answer.get_json()["error"]["job_id"]
        assert answer.headers["X-Job-Id"] == job_id
        job = app.test_client().get(f"/v1/jobs/{job_id}", headers=_bearer(KEY)).get_json()
        queues[name] = job["queue"]
        app.test_client().delete(f"/v1/jobs/{job_id}", headers=_bearer(KEY))
    assert queues == {"small": "interactive.small", "whisper-1": "interactive",
                      "gpt-4o-transcribe": "interactive"}


def test_too_large_and_bad_granularity_answer_in_openais_shape(stack, vi_clip):
    small = _keyed_app(stack, max_upload_mb=0.01)
    too_large = _post(small, file=(vi_clip.open("rb"), "clip.wav"))
    assert too_large.status_code == 413
    assert too_large.get_json()["error"] == {
        "message": "upload exceeds STT_MAX_UPLOAD_MB=0.01", "type": "invalid_request_error",
        "param": "file", "code": "upload_too_large",
    }
    wrong = _post(
        _keyed_app(stack), file=(vi_clip.open("rb"), "clip.wav"),
        **{"timestamp_granularities[]": "sentence"},
    )
    assert wrong.status_code == 400
    assert wrong.get_json()["error"]["param"] == "timestamp_granularities[]"
    streamed = _post(_keyed_app(stack), file=(vi_clip.open("rb"), "clip.wav"), stream="true")
    assert streamed.status_code == 400 and streamed.get_json()["error"]["param"] == "stream"
    # Other routes keep the service's own shape.
    other = small.test_client().post("/v1/jobs", data={}, headers=_bearer(KEY))
    assert set(other.get_json()["error"]) == {"code", "message"}


def test_a_full_queue_is_a_503_to_retry_later(stack, vi_clip):
    """The job no worker takes (model `small`) fills the one place; the next is refused whole."""
    from shared.jobs.backpressure import queued_jobs
    from shared.store.sessions import make_engine, make_session_factory

    with make_session_factory(make_engine(stack.settings.database_url))() as session:
        waiting = queued_jobs(session, "interactive")  # what earlier tests left queued
    app = _keyed_app(stack, models={"small": "wav2vec2:/nowhere"}, openai_wait_s=0.0,
                     max_queued_jobs=waiting + 1)
    first = _post(app, model="small", file=(vi_clip.open("rb"), "clip.wav"))
    refused = _post(app, model="small", file=(vi_clip.open("rb"), "clip.wav"))
    app.test_client().delete(f"/v1/jobs/{first.headers['X-Job-Id']}", headers=_bearer(KEY))
    assert first.status_code == 504 and refused.status_code == 503
    assert refused.headers["Retry-After"] == "30" and "x-should-retry" not in refused.headers
    error = refused.get_json()["error"]
    assert error["type"] == "server_error" and error["code"] == "queue_full"


def test_calls_past_the_waiting_limit_are_refused_before_their_job_exists(stack, vi_clip):
    """One slot: a call waits (no worker serves `small`), so the next, OpenAI-shaped or legacy,
    is a 503 to retry later and leaves no job behind; when the first has its answer, the slot
    is free again."""
    app = _keyed_app(stack, models={"small": "wav2vec2:/nowhere"}, openai_wait_s=3.0,
                     max_waiting_requests=1)
    answers: list[requests.Response] = []

    def call(url: str) -> requests.Response:
        with vi_clip.open("rb") as audio:
            return requests.post(f"{url}/v1/audio/transcriptions", headers=_bearer(KEY),
                                 data={"model": "small"}, files={"file": audio}, timeout=30)

    for url in serve_app(app):
        before = _job_ids(url)
        first = threading.Thread(target=lambda u=url: answers.append(call(u)))
        first.start()
        deadline = time.monotonic() + 10
        while len(_job_ids(url) - before) < 1:  # the first call's job exists: it is waiting
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = call(url)
        with vi_clip.open("rb") as audio:
            legacy = requests.post(f"{url}/wav2vec2", headers=_bearer(KEY),
                                   files={"file": audio}, timeout=30)
        created = _job_ids(url) - before
        first.join()
        again = call(url)  # the slot came back
        for job_id in _job_ids(url) - before:
            requests.delete(f"{url}/v1/jobs/{job_id}", headers=_bearer(KEY), timeout=10)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "10"
    assert refused.json()["error"]["code"] == "too_many_waiting"
    assert refused.json()["error"]["type"] == "server_error"  # OpenAI's clients retry these
    assert legacy.status_code == 503 and legacy.json()["error"]["code"] == "too_many_waiting"
    assert created == {answers[0].headers["X-Job-Id"]}
    assert answers[0].status_code == 504 and again.status_code == 504


def test_words_are_the_written_tokens_where_a_segment_has_them(app):
    """A formatted transcript's words are its written tokens ("15"), not the spoken ones."""
    from dataclasses import asdict

    from api.openai_compat.answers import transcription_answer
    from shared.speech.engines.base import Segment, Token, Word
    from shared.store.tables import Job

    spoken = [Word("mười", 0.0, 0.3, 0.5), Word("lăm", 0.3, 0.6, 0.5), Word("giờ", 0.6, 0.9)]
    written = Segment("15 giờ", 0.0, 0.9, spoken, "mười lăm giờ",
                      [Token("15", 0.0, 0.6, 0, 1), Token("giờ", 0.6, 0.9, 2, 2)])
    plain = Segment("xin chào", 1.0, 1.5, [Word("xin", 1.0, 1.2), Word("chào", 1.2, 1.5)])
    job = Job(transcript="15 giờ xin chào", duration_s=1.5, decoding_options={},
              result={"segments": [asdict(written), asdict(plain)]})
    with app.test_request_context():
        body = transcription_answer(job, "verbose_json", ("segment", "word")).get_json()
    assert [w["word"] for w in body["words"]] == ["15", "giờ", "xin", "chào"]
    assert body["words"][0] == {"word": "15", "start": 0.0, "end": 0.6}
    assert body["segments"][0]["avg_logprob"] == pytest.approx(-0.6931, abs=1e-4)
    assert body["segments"][1]["avg_logprob"] == 0.0 and body["language"] == "vietnamese"


def test_models_lists_the_names_model_selects(stack):
    """What an app's model picker shows: `default` and each STT_MODELS name, each retrievable,
    any other name a NotFoundError; behind the same key as the rest of /v1."""
    app = _keyed_app(stack, models={"small": "wav2vec2:/nowhere", "org/tuned": "whisper:/x"})
    for url in serve_app(app):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        listed = client.models.list()
        assert [m.id for m in listed.data] == ["default", "small", "org/tuned"]
        assert {(m.object, m.owned_by) for m in listed.data} == {("model", "vi-stt")}
        assert client.models.retrieve("org/tuned").id == "org/tuned"
        assert client.models.retrieve("default").created == listed.data[0].created
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("whisper-1")
        assert missing.value.code == "model_not_found" and missing.value.param == "model"
        assert "whisper-1" in missing.value.message
        stranger = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-not-a-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()


def test_paths_the_router_cannot_match_still_answer_in_openais_shape(stack):
    """A wrong method, or a model name the router cannot take, never reaches a blueprint."""
    for url in serve_app(_keyed_app(stack)):
        wrong_method = requests.get(f"{url}/v1/audio/transcriptions", headers=_bearer(KEY))
        odd_name = requests.get(f"{url}/v1/models/a%0Ab", headers=_bearer(KEY))
        for answer, status in ((wrong_method, 405), (odd_name, 404)):
            error = answer.json()["error"]
            assert answer.status_code == status
            assert error["type"] == "invalid_request_error" and set(error) >= {"param", "code"}
