"""The page at / in a real headless Chromium, against a real API server (werkzeug, in a thread)
and the real worker fixture: pick a real recording, watch the job, read, play and download the
transcript, with the API open and with an API key configured. Screenshots at desktop width and at
375 px go to tests/artifacts/.
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from shared.apikeys import hash_key
from shared.store.sessions import make_engine, make_session_factory, session_scope
from shared.store.tables import Worker, utcnow
from tests.audio_factory import write_audio
from tests.conftest import copy_clip, serve_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1280,900", "--autoplay-policy=no-user-gesture-required",
)
# The browser runs on the SQLite + filesystem-broker stack only: the page is the same on both.
sqlite_only = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
WEB_KEY_NAME, WEB_KEY = "web-page", "stt_web-page-test-key-0123456789abcdefghijkl"
UNAUTHORIZED = (
    "Cần một khóa API hợp lệ. Hãy nhập khóa API bạn được cấp. · "
    "A valid API key is needed. Enter the API key you were given."
)


# --- fixtures ---------------------------------------------------------------------------------


def keyed_app(stack):
    """An app with one key in its settings: the shared database stays keyless, so every other
    app on this stack (and every other test) stays open."""
    from api.app import create_app

    keys = {WEB_KEY_NAME: hash_key(WEB_KEY)}
    return create_app(stack.settings.model_copy(update={"api_keys": keys}))


@pytest.fixture()
def live_url(stack) -> Iterator[str]:
    from api.app import create_app

    yield from serve_app(create_app(stack.settings))


@pytest.fixture()
def keyed_live_url(stack) -> Iterator[str]:
    yield from serve_app(keyed_app(stack))


@pytest.fixture()
def browser(tmp_path: Path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromium-driver are not installed (`make test` installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": 0}
    )
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def sessions(stack):
    return make_session_factory(make_engine(stack.settings.database_url))


# --- helpers ----------------------------------------------------------------------------------


def wait_for(condition, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def text_of(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def visible(driver, element_id: str) -> bool:
    return driver.execute_script(f"return !document.getElementById('{element_id}').hidden")


def screenshot(driver, name: str, width: int, mobile: bool) -> Path:
    """A full-page PNG at a CSS viewport `width` wide."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": width, "height": max(height, 640), "deviceScaleFactor": 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.3)  # let layout settle at the new width
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path))
    return path


def add_heartbeat(sessions, **fields) -> str:
    name = f"web-test-{uuid.uuid4().hex[:6]}"
    row = {"queues": "interactive,bulk", "engine": "wav2vec2", "device": "cpu", **fields}
    with session_scope(sessions) as session:
        session.add(Worker(name=name, last_seen=utcnow(), **row))
    return name


def remove_heartbeat(sessions, name: str) -> None:
    with session_scope(sessions) as session:
        session.query(Worker).filter_by(name=name).delete()


# --- the page ---------------------------------------------------------------------------------


@sqlite_only
def test_upload_follow_play_and_download(browser, live_url, worker, vi_clip, tmp_path, stack):
    clip = copy_clip(vi_clip, tmp_path)
    browser.get(live_url + "/")
    wait_for(lambda: "phút" in text_of(browser, "limits"), 10, what="limits from settings")
    minutes = f"tối đa {stack.settings.max_duration_s / 60:g} phút"
    assert minutes in text_of(browser, "limits")
    assert "No file selected" in text_of(browser, "file-name")
    submit = browser.find_element("id", "submit")
    assert not submit.is_enabled()

    browser.find_element("id", "file").send_keys(str(clip))
    assert text_of(browser, "file-name") == clip.name and submit.is_enabled()
    submit.click()
    stages: list[tuple[str, str]] = []

    def transcript_lines():
        stages.append((text_of(browser, "stage"), text_of(browser, "percent")))
        return browser.find_elements("css selector", "#lines .line")

    try:
        lines = wait_for(transcript_lines, 90, interval=0.1, what="the transcript lines")
    except AssertionError:
        jobs = requests.get(f"{live_url}/v1/jobs", timeout=5).json()["jobs"][:1]
        raise AssertionError(f"no transcript lines; seen {stages[-3:]}, jobs {jobs}") from None
    assert text_of(browser, "stage") == "Hoàn tất · Completed"
    assert text_of(browser, "percent") == "100%"
    assert len(stages) > 1 and stages[0][0] != "Hoàn tất · Completed"  # it was followed live

    job = requests.get(f"{live_url}/v1/jobs", timeout=5).json()["jobs"][0]
    assert job["status"] == "completed" and job["original_filename"] == clip.name
    shown = " ".join(line.find_element("tag name", "span").text for line in lines)
    assert shown.split() == job["transcript"].split()
    assert all(line.find_element("tag name", "time").text.count(":") == 1 for line in lines)

    _play_from_a_line(browser, lines[-1])
    _check_downloads(browser, live_url, job)
    _check_copy(browser, live_url, job)
    _check_recent_jobs(browser, job)
    _check_self_contained(browser, live_url)

    desktop = screenshot(browser, "web-desktop.png", 1280, mobile=False)
    phone = screenshot(browser, "web-375.png", 375, mobile=True)
    widths = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert widths == [375, 375], "the page scrolls sideways at phone width"
    assert desktop.stat().st_size > 10_000 and phone.stat().st_size > 10_000


def _play_from_a_line(browser, line) -> None:
    start = float(line.get_attribute("data-start"))
    line.click()
    player_time = wait_for(
        lambda: browser.execute_script(
            "const p = document.getElementById('player');"
            "return p.readyState >= 1 && p.currentTime > 0 ? p.currentTime : 0"
        ),
        10, what="the player to seek",
    )
    assert player_time == pytest.approx(start, abs=0.5)
    assert "active" in line.get_attribute("class")
    wait_for(  # it plays: the position moves on from the line's start
        lambda: browser.execute_script("return document.getElementById('player').currentTime")
        > start + 0.2,
        10, what="the audio to play",
    )


def _check_downloads(browser, live_url: str, job: dict) -> None:
    link = browser.find_element("id", "dl-txt")
    stem = Path(job["original_filename"]).stem
    assert link.get_attribute("download") == f"{stem}.txt"
    link.click()
    saved = browser.downloads / f"{stem}.txt"
    wait_for(saved.exists, 15, what="the TXT download")
    assert saved.read_text(encoding="utf-8").strip() == job["transcript"]
    srt = requests.get(browser.find_element("id", "dl-srt").get_attribute("href"), timeout=5)
    assert srt.status_code == 200 and srt.text.startswith("1\n") and " --> " in srt.text
    vtt = requests.get(browser.find_element("id", "dl-vtt").get_attribute("href"), timeout=5)
    assert vtt.text.startswith("WEBVTT")
    as_json = requests.get(browser.find_element("id", "dl-json").get_attribute("href"), timeout=5)
    assert as_json.json()["text"] == job["transcript"]


def _check_copy(browser, live_url: str, job: dict) -> None:
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": live_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    browser.find_element("id", "copy").click()
    wait_for(lambda: "Copied" in text_of(browser, "copy-status"), 5, what="the copy notice")
    copied = browser.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('!' + e))"
    )
    assert copied == job["transcript"]


def _check_recent_jobs(browser, job: dict) -> None:
    row = wait_for(
        lambda: browser.find_elements("css selector", f'.job[data-job-id="{job["id"]}"]'),
        10, what="the job in the recent list",
    )[0]
    assert "Hoàn tất" in row.find_element("css selector", ".status").text
    assert row.find_element("css selector", ".when").text.startswith("0:03")


def _check_self_contained(browser, live_url: str) -> None:
    """Nothing from outside the service, and the bundled Vietnamese font really in use."""
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources and all(url.startswith(live_url) for url in resources), resources
    assert any(url.endswith(".woff2") for url in resources)
    fonts = browser.execute_async_script(
        "const done = arguments[0]; document.fonts.ready.then(() => done(["
        "  document.fonts.check('16px \"Noto Sans Vi\"', 'Tiếng Việt ạ ằ ẵ ỹ ợ đ'),"
        "  [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)]))"
    )
    assert fonts[0] and any("Noto Sans Vi" in family for family in fonts[1])
    title = browser.find_element("tag name", "h1").text
    assert title == unicodedata.normalize("NFC", title) == "Chuyển giọng nói thành văn bản"


def _word_that_finds(live_url: str, job: dict) -> str:
    """A word of the job's transcript (the tiny model's: whatever it wrote) whose first page of
    hits holds the job; earlier tests' jobs of the same clip may hold the same words."""
    for word in dict.fromkeys(job["transcript"].split()):
        found = requests.get(f"{live_url}/v1/search", params={"q": word}, timeout=10).json()
        if job["id"] in {hit["job_id"] for hit in found["results"]}:
            return word
    raise AssertionError(f"no word of {job['transcript']!r} finds its job on the first page")


@sqlite_only
def test_search_box_lists_hits_and_a_click_plays_from_there(
    browser, live_url, worker, vi_clip, tmp_path
):
    # The clip with a little seeded noise: the tiny model then writes words of its own, not
    # those of every earlier test's job of the same clip (which would share the first page).
    import soundfile as sf

    audio, rate = sf.read(str(vi_clip), dtype="float32")
    noise = np.random.default_rng(int(time.time())).normal(0, 0.02, len(audio)).astype(np.float32)
    clip = write_audio(tmp_path / "search-me.wav", audio + noise, rate, "wav")
    with clip.open("rb") as handle:
        job = requests.post(f"{live_url}/v1/jobs", files={"file": handle}, timeout=10).json()
    job = wait_for(
        lambda: (j := requests.get(job["links"]["self"], timeout=5).json())["status"]
        == "completed" and j,
        90, what="the job to complete",
    )
    word = _word_that_finds(live_url, job)
    browser.get(live_url + "/")
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready"), 10)
    browser.find_element("id", "search-q").send_keys(word)
    browser.find_element("id", "search-go").click()
    hit = wait_for(
        lambda: browser.find_elements("css selector", f'.hit[data-job-id="{job["id"]}"]'),
        10, what="the job among the hits",
    )[0]
    assert hit.find_elements("tag name", "mark"), "the matched word is marked"
    start = float(hit.get_attribute("data-start"))
    hit.click()
    wait_for(lambda: "search-me" in text_of(browser, "result-meta"), 10, what="the job shown")
    player_time = wait_for(
        lambda: browser.execute_script(
            "const p = document.getElementById('player');"
            "return p.readyState >= 1 && p.src ? [p.currentTime] : null"
        ),
        10, what="the player to load",
    )[0]
    assert player_time == pytest.approx(start, abs=0.5)


@sqlite_only
def test_upload_progress_then_a_failure_in_plain_words(browser, live_url, worker, tmp_path):
    """A 60 s silent WAV (1.9 MB) over a throttled link: the bar moves, then the job fails."""
    silent = write_audio(tmp_path / "im-lặng.wav", np.zeros(60 * 16000, np.float32), 16000, "wav")
    browser.get(live_url + "/")
    wait_for(lambda: browser.find_elements("css selector", "body[data-ready]"), 10, what="page")
    browser.find_element("id", "file").send_keys(str(silent))
    throttle = {"offline": False, "latency": 5, "downloadThroughput": -1}
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 1024 * 1024}
    )
    browser.find_element("id", "submit").click()
    seen: list[str] = []

    def failed() -> bool:
        seen.append(f"{text_of(browser, 'stage')} {text_of(browser, 'percent')}")
        return visible(browser, "result-error")

    wait_for(failed, 60, interval=0.05, what="the failure in the result panel")
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1}
    )
    percents = {int(s.split()[-1].rstrip("%")) for s in seen if "Uploading" in s and "%" in s}
    assert any(0 < p < 100 for p in percents), seen  # XMLHttpRequest upload progress events
    message = text_of(browser, "result-error")
    assert message == "Bản ghi chỉ có im lặng, không có giọng nói. · The recording is silent."
    assert not visible(browser, "actions")  # nothing to copy or download
    job = requests.get(f"{live_url}/v1/jobs", timeout=5).json()["jobs"][0]
    assert job["error"]["code"] == "silent_audio"
    row = wait_for(
        lambda: browser.find_elements("css selector", f'.job[data-job-id="{job["id"]}"]'),
        10,
        what="the failed job in the list",
    )[0]
    why = row.find_element("css selector", ".why")
    assert why.text == message and why.get_attribute("title") == "the audio is digital silence"
    assert "Thất bại" in row.find_element("css selector", ".status").text


@sqlite_only
def test_banner_warns_about_fallback_and_non_commercial_models(
    browser, live_url, worker, sessions
):
    name = add_heartbeat(
        sessions, model_id="openai/whisper-base", fallback=True, model_license="cc-by-nc-4.0"
    )
    try:
        browser.get(live_url + "/")
        wait_for(lambda: visible(browser, "banner"), 10, what="the warning banner")
        banner = text_of(browser, "banner")
        assert "mô hình dự phòng" in banner and "thương mại" in banner
        assert f"worker {name} serves a fallback model" in banner
    finally:
        remove_heartbeat(sessions, name)
    browser.get(live_url + "/")
    wait_for(lambda: browser.find_elements("css selector", "body[data-ready]"), 10, what="page")
    # The fixture's tiny model card says cc-by-nc-4.0: that notice stays, the fallback one goes.
    banner = text_of(browser, "banner")
    assert "thương mại" in banner and "dự phòng" not in banner


@sqlite_only
def test_a_dropped_file_is_chosen(browser, live_url):
    browser.get(live_url + "/")
    wait_for(lambda: browser.find_elements("css selector", "body[data-ready]"), 10, what="page")
    browser.execute_script(
        "const drop = document.getElementById('drop'); const data = new DataTransfer();"
        "data.items.add(new File([new Uint8Array(64)], 'giọng nói.mp3', {type: 'audio/mpeg'}));"
        "drop.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true}));"
        "window.wasDragging = drop.classList.contains('dragging');"
        "drop.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));"
    )
    assert browser.execute_script("return window.wasDragging")
    assert text_of(browser, "file-name") == "giọng nói.mp3"
    assert browser.find_element("id", "submit").is_enabled()
    assert "dragging" not in browser.find_element("id", "drop").get_attribute("class")


@sqlite_only
def test_with_a_key_configured_the_page_asks_for_it(
    browser, keyed_live_url, worker, vi_clip, tmp_path
):
    """Keys on: the page asks for one, refuses a wrong one in plain words, and with the right one
    uploads, follows, plays (a blob: URL: <audio> cannot send a header) and downloads."""
    url, clip = keyed_live_url, copy_clip(vi_clip, tmp_path)
    browser.get(url + "/")
    wait_for(lambda: browser.find_elements("css selector", "body[data-ready]"), 10, what="page")
    field = browser.find_element("id", "api-key")
    assert visible(browser, "key-form") and not visible(browser, "key-forget")
    assert field.get_attribute("type") == "password"
    assert field.get_attribute("autocomplete") == "off"
    assert browser.execute_script("return document.activeElement.id") == "api-key"

    _use_key(browser, "stt_not-the-right-key")
    wait_for(lambda: visible(browser, "key-error"), 10, what="the refusal")
    assert text_of(browser, "key-error") == UNAUTHORIZED
    browser.find_element("id", "file").send_keys(str(clip))
    browser.find_element("id", "submit").click()
    wait_for(lambda: visible(browser, "upload-error"), 10, what="the refused upload")
    assert text_of(browser, "upload-error") == UNAUTHORIZED

    _use_key(browser, WEB_KEY)
    wait_for(lambda: "Kept for this session" in text_of(browser, "key-status"), 10, what="key")
    assert not visible(browser, "key-error") and visible(browser, "key-forget")
    assert not visible(browser, "api-key")  # the row shrinks to a note and "forget"
    assert browser.execute_script("return sessionStorage.getItem('stt-api-key')") == WEB_KEY
    browser.find_element("id", "submit").click()  # the same file, still chosen
    lines = wait_for(
        lambda: browser.find_elements("css selector", "#lines .line"), 90, what="the transcript"
    )
    bearer = {"Authorization": f"Bearer {WEB_KEY}"}
    job = requests.get(f"{url}/v1/jobs", headers=bearer, timeout=5).json()["jobs"][0]
    assert job["status"] == "completed" and job["original_filename"] == clip.name
    shown = " ".join(line.find_element("tag name", "span").text for line in lines)
    assert shown.split() == job["transcript"].split()

    src = wait_for(
        lambda: browser.execute_script("return document.getElementById('player').src"),
        30, what="the audio source",
    )
    assert src.startswith("blob:")
    _play_from_a_line(browser, lines[-1])
    _check_keyed_download(browser, job)
    _check_recent_jobs(browser, job)
    _check_key_stays_out_of_urls(browser)
    assert screenshot(browser, "web-key-375.png", 375, mobile=True).stat().st_size > 10_000
    widths = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert widths == [375, 375], "the key row makes the page scroll sideways at phone width"

    browser.find_element("id", "key-forget").click()
    assert browser.execute_script("return sessionStorage.getItem('stt-api-key')") is None
    assert not visible(browser, "result") and not browser.find_elements("css selector", ".job")
    assert visible(browser, "api-key") and not visible(browser, "key-forget")


def _use_key(browser, key: str) -> None:
    field = browser.find_element("id", "api-key")
    field.clear()
    field.send_keys(key)
    browser.find_element("id", "key-save").click()
    assert field.get_attribute("value") == ""  # not left sitting in the page


def _check_keyed_download(browser, job: dict) -> None:
    link = browser.find_element("id", "dl-txt")
    assert link.get_attribute("href").startswith("blob:")
    link.click()
    saved = browser.downloads / f"{Path(job['original_filename']).stem}.txt"
    wait_for(saved.exists, 15, what="the TXT download")
    assert saved.read_text(encoding="utf-8").strip() == job["transcript"]


def _check_key_stays_out_of_urls(browser) -> None:
    urls = browser.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    assert urls and not any(WEB_KEY in u or "stt_not-the-right-key" in u for u in urls), urls


# --- the routes the page relies on ------------------------------------------------------------


@sqlite_only
def test_index_is_served_with_a_strict_content_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "media-src 'self' blob:;" in policy  # blob: for keyed audio, nothing broader
    for asset in ("/static/app.js", "/static/app.css", "/static/fonts/NotoSans-Regular-vi.woff2"):
        assert client.get(asset).status_code == 200, asset
    config = client.get("/web/config").get_json()
    assert config["max_duration_s"] == client.application.extensions["stt"].settings.max_duration_s
    assert config["formats"] == ["mp3", "wav", "m4a", "ogg"]
    assert config["auth_required"] is False


@sqlite_only
def test_web_config_says_when_a_key_is_needed(stack):
    client = keyed_app(stack).test_client()
    config = client.get("/web/config")  # open, so the page learns it needs a key before it has one
    assert config.status_code == 200 and config.get_json()["auth_required"] is True
    assert client.get("/").status_code == 200
    assert client.get("/v1/jobs").status_code == 401


@sqlite_only
def test_audio_route_serves_ranges_of_the_processed_wav(client, worker, vi_clip):
    with vi_clip.open("rb") as handle:
        job = client.post(
            "/v1/jobs", data={"file": (handle, vi_clip.name)}, content_type="multipart/form-data"
        ).get_json()
    wait_for(
        lambda: client.get(f"/v1/jobs/{job['id']}").get_json()["status"] == "completed",
        60, what="the job",
    )
    whole = client.get(f"/v1/jobs/{job['id']}/audio")
    assert whole.status_code == 200 and whole.mimetype == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.data[:4] == b"RIFF"
    part = client.get(f"/v1/jobs/{job['id']}/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(whole.data)}"
    missing = client.get(f"/v1/jobs/{uuid.uuid4()}/audio")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "job_not_found"


@sqlite_only
def test_audio_route_refuses_unfinished_jobs(client, stack, tmp_path):
    from shared.store.tables import Job

    sessions = make_session_factory(make_engine(stack.settings.database_url))
    job_id = uuid.uuid4()
    with session_scope(sessions) as session:
        session.add(Job(id=job_id, status="queued", source="upload", input_path=str(tmp_path)))
    answer = client.get(f"/v1/jobs/{job_id}/audio")
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "job_not_finished"
    with session_scope(sessions) as session:
        session.query(Job).filter_by(id=job_id).delete()


def test_static_files_load_nothing_from_elsewhere():
    static = ROOT / "api" / "static"
    for path in static.glob("*.*"):
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
