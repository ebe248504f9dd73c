"""The /ui page driven as a person would: headless Chromium types, picks, clicks and gets real speech.

Needs Debian's chromium (/usr/bin/chromium) and the playwright and gradio packages;
skips without them. Every request the page makes to a host other than the test
server is refused and recorded, and the test fails if there is any.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOT = Path("/tmp/voxserve-ui.png")
TEXT = "今天天气很好，我们一起去公园散步吧。"

# Records what the page plays: the player builds its <audio> outside the DOM, so
# watch the media element API itself.
WATCH_MEDIA = """
window.__played = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  window.__played.push(this.currentSrc || this.src);
  return play.call(this);
};
"""
FETCH_B64 = """async (url) => {
  const blob = await (await fetch(url)).blob();
  return await new Promise((ok) => {
    const r = new FileReader();
    r.onload = () => ok(r.result.split(',')[1]);
    r.readAsDataURL(blob);
  });
}"""


def test_import_does_not_load_gradio():
    code = "import sys, voxserve.server.ui; sys.exit('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_chunks_accepts_tuple_iterable_and_async():
    from voxserve.server.ui import _chunks

    one = (24000, np.ones(3, dtype=np.float32))

    def tuple_fn(*a):
        return one

    def gen_fn(*a):
        yield one
        yield one

    async def agen_fn(*a):
        yield one

    async def collect(fn):
        return [c async for c in _chunks(fn, "你好", None, None, 1.0, 1.0)]

    assert [len(asyncio.run(collect(f))) for f in (tuple_fn, gen_fn, agen_fn)] == [1, 2, 1]


class _FakeStream:
    def __init__(self, chunks):
        self.chunks, self.cancelled = chunks, False

    async def __aiter__(self):
        for c in self.chunks:
            yield c


class _FakeEngine:
    """Two chunks of 0.1 s per job; records the jobs and streams it handed out."""

    def __init__(self):
        self.jobs, self.streams = [], []

    def submit(self, job):
        from voxserve.engine.interface import AudioChunk

        self.jobs.append(job)
        chunks = [AudioChunk(np.full(2400, 0.1 * (i + 1), np.float32), 24000, i, i == 1) for i in range(2)]
        stream = _FakeStream(chunks)
        stream.cancel = lambda: setattr(stream, "cancelled", True)
        self.streams.append(stream)
        return stream


def test_engine_synthesizer_streams_job_chunks():
    from voxserve.server.ui import _chunks, engine_synthesizer

    engine = _FakeEngine()
    synth = engine_synthesizer(engine)

    async def collect():
        return [c async for c in _chunks(synth, "你好。", "baker", "happy", 1.5, 0.9)]

    chunks = asyncio.run(collect())
    assert [(sr, float(x[0])) for sr, x in chunks] == [
        (24000, pytest.approx(0.1)),
        (24000, pytest.approx(0.2)),
    ]
    job = engine.jobs[0]
    assert job.stream and job.text == "你好。" and job.voice == "baker"
    assert (job.params.emotion, job.params.speed, job.params.pitch) == ("开心", 1.5, 0.9)
    assert not engine.streams[0].cancelled


def test_engine_synthesizer_cancels_when_abandoned():
    from voxserve.server.ui import _chunks, engine_synthesizer

    engine = _FakeEngine()

    async def first_only():
        gen = _chunks(engine_synthesizer(engine), "你好。", None, None, 1.0, 1.0)
        chunk = await gen.__anext__()
        await gen.aclose()
        return chunk

    asyncio.run(first_only())
    assert engine.streams[0].cancelled


def test_engine_synthesizer_rejects_bad_emotion_before_submit():
    from voxserve.errors import NotFound
    from voxserve.server.ui import _chunks, engine_synthesizer

    engine = _FakeEngine()

    async def run():
        return [c async for c in _chunks(engine_synthesizer(engine), "你好", None, "grumpy", 1.0, 1.0)]

    with pytest.raises(NotFound):
        asyncio.run(run())
    assert engine.jobs == []


def test_mount_ui_for_service_serves_page():
    pytest.importorskip("gradio")
    from types import SimpleNamespace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from voxserve.server.ui import mount_ui

    app = FastAPI()
    mount_ui(app, SimpleNamespace(config=SimpleNamespace(voice="baker"), engine=_FakeEngine()), stream=False)
    r = TestClient(app).get("/ui/")
    assert r.status_code == 200 and "gradio" in r.text.lower()


# Browser tests last: Playwright's sync API keeps an event loop running while its fixture lives.


@pytest.fixture(scope="module")
def ui_server(tts):
    """The real server and serving engine with the UI mounted, under uvicorn on a free loopback port.

    Yields the base URL and the engine jobs submitted so far (the UI's requests).
    """
    pytest.importorskip("gradio")
    pytest.importorskip("playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    import uvicorn

    from voxserve.engine.runtime import Engine
    from voxserve.server.app import create_app
    from voxserve.server.config import ServerConfig
    from voxserve.server.ui import mount_ui

    engine = Engine(tts, voices=["baker"])
    jobs: list = []
    submit = engine.submit

    def recording_submit(job):
        jobs.append(job)
        return submit(job)

    engine.submit = recording_submit  # type: ignore[method-assign]
    app = create_app(ServerConfig(ui=False, api_keys=()), engine=engine)
    mount_ui(app, app.state.service, stream=False)
    if shutil.which("ffmpeg"):  # Gradio's streamed audio is encoded to AAC by ffmpeg
        mount_ui(app, app.state.service, path="/ui-stream", stream=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", jobs
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, base, path, outside):
    """A page at ``path`` that refuses (and records in ``outside``) requests to any other host."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(120_000)  # synthesis on 2 CPU cores

    def only_loopback(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.add_init_script(WATCH_MEDIA)
    page.goto(f"{base}{path}")
    return page


def _speak(page, text, emotion):
    page.locator("#vx-text textarea").fill(text)
    page.locator("#vx-emotion input").click()
    page.get_by_role("option", name=emotion).click()
    page.locator("#vx-go").click()


def _check_speech(audio, sr, low_s, high_s):
    assert sr == 24000 and audio.ndim == 1
    assert low_s < len(audio) / sr < high_s, len(audio) / sr
    assert float(np.sqrt(np.mean(audio**2))) > 0.02  # not silence
    assert float(np.abs(audio).max()) < 1.0  # not clipped


def test_ui_speaks_mandarin_with_emotion(ui_server, browser):
    base, jobs = ui_server
    outside: list[str] = []
    page = _open(browser, base, "/ui/", outside)
    _speak(page, TEXT, "开心")

    page.wait_for_function("window.__played.length > 0")
    src = page.evaluate("window.__played[0]")
    audio, sr = sf.read(io.BytesIO(base64.b64decode(page.evaluate(FETCH_B64, src))), dtype="float32")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert jobs and jobs[-1].text == TEXT and jobs[-1].params.emotion == "开心"
    assert jobs[-1].voice == "baker" and jobs[-1].stream
    _check_speech(audio, sr, 1.5, 10.0)  # 17 characters of Mandarin

    href = page.locator("#vx-download a[download]").get_attribute("href")
    assert href and href.endswith(".wav")
    download, dsr = sf.read(io.BytesIO(base64.b64decode(page.evaluate(FETCH_B64, href))), dtype="float32")
    assert dsr == sr and len(download) == len(audio)
    assert outside == [], f"the page tried to reach other hosts: {outside}"
    page.close()


def test_ui_empty_text_shows_error(ui_server, browser):
    base, jobs = ui_server
    page = browser.new_page()
    page.goto(f"{base}/ui/")
    before = len(jobs)
    page.locator("#vx-go").click()
    page.get_by_text("enter some text").first.wait_for(timeout=30_000)
    assert len(jobs) == before
    page.close()


def test_ui_streams_while_synthesizing(ui_server, browser):
    if not shutil.which("ffmpeg"):
        pytest.skip("streamed playback needs ffmpeg")
    base, jobs = ui_server
    outside: list[str] = []
    page = _open(browser, base, "/ui-stream/", outside)
    text = "春天来了，花开了。小鸟在树上唱歌。孩子们在草地上放风筝。"
    _speak(page, text, "悲伤")
    # The player plays the streamed (HLS) source; the WAV download comes when synthesis ends.
    page.wait_for_function(
        "(() => { const a = document.querySelector('#vx-audio audio'); return a && a.currentTime > 0.3; })()"
    )
    streamed = page.evaluate("document.querySelector('#vx-audio audio').duration")
    href = page.locator("#vx-download a[download]").get_attribute("href")
    audio, sr = sf.read(io.BytesIO(base64.b64decode(page.evaluate(FETCH_B64, href))), dtype="float32")
    assert jobs[-1].text == text and jobs[-1].params.emotion == "悲伤"
    _check_speech(audio, sr, 3.0, 15.0)  # three sentences
    assert page.evaluate("window.__played.length") > 0
    assert streamed > 1.0
    assert outside == [], f"the page tried to reach other hosts: {outside}"
    page.close()
