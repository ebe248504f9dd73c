"""The /ui page's "clone a voice" part, driven in headless Chromium: upload a clip, name it, register, speak.

The server serves the tiny random clone pack (``packs/clone/tiny.py``) in a temporary
VOXSERVE_HOME; the reference clip is real speech (baker), so the real speaker encoder
embeds it. Registration goes through the same ``VoiceRegistry`` as ``POST /v1/audio/voices``
(the test reads it back from the app's registry).

The microphone source cannot be tested here: headless Chromium has no capture device,
and a fake one (``--use-fake-device-for-media-stream``) plays a beep, which the registry
rightly refuses as speech. The page uploads a recording as a WAV file, the same path as
the upload tested below. Needs Debian's chromium and the playwright and gradio packages.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from test_ui import CHROMIUM, CHROMIUM_ARGS, FETCH_B64, _open

REFERENCE_TEXT = "今天天气很好，我们一起去公园散步吧。然后再去吃饭，晚上早点回家休息。"
TEXT = "你好，这是我的新声音。"


@pytest.fixture(scope="module")
def clip_files(tts, tmp_path_factory):
    """A baker reference clip as WAV, and a one-second piece of it (too short to register)."""
    audio = tts.synthesize(REFERENCE_TEXT)
    samples = np.asarray(audio.samples, dtype=np.float32)
    root = tmp_path_factory.mktemp("ui-clips")
    sf.write(root / "reference.wav", samples, audio.sample_rate)
    sf.write(root / "short.wav", samples[: audio.sample_rate], audio.sample_rate)
    return root / "reference.wav", root / "short.wav"


@pytest.fixture(scope="module")
def clone_server(clip_files, tmp_path_factory):
    """The real server (default voice: the tiny clone pack) with the UI, under uvicorn.

    Yields the base URL, the app, and the engine jobs submitted so far.
    """
    pytest.importorskip("gradio")
    pytest.importorskip("playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    import uvicorn

    from voxserve.packs.clone.tiny import write_tiny_pack
    from voxserve.server.app import create_app
    from voxserve.server.config import ServerConfig
    from voxserve.server.ui import mount_ui

    root = tmp_path_factory.mktemp("ui-clone-home")
    write_tiny_pack(root / "packs" / "clone", name="clone", seed=9)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_HOME", str(root))
        mp.delenv("VOXSERVE_VOICE_STORE", raising=False)
        mp.delenv("VOXSERVE_CLONE_PACK", raising=False)
        app = create_app(ServerConfig(voice="clone", ui=False, api_keys=()))
        engine = app.state.service.engine
        jobs: list = []
        submit = engine.submit

        def recording_submit(job):
            jobs.append(job)
            return submit(job)

        engine.submit = recording_submit
        mount_ui(app, app.state.service, stream=False)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", app, jobs
        server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def browser(clone_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _register(page, clip, name):
    page.locator("#vx-clone-audio input[type=file]").set_input_files(str(clip))
    page.locator("#vx-clone-audio a[download]").wait_for()  # the upload finished
    page.locator("#vx-clone-name input, #vx-clone-name textarea").first.fill(name)
    page.locator("#vx-clone-go").click()


def test_upload_register_and_speak_with_the_new_voice(clone_server, browser, clip_files):
    base, app, jobs = clone_server
    registry = app.state.voice_registry
    before = {r.id for r in registry.list()}
    outside: list[str] = []
    page = _open(browser, base, "/ui/", outside)
    _register(page, clip_files[0], "Baker 克隆")

    status = page.locator("#vx-clone-status textarea, #vx-clone-status input").first
    page.wait_for_function(
        "(el) => el.value.includes('voice_')", arg=status.element_handle(), timeout=120_000
    )
    (new,) = [r for r in registry.list() if r.id not in before]  # the same registry as the HTTP routes
    assert new.name == "Baker 克隆" and new.embedding.shape == (256,)
    assert new.id in status.input_value() and "Baker 克隆" in status.input_value()
    assert new.id in page.locator("#vx-voice input").input_value()  # selected in the voice menu

    page.locator("#vx-text textarea").fill(TEXT)
    page.locator("#vx-go").click()
    page.wait_for_function("window.__played.length > 0")
    src = page.evaluate("window.__played[0]")
    audio, sr = sf.read(io.BytesIO(base64.b64decode(page.evaluate(FETCH_B64, src))), dtype="float32")
    assert jobs[-1].voice == new.id and jobs[-1].text == TEXT
    assert sr == 22050 and 0.5 < len(audio) / sr < 10.0
    assert outside == [], f"the page tried to reach other hosts: {outside}"
    page.close()


def test_voices_registered_elsewhere_are_in_the_menu(clone_server, browser, clip_files):
    """A voice registered over HTTP after the page was built shows up when a page loads."""
    base, app, _ = clone_server
    record = app.state.voice_registry.register("Elsewhere", [clip_files[0].read_bytes()])
    page = _open(browser, base, "/ui/", [])
    page.locator("#vx-voice input").click()
    page.get_by_role("option", name=f"Elsewhere ({record.id})").wait_for()
    page.close()


def test_refused_clips_show_the_registry_error(clone_server, browser, clip_files):
    base, app, _ = clone_server
    registry = app.state.voice_registry
    before = [r.id for r in registry.list()]
    page = _open(browser, base, "/ui/", [])
    page.locator("#vx-clone-go").click()  # nothing uploaded yet
    page.get_by_text("upload or record a reference clip first").first.wait_for(timeout=30_000)
    _register(page, clip_files[1], "Too short")  # one second of speech
    page.get_by_text("s of speech after cutting silence").first.wait_for(timeout=60_000)
    assert page.locator("#vx-clone-status textarea, #vx-clone-status input").first.input_value() == ""
    assert [r.id for r in registry.list()] == before
    page.close()
