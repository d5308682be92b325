// The upload page: plain JavaScript against the public API (/v1/jobs, /readyz), no build step.
// Text from the server is always set with textContent (never innerHTML) and NFC-normalised, so
// Vietnamese diacritics render as single composed letters. With API keys on, the key lives in
// sessionStorage and travels only in an Authorization header, never in a URL (access logs).
"use strict";

const POLL_MS = 1000;
const RECENT_JOBS = 15;
const TERMINAL = new Set(["completed", "failed", "canceled"]);
const ALLOWED = ["mp3", "wav", "m4a", "ogg"];
const KEY_STORAGE = "stt-api-key";
const KEY_KEPT = "Đã lưu cho phiên này · Kept for this session";

// Error codes (a public contract, see shared/errors.py) in plain words: [Vietnamese, English].
const ERRORS = {
  unsupported_format: ["Định dạng tệp không được hỗ trợ. Hãy dùng MP3, WAV, M4A hoặc OGG.",
    "This file type is not supported. Use MP3, WAV, M4A or OGG."],
  undecodable_audio: ["Không đọc được âm thanh trong tệp, có thể tệp đã bị hỏng.",
    "The audio could not be read; the file may be damaged."],
  decoder_unavailable: ["Máy chủ không giải mã được loại âm thanh này.",
    "The server cannot decode this kind of audio."],
  empty_audio: ["Tệp không chứa âm thanh.", "The file contains no audio."],
  silent_audio: ["Bản ghi chỉ có im lặng, không có giọng nói.", "The recording is silent."],
  audio_too_long: ["Bản ghi dài hơn giới hạn cho phép.", "The recording is longer than allowed."],
  upload_too_large: ["Tệp quá lớn.", "The file is too large."],
  missing_audio: ["Chưa có tệp âm thanh nào được gửi.", "No audio file was sent."],
  invalid_request: ["Yêu cầu không hợp lệ.", "The request was not valid."],
  transcription_failed: ["Máy chủ gặp lỗi khi chuyển thành văn bản. Hãy thử lại.",
    "Transcription failed on the server. Please try again."],
  time_limit_exceeded: ["Xử lý quá lâu nên đã bị dừng.", "Processing took too long and was stopped."],
  too_many_attempts: ["Máy xử lý bị gián đoạn nhiều lần nên công việc đã dừng.",
    "The worker was interrupted repeatedly, so the job was stopped."],
  worker_lost: ["Máy xử lý bị gián đoạn.", "The worker was interrupted."],
  model_load_failed: ["Không tải được mô hình nhận dạng.", "The speech model could not be loaded."],
  broker_unavailable: ["Dịch vụ đang tạm thời gián đoạn. Hãy thử lại sau ít phút.",
    "The service is temporarily unavailable. Try again in a few minutes."],
  database_unavailable: ["Dịch vụ đang tạm thời gián đoạn. Hãy thử lại sau ít phút.",
    "The service is temporarily unavailable. Try again in a few minutes."],
  canceled: ["Công việc đã bị hủy.", "The job was canceled."],
  network: ["Mất kết nối tới máy chủ. Hãy kiểm tra mạng và thử lại.",
    "Could not reach the server. Check the connection and try again."],
  unauthorized: ["Cần một khóa API hợp lệ. Hãy nhập khóa API bạn được cấp.",
    "A valid API key is needed. Enter the API key you were given."],
};
const GENERIC_ERROR = ["Đã xảy ra lỗi.", "Something went wrong."];

const STAGES = {
  uploading: "Đang tải lên · Uploading",
  queued: "Đang chờ xử lý · Queued",
  processing: "Đang xử lý · Processing",
  completed: "Hoàn tất · Completed",
  failed: "Thất bại · Failed",
  canceled: "Đã hủy · Canceled",
};

const $ = (id) => document.getElementById(id);
const nfc = (text) => (text == null ? "" : String(text).normalize("NFC"));

const state = {
  file: null, config: null, current: null, pollTimer: null, text: "",
  key: readKey(), objectUrls: [],  // objectUrls: blob: URLs of the job on show, revoked on change
  seekTo: null, searchCursor: null,  // a search hit's time to play from; the next page of hits
};

// ---- formatting ---------------------------------------------------------------------------

function friendlyError(error, status) {
  const code = status === "canceled" ? "canceled" : (error && error.code) || "";
  const [vi, en] = ERRORS[code] || GENERIC_ERROR;
  return `${vi} · ${en}`;
}

function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function limitText(seconds) {
  // [Vietnamese, English] for "at most this long".
  if (seconds >= 3600) {
    const hours = +(seconds / 3600).toFixed(1);
    return [`tối đa ${hours} giờ`, `up to ${hours} h`];
  }
  if (seconds >= 60) {
    const minutes = +(seconds / 60).toFixed(1);
    return [`tối đa ${minutes} phút`, `up to ${minutes} min`];
  }
  return [`tối đa ${seconds} giây`, `up to ${seconds} s`];
}

function when(iso) {
  const date = new Date(iso);
  return isNaN(date) ? "" : date.toLocaleString("vi-VN", { dateStyle: "short", timeStyle: "short" });
}

function baseName(job) {
  const name = nfc(job.original_filename || job.id);
  return name.replace(/\.[^.]+$/, "") || "transcript";
}

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

async function getJson(url) {
  const headers = { Accept: "application/json", ...authHeaders(url) };
  const response = await fetch(url, { headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) askForKey(true);
  return { ok: response.ok, status: response.status, body };
}

// ---- the API key --------------------------------------------------------------------------

function readKey() {
  // sessionStorage, not localStorage: the key is gone when the tab closes.
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";  // storage disabled: the key then lasts until the page is reloaded
  }
}

function authHeaders(url) {
  return state.key && url.startsWith("/v1/") ? { Authorization: `Bearer ${state.key}` } : {};
}

function keyMissing() {
  return !!(state.config && state.config.auth_required) && !state.key;
}

// Once a key is kept the row shrinks to a note and "forget"; a refusal opens the field again.
function keyEntry(open) {
  show($("api-key"), open);
  show($("key-save"), open);
  show($("key-forget"), !!state.key);
}

function askForKey(refused) {
  show($("key-form"), true);
  keyEntry(true);
  const error = $("key-error");
  error.textContent = refused ? friendlyError({ code: "unauthorized" }) : "";
  show(error, refused);
  $("key-status").textContent = "";
  $("api-key").focus();
}

function saveKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  // A header value must be printable ASCII; anything else cannot be a key this service issued.
  if (!/^[\x21-\x7e]+$/.test(key)) return askForKey(true);
  state.key = key;
  try {
    sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage disabled: keep the key in memory only
  }
  $("api-key").value = "";
  show($("key-error"), false);
  keyEntry(false);
  $("key-status").textContent = KEY_KEPT;
  loadJobs();  // tries the key at once: a refusal brings the message back
}

function forgetKey() {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing was stored
  }
  state.key = "";
  clearTimeout(state.pollTimer);
  state.current = null;
  resetMedia();
  // What the key showed goes with it: this may be a shared computer.
  show($("result"), false);
  $("jobs").replaceChildren();
  keyEntry(true);
  $("key-status").textContent = "Đã quên khóa · Key forgotten";
  $("api-key").focus();
}

function setupKey() {
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", forgetKey);
  keyEntry(!state.key);
  if (state.key) $("key-status").textContent = KEY_KEPT;
}

// ---- audio and downloads behind a key -------------------------------------------------------

// <audio src> and <a href> cannot send a header, so with a key the page fetches the bytes itself
// and hands them over as a blob: URL. While the API is open the plain URL is simpler and streams.
async function mediaUrl(url) {
  if (!state.key) return url;
  const response = await fetch(url, { headers: authHeaders(url) });
  if (response.status === 401) askForKey(true);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const href = URL.createObjectURL(await response.blob());
  state.objectUrls.push(href);
  return href;
}

function resetMedia() {
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load();  // drops the old audio now, not when the element is next given a source
  state.objectUrls.forEach((href) => URL.revokeObjectURL(href));
  state.objectUrls = [];
}

// ---- settings and the warning banner ------------------------------------------------------

async function loadConfig() {
  const { ok, body } = await getJson("/web/config");
  if (!ok) return;
  state.config = body;
  if (body.auth_required) show($("key-form"), true);
  const formats = body.formats.map((f) => f.toUpperCase()).join(", ");
  const [vi, en] = limitText(body.max_duration_s);
  $("limits").textContent = `${formats} · ${vi} (${en}) · ≤ ${body.max_upload_mb} MB`;
}

function isNonCommercial(license) {
  return !!license && license.toLowerCase().split("-").includes("nc");
}

async function loadBanner() {
  let body;
  try {
    ({ body } = await getJson("/readyz"));
  } catch {
    return;
  }
  const workers = body.workers || [];
  const lines = [];
  const fallbacks = workers.filter((w) => w.fallback);
  const strong = fallbacks.filter((w) => w.engine === "conformer" && w.model_note);
  if (strong.length) {
    lines.push(`Máy xử lý đang dùng mô hình mặc định ngoại tuyến: ${strong[0].model_note}.`);
  }
  if (fallbacks.length > strong.length) {
    lines.push("Cảnh báo: máy xử lý đang dùng mô hình dự phòng, kết quả có thể kém chính xác hơn.");
  }
  if (workers.some((w) => isNonCommercial(w.model_license))) {
    lines.push("Lưu ý: giấy phép của mô hình không cho phép sử dụng vào mục đích thương mại.");
  }
  const banner = $("banner");
  banner.replaceChildren();
  if (!lines.length) return show(banner, false);
  lines.forEach((line) => banner.append(el("p", "", line)));
  (body.warnings || []).forEach((warning) => banner.append(el("p", "detail", nfc(warning))));
  show(banner, true);
}

// ---- choosing a file ----------------------------------------------------------------------

function chooseFile(file) {
  state.file = file || null;
  const label = $("file-name");
  label.classList.toggle("chosen", !!file);
  label.textContent = file ? nfc(file.name) : "Chưa chọn tệp · No file selected";
  $("submit").disabled = !file;
  show($("upload-error"), false);
}

function tooLarge(file) {
  const limit = state.config && state.config.max_upload_mb;
  return limit && file.size > limit * 1024 * 1024;
}

function setupPicker() {
  const input = $("file");
  const drop = $("drop");
  input.addEventListener("change", () => chooseFile(input.files[0]));
  ["dragenter", "dragover"].forEach((type) =>
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    }));
  ["dragleave", "drop"].forEach((type) =>
    drop.addEventListener(type, () => drop.classList.remove("dragging")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) chooseFile(file);
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.file) upload(state.file);
  });
}

// ---- uploading and following the job ------------------------------------------------------

function setProgress(stage, percent) {
  show($("progress-box"), true);
  $("stage").textContent = STAGES[stage] || stage;
  const bar = $("progress");
  if (percent == null) {
    bar.removeAttribute("value");
    $("percent").textContent = "";
  } else {
    bar.value = percent;
    $("percent").textContent = `${Math.round(percent)}%`;
  }
}

function uploadFailed(message) {
  show($("progress-box"), false);
  const box = $("upload-error");
  box.textContent = message;
  show(box, true);
  $("submit").disabled = !state.file;
}

function upload(file) {
  if (tooLarge(file)) return uploadFailed(friendlyError({ code: "upload_too_large" }));
  const ext = file.name.split(".").pop().toLowerCase();
  if (!ALLOWED.includes(ext) && !file.type.startsWith("audio/")) {
    return uploadFailed(friendlyError({ code: "unsupported_format" }));
  }
  $("submit").disabled = true;
  show($("upload-error"), false);
  setProgress("uploading", 0);
  const form = new FormData();
  form.append("file", file, file.name);
  if ($("diarize").checked) form.append("diarize", "true");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  for (const [name, value] of Object.entries(authHeaders("/v1/jobs"))) {
    xhr.setRequestHeader(name, value);
  }
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) setProgress("uploading", (100 * event.loaded) / event.total);
  });
  xhr.addEventListener("load", () => {
    const body = xhr.response || {};
    if (xhr.status === 200 || xhr.status === 202) return follow(body);
    if (xhr.status === 401) askForKey(true);
    uploadFailed(friendlyError(body.error));
  });
  xhr.addEventListener("error", () => uploadFailed(friendlyError({ code: "network" })));
  xhr.send(form);
}

function follow(job) {
  clearTimeout(state.pollTimer);
  state.current = job.id;
  chooseFile(null);
  $("file").value = "";
  loadJobs();
  poll(job.id);
}

async function poll(jobId) {
  if (state.current !== jobId) return;
  let result;
  try {
    result = await getJson(`/v1/jobs/${jobId}`);
  } catch {
    state.pollTimer = setTimeout(() => poll(jobId), POLL_MS * 3);
    return;
  }
  const job = result.body;
  if (!result.ok) return uploadFailed(friendlyError(job.error));
  setProgress(job.status, job.status === "queued" ? null : job.progress);
  if (!TERMINAL.has(job.status)) {
    state.pollTimer = setTimeout(() => poll(jobId), POLL_MS);
    return;
  }
  $("submit").disabled = !state.file;
  loadJobs();
  showJob(job);
}

// ---- the transcript -----------------------------------------------------------------------

async function showJob(job) {
  state.current = job.id;
  show($("result"), true);
  const duration = job.duration_s != null ? ` · ${clock(job.duration_s)}` : "";
  $("result-meta").textContent = `${nfc(job.original_filename || job.id)}${duration}`;
  $("lines").replaceChildren();
  resetMedia();
  ["plain", "actions", "lines-hint", "player", "result-error"].forEach((id) => show($(id), false));
  if (job.status !== "completed") {
    $("result-error").textContent = friendlyError(job.error, job.status);
    return show($("result-error"), true);
  }
  const { ok, body } = await getJson(`/v1/jobs/${job.id}/transcript?format=json`);
  if (state.current !== job.id) return;
  state.text = nfc(ok ? body.text : job.transcript);
  const segments = ok ? (body.segments || []).filter((s) => nfc(s.text).trim()) : [];
  if (segments.length) renderLines(job, segments);
  else renderPlain();
  if (await setDownloads(job)) show($("actions"), true);
}

function renderPlain() {
  $("plain").textContent = state.text || "(không nhận ra lời nói · no speech recognised)";
  show($("plain"), true);
}

async function setPlayer(job) {
  let src;
  try {
    src = await mediaUrl(`/v1/jobs/${job.id}/audio`);
  } catch {
    return;  // no audio to play: the transcript still reads fine
  }
  if (state.current !== job.id) return;  // another job was opened meanwhile
  $("player").src = src;
  show($("player"), true);
  if (state.seekTo != null) playFrom(state.seekTo);  // opened from a search hit
  state.seekTo = null;
}

function renderLines(job, segments) {
  setPlayer(job);
  show($("lines-hint"), true);
  const speakers = [...new Set(segments.map((s) => s.speaker).filter((s) => s != null))];
  const items = segments.map((segment, i) => {
    const button = el("button", "line");
    button.type = "button";
    button.dataset.start = segment.start;
    button.dataset.end = segment.end;
    button.append(el("time", "", clock(segment.start)));
    if (segment.speaker != null) {
      // a speaker turn starts where the speaker changes; its badge names who speaks
      const turn = i === 0 || segments[i - 1].speaker !== segment.speaker;
      const badge = el("b", `speaker speaker-${speakers.indexOf(segment.speaker) % 6}`,
        turn ? nfc(String(segment.speaker)) : "");
      badge.setAttribute("aria-label", `${segment.speaker}`);
      button.append(badge);
      button.classList.add("with-speaker");
      if (turn && i > 0) button.classList.add("turn");
    }
    button.append(el("span", "", nfc(segment.text).trim()));
    button.addEventListener("click", () => playFrom(segment.start));
    const item = el("li");
    item.append(button);
    return item;
  });
  $("lines").replaceChildren(...items);
}

function playFrom(seconds) {
  const player = $("player");
  player.currentTime = seconds;
  highlightLine();
  player.play().catch(() => {});  // a browser may refuse autoplay; the position is still set
}

function highlightLine() {
  const now = $("player").currentTime;
  document.querySelectorAll(".line").forEach((line) => {
    const inside = now >= +line.dataset.start && now < +line.dataset.end;
    line.classList.toggle("active", inside);
  });
}

async function setDownloads(job) {
  const links = [...document.querySelectorAll("#actions a[data-format]")];
  const hrefs = await Promise.all(links.map((link) =>
    mediaUrl(`/v1/jobs/${job.id}/transcript?format=${link.dataset.format}`).catch(() => null)));
  if (state.current !== job.id) return false;
  links.forEach((link, i) => {
    show(link, !!hrefs[i]);
    if (hrefs[i]) link.href = hrefs[i];
    link.download = `${baseName(job)}.${link.dataset.format}`;
  });
  return true;
}

async function copyText() {
  const status = $("copy-status");
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(state.text);
    } else {
      copyWithSelection(state.text);
    }
    status.textContent = "Đã sao chép · Copied";
  } catch {
    status.textContent = "Không sao chép được · Copy failed";
  }
  setTimeout(() => (status.textContent = ""), 3000);
}

function copyWithSelection(text) {
  // Plain http on a LAN address is not a secure context, so the Clipboard API is missing there.
  const area = el("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

// ---- recent jobs --------------------------------------------------------------------------

async function loadJobs() {
  if (keyMissing()) return askForKey(false);  // no point in a request bound to be refused
  let result;
  try {
    result = await getJson(`/v1/jobs?limit=${RECENT_JOBS}`);
  } catch {
    return;
  }
  if (!result.ok) return;
  const jobs = result.body.jobs || [];
  show($("jobs-empty"), !jobs.length);
  $("jobs").replaceChildren(...jobs.map(jobRow));
}

function jobRow(job) {
  const button = el("button", "job");
  button.type = "button";
  button.dataset.jobId = job.id;
  button.append(el("span", "name", nfc(job.original_filename || job.id)));
  const label = job.status === "processing" ? `${STAGES.processing} ${Math.round(job.progress)}%`
    : STAGES[job.status] || job.status;
  button.append(el("span", `status ${job.status}`, label));
  const duration = job.duration_s != null ? `${clock(job.duration_s)} · ` : "";
  button.append(el("span", "when", `${duration}${when(job.created_at)}`));
  if (job.status === "failed" || job.status === "canceled") {
    const why = el("span", "why", friendlyError(job.error, job.status));
    if (job.error) why.title = nfc(job.error.message);
    button.append(why);
  }
  button.addEventListener("click", () => { state.seekTo = null; openJob(job); });
  const item = el("li");
  item.append(button);
  return item;
}

function openJob(job) {
  clearTimeout(state.pollTimer);
  if (TERMINAL.has(job.status)) {
    showJob(job);
  } else {
    state.current = job.id;
    poll(job.id);
  }
  $("result").scrollIntoView({ behavior: "smooth", block: "start" });
}

// ---- search ---------------------------------------------------------------------------------

async function search(event, cursor) {
  if (event) event.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return;
  if (keyMissing()) return askForKey(false);
  const params = new URLSearchParams({ q, limit: "20" });
  if (cursor) params.set("cursor", cursor);
  let result;
  try {
    result = await getJson(`/v1/search?${params}`);
  } catch {
    result = { ok: false, body: {} };
  }
  const hits = result.ok ? result.body.results || [] : [];
  const rows = hits.map(hitRow);
  if (cursor) $("hits").append(...rows);
  else $("hits").replaceChildren(...rows);
  const status = !result.ok ? friendlyError((result.body || {}).error, "failed")
    : !cursor && !hits.length ? "Không tìm thấy · Nothing found" : "";
  $("search-status").textContent = status;
  show($("search-status"), !!status);
  state.searchCursor = result.ok ? result.body.next_cursor : null;
  show($("search-more"), !!state.searchCursor);
}

// The matched words are marked from the hit's offsets (`marks`), never parsed as HTML.
function markedText(text, marks) {
  const span = el("span", "hit-text");
  let last = 0;
  marks.forEach(([start, end]) => {
    span.append(text.slice(last, start), el("mark", "", text.slice(start, end)));
    last = end;
  });
  span.append(text.slice(last));
  return span;
}

function hitRow(hit) {
  const button = el("button", "hit");
  button.type = "button";
  button.dataset.jobId = hit.job_id;
  button.dataset.start = hit.start;
  const name = nfc(hit.job.original_filename || hit.job_id);
  button.append(el("time", "", clock(hit.start)), el("span", "name", name));
  button.append(markedText(hit.text, hit.marks));
  button.addEventListener("click", () => openHit(hit));
  const item = el("li");
  item.append(button);
  return item;
}

async function openHit(hit) {
  const { ok, body } = await getJson(`/v1/jobs/${hit.job_id}`);
  if (!ok) return;
  state.seekTo = hit.start;
  openJob(body);
}

// ---- start --------------------------------------------------------------------------------

function start() {
  setupPicker();
  setupKey();
  $("copy").addEventListener("click", copyText);
  $("refresh").addEventListener("click", () => loadJobs());
  $("search-form").addEventListener("submit", search);
  $("search-more").addEventListener("click", () => search(null, state.searchCursor));
  ["timeupdate", "seeked"].forEach((type) => $("player").addEventListener(type, highlightLine));
  // data-ready tells scripts (and the browser tests) that the first answers are on the page.
  // The job list waits for the settings: they say whether a key must be asked for first.
  Promise.allSettled([loadConfig().then(loadJobs), loadBanner()]).then(() => {
    document.body.dataset.ready = "1";
  });
}

start();
