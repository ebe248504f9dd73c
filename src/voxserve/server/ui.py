"""The browser demo at ``/ui``: a Gradio page mounted on the server's FastAPI app.

The page has a text box, voice, emotion, speed and pitch controls, an audio
player that starts by itself, and a WAV download of the last result. The page
itself (``mount_demo``) sees only two plain values: the voice names and a
``synthesize`` callable. ``mount_ui(app, service)``, which the server calls, fills
them from the server's ``SpeechService``: voices from the pack store, with each served
multi-speaker pack's speakers (``emotivoice:<speaker>``), audio
streamed from the service's ``ServingEngine``. When the server has a voice registry,
a "clone a voice" part (``ui_clone.py``) registers a reference clip, uploaded or
recorded, through it and adds the voice to the menu. It does not expose energy or
volume, and it never calls the HTTP API (no auth, no HTTP metrics).

Gradio is imported inside ``mount_demo`` only: a server started without the UI pays
nothing for it. Nothing here reaches the network: analytics are off, the theme
uses the browser's own fonts, there are no share links, and server-side
rendering (which would start Node) is off.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from voxserve.engine.controls import EMOTIONS, RANGES
from voxserve.errors import VoxserveError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voxserve.engine.interface import ServingEngine
    from voxserve.server.serving import SpeechService
    from voxserve.server.ui_clone import Cloning

Chunk: TypeAlias = tuple[int, np.ndarray]
"""(sample rate in Hz, mono float32 samples in [-1, 1])."""

Synthesize: TypeAlias = Callable[
    [str, "str | None", "str | None", float, float], "Chunk | Iterable[Chunk] | AsyncIterable[Chunk]"
]
"""``synthesize(text, voice, emotion, speed, pitch)``: one chunk, or chunks in order (sync or async).

Raises a VoxserveError for input the user can fix; the page shows its message.
A plain (sync) callable or iterator runs in a worker thread, never on the event loop.
"""

KEEP_FILES = 16
"""WAV files kept for download; older ones are deleted (each page shows only its last result)."""

_STREAM_CHUNK_S = 0.5  # audio per streamed piece: short enough to start playback early


def mount_ui(app: FastAPI, service: SpeechService, *, path: str = "/ui", stream: bool | None = None) -> None:
    """Mount the page for a server: its default voice first, synthesis through ``service.engine``.

    With a voice registry on the app (``app.state.voice_registry``, set by the voice routes)
    the page can also register voices into it. Raises ImportError when gradio is not
    installed (the server then runs without the UI).
    """
    from voxserve.server.serving import voice_names
    from voxserve.server.ui_clone import admit_uploads, registry_cloning

    voices = voice_names(service.config)  # default first, then served packs' speakers (pack:speaker)
    registry = getattr(app.state, "voice_registry", None)
    cloning = registry_cloning(registry) if registry is not None else None
    if cloning is not None:
        admit_uploads(app, path, cloning)
    mount_demo(app, voices, engine_synthesizer(service.engine), path=path, stream=stream, cloning=cloning)


def mount_demo(
    app: FastAPI,
    voices: Sequence[str],
    synthesize: Synthesize,
    *,
    path: str = "/ui",
    stream: bool | None = None,
    cloning: Cloning | None = None,
) -> None:
    """Mount the demo page on ``app`` at ``path``.

    ``voices`` fills the voice menu (the first is selected). ``cloning`` adds the "clone a
    voice" part (None: no such part). ``stream``: True plays
    audio while it is being made (Gradio's streamed audio, which needs ffmpeg on the
    PATH); False plays the whole result when it is ready; None picks True exactly
    when ffmpeg is found. Call before the app starts: Gradio hooks the app's lifespan.
    """
    if not voices:
        raise ValueError("mount_demo needs at least one voice")
    # Gradio reads this when its analytics module loads; an explicit user setting wins.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    if stream is None:
        stream = shutil.which("ffmpeg") is not None
    workdir = Path(tempfile.mkdtemp(prefix="voxserve-ui-"))
    blocks = _build(gr, list(voices), synthesize, stream, workdir, cloning)
    # System fonts: the default theme would fetch Google Fonts from the browser.
    theme = gr.themes.Default(
        font=["system-ui", "Noto Sans CJK SC", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        allowed_paths=[str(workdir)],
        show_error=True,
        theme=theme,
        max_file_size=cloning.max_file_bytes if cloning is not None else None,
    )


def _build(
    gr: Any, voices: list[str], synthesize: Synthesize, stream: bool, workdir: Path, cloning: Cloning | None
) -> Any:
    files: deque[Path] = deque()
    low, high = RANGES["speed"]
    plow, phigh = RANGES["pitch"]

    async def speak(text: str, voice: str, emotion: str, speed: float, pitch: float) -> AsyncIterator[Any]:
        if not text or not text.strip():
            raise gr.Error("请输入要朗读的文字 (enter some text)")
        parts: list[np.ndarray] = []
        rate = 0
        try:
            async for sr, samples in _chunks(synthesize, text, voice, emotion, float(speed), float(pitch)):
                rate = sr
                parts.append(np.asarray(samples, dtype=np.float32).reshape(-1))
                if stream:
                    for piece in _pieces(parts[-1], sr):
                        yield _wav_bytes(piece, sr), gr.update()
        except VoxserveError as e:
            raise gr.Error(str(e)) from e
        if not parts:
            raise gr.Error("没有可以朗读的内容 (nothing to speak)")
        wav = _save(workdir, files, np.concatenate(parts), rate)
        # Streaming: the player already has the audio; the file only feeds the download.
        yield (gr.update() if stream else str(wav)), str(wav)

    with gr.Blocks(title="voxserve", analytics_enabled=False, delete_cache=(600, 3600)) as blocks:
        gr.Markdown("## voxserve 语音合成")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(
                    label="文本 (text)", lines=5, placeholder="输入中文句子……", elem_id="vx-text"
                )
            with gr.Column(scale=2):
                voice = gr.Dropdown(voices, value=voices[0], label="声音 (voice)", elem_id="vx-voice")
                emotion = gr.Dropdown(
                    list(EMOTIONS), value=EMOTIONS[0], label="情感 (emotion)", elem_id="vx-emotion"
                )
                speed = gr.Slider(low, high, value=1.0, step=0.05, label="语速 (speed)", elem_id="vx-speed")
                pitch = gr.Slider(plow, phigh, value=1.0, step=0.05, label="音高 (pitch)", elem_id="vx-pitch")
        button = gr.Button("合成 (synthesize)", variant="primary", elem_id="vx-go")
        audio = gr.Audio(
            label="语音 (speech)",
            type="filepath",
            format="wav",
            streaming=stream,
            autoplay=True,
            interactive=False,
            buttons=["download"],  # "share" targets Hugging Face Spaces
            elem_id="vx-audio",
        )
        download = gr.File(label="下载 WAV (download)", interactive=False, elem_id="vx-download")
        button.click(speak, [text, voice, emotion, speed, pitch], [audio, download], api_name="speak")
        if cloning is not None:
            from voxserve.server.ui_clone import clone_section

            clone_section(gr, blocks, voice, voices, cloning)
    return blocks


async def _chunks(
    synthesize: Synthesize, text: str, voice: str | None, emotion: str | None, speed: float, pitch: float
) -> AsyncIterator[Chunk]:
    """Calls ``synthesize`` and yields its chunks, keeping sync work off the event loop."""
    args = (text, voice, emotion, speed, pitch)
    if inspect.isasyncgenfunction(synthesize):
        result: Any = synthesize(*args)
    else:
        result = await asyncio.to_thread(synthesize, *args)
    if isinstance(result, tuple):
        yield result
    elif isinstance(result, AsyncIterable):
        try:
            async for chunk in result:
                yield chunk
        finally:  # run the producer's clean-up (engine cancel) now, not at garbage collection
            aclose = getattr(result, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        it = iter(result)
        done = object()
        while (chunk := await asyncio.to_thread(next, it, done)) is not done:
            yield chunk  # type: ignore[misc]


def _pieces(samples: np.ndarray, sample_rate: int) -> Iterable[np.ndarray]:
    step = max(1, int(_STREAM_CHUNK_S * sample_rate))
    return (samples[i : i + step] for i in range(0, len(samples), step))


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    from voxserve.engine.audio import Audio

    return Audio(samples, sample_rate).wav()


def _save(workdir: Path, files: deque[Path], samples: np.ndarray, sample_rate: int) -> Path:
    """Write one result as 16-bit WAV and drop the oldest files past KEEP_FILES."""
    fd, name = tempfile.mkstemp(prefix="speech-", suffix=".wav", dir=workdir)
    with os.fdopen(fd, "wb") as f:
        f.write(_wav_bytes(samples, sample_rate))
    files.append(Path(name))
    while len(files) > KEEP_FILES:
        files.popleft().unlink(missing_ok=True)
    return Path(name)


def engine_synthesizer(engine: ServingEngine) -> Synthesize:
    """A ``synthesize`` backed by the serving engine: its streamed chunks as they come.

    The job is cancelled when the page stops listening early (an error or a closed tab).
    """
    from voxserve.engine.controls import SynthesisParams
    from voxserve.engine.interface import SpeechJob

    async def synthesize(
        text: str, voice: str | None, emotion: str | None, speed: float, pitch: float
    ) -> AsyncIterator[Chunk]:
        params = SynthesisParams.create(speed=speed, pitch=pitch, emotion=emotion)
        stream = engine.submit(SpeechJob(text=text, voice=voice, params=params, stream=True))
        finished = False
        try:
            async for chunk in stream:
                yield chunk.sample_rate, chunk.samples
            finished = True
        finally:
            if not finished:
                stream.cancel()

    return synthesize
