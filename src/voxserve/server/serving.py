"""Server logic without FastAPI: requests become engine jobs, chunks become encoded bytes.

``SpeechService`` validates a ``SpeechRequest`` into a ``SpeechPlan`` (model, voice,
emotion from ``instructions``, limits), submits it to the ``ServingEngine``, and turns
the engine's chunks into a whole file, a byte stream, or SSE events. It owns the
draining flag and the HTTP metrics. It knows nothing about routes, sockets or
status codes: errors leave as typed ``VoxserveError``s and app.py maps them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import AudioChunk, ServingEngine, ShuttingDown, SpeechJob, SpeechStream
from voxserve.engine.streaming import ChunkPlan
from voxserve.errors import InvalidInput, NotFound, VoxserveError
from voxserve.server.config import ServerConfig
from voxserve.server.encoding import FORMATS, encode_file, stream_encoder
from voxserve.server.instructions import emotion_from_instructions
from voxserve.server.metrics import HttpMetrics
from voxserve.server.protocol import (
    CharTiming,
    ModelInfo,
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechRequest,
    Usage,
    VoiceInfo,
)
from voxserve.server.workers import worker_label

if TYPE_CHECKING:
    from voxserve.engine.speakers import VoiceDirectory
    from voxserve.engine.tts import TTS
    from voxserve.packs.pack import PackConfig

log = logging.getLogger("voxserve.server")

SERVED_MODEL = "voxserve"
MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
"""OpenAI's model names, accepted so unchanged clients work; all mean ``voxserve``."""
OPENAI_VOICES = frozenset(
    [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]
)
"""OpenAI's built-in voice names; with ``openai_voices`` on they mean the default voice."""


@dataclass(frozen=True)
class SpeechPlan:
    """A validated request: the engine job plus how to deliver its audio."""

    job: SpeechJob
    response_format: str
    stream_format: str | None
    """None: one complete file; ``audio``: chunked bytes; ``sse``: events."""
    input_chars: int

    @property
    def media_type(self) -> str:
        return (
            "text/event-stream" if self.stream_format == "sse" else FORMATS[self.response_format].media_type
        )


WARMUP_TEXTS = ("你好，欢迎。", "Hello, welcome.")
"""Tried in order on each voice at start until one speaks."""
NO_DEADLINE_S = 24 * 3600.0
"""What "no deadline" means to the engine, which wants a number."""


def _cloning_packs(directories: Sequence[VoiceDirectory] | None) -> list[str]:
    """Packs that registered voices speak with (the registry's ``pack``), when installed or convertible.

    Served from the start so a voice registered later works at once; absent packs are skipped
    (registration still works, speech with such a voice is refused with a clear error).
    """
    from voxserve.packs import store

    wanted = {getattr(getattr(d, "config", None), "pack", None) for d in directories or ()}
    available = set(store.available())
    return sorted(p for p in wanted if p and p in available)


def build_engine(
    config: ServerConfig, tts: TTS | None = None, directories: Sequence[VoiceDirectory] | None = None
) -> ServingEngine:
    """The real serving engine for ``config``; it loads nothing until ``start()``.

    ``tts`` shares voices already loaded (tests); by default a new ``TTS`` is made from
    the config. ``directories`` resolve registered voice ids (default: the TTS's).
    Imported here so that importing the server stays cheap.
    """
    from voxserve.engine.runtime import Engine
    from voxserve.engine.tts import TTS

    if tts is None:
        tts = TTS(
            voice=config.voice,
            backend=config.backend,
            device=config.device,
            threads=config.threads,
            directories=directories or (),
        )
    voices = [config.voice, *(v for v in config.preload if v != config.voice)]
    return Engine(
        tts,
        voices=voices,
        optional_voices=_cloning_packs(directories),
        fallback=config.fallback,
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
        default_deadline_s=config.deadline_s or NO_DEADLINE_S,
        cache=config.cache,
        directories=directories,
        chunking=ChunkPlan(
            first_s=config.stream_first_s,
            growth=config.stream_growth,
            max_s=config.stream_max_s,
            call_s=config.vocoder_call_s,
        ),
    )


class SpeechService:
    """Turns speech requests into audio through one ``ServingEngine``; shared by all routes."""

    def __init__(self, engine: ServingEngine, config: ServerConfig) -> None:
        self.engine = engine
        self.config = config
        self.metrics = HttpMetrics()
        self.started = False
        self.draining = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine (loads and warms voices), then warm the request path; ready afterwards."""
        await self.engine.start()
        await self._warm()
        self.started = True

    async def _warm(self) -> None:
        # One short job per voice through the engine and every encoder, so the first real
        # request pays no first-call costs (text dictionaries, codec set-up). A failure here
        # is logged, not fatal: the voice may still serve other text.
        rate = 0
        for voice in (self.config.voice, *self.config.preload):
            for text in WARMUP_TEXTS:
                try:
                    chunks = [c async for c in self.engine.submit(SpeechJob(text=text, voice=voice))]
                except VoxserveError as e:
                    log.warning("warm-up of voice %s with %r failed: %s", voice, text, e)
                    continue
                rate = chunks[-1].sample_rate if chunks else rate
                break
        if rate:
            silence = np.zeros(rate // 10, dtype=np.float32)
            for fmt in FORMATS:
                try:
                    await asyncio.to_thread(encode_file, fmt, silence, rate)
                except ImportError as e:
                    # PyAV missing: wav, flac and pcm still work; requests for the others fail with a clear error.
                    log.warning("response format %s unavailable: %s", fmt, e)

    def begin_drain(self) -> None:
        """Refuse new requests (503) from now on; requests in flight go on."""
        if not self.draining:
            log.info("draining: new requests get 503, in-flight ones finish")
        self.draining = True

    async def stop(self) -> None:
        """Drain: let the engine finish in-flight jobs, then stop it."""
        self.begin_drain()
        await self.engine.stop(drain=True)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and bool(self.engine.ready)

    @property
    def state(self) -> str:
        return "draining" if self.draining else "ready" if self.ready else "starting"

    # --- requests --------------------------------------------------------------------------

    def plan(self, req: SpeechRequest) -> SpeechPlan:
        """Check a request against this server and build its engine job. Raises InvalidInput/NotFound."""
        if req.model not in (SERVED_MODEL, *MODEL_ALIASES):
            raise NotFound(
                f"unknown model {req.model!r}; available: {', '.join((SERVED_MODEL, *MODEL_ALIASES))}",
                param="model",
            )
        if len(req.input) > self.config.max_input_chars:
            raise InvalidInput(
                f"input is {len(req.input)} characters; this server's limit is {self.config.max_input_chars}",
                param="input",
            )
        if req.timestamps and req.stream_format != "sse":
            raise InvalidInput(
                "timestamps are sent in SSE events: set stream_format to 'sse'", param="timestamps"
            )
        voice = req.voice_id
        if voice is not None and self.config.openai_voices and voice.lower() in OPENAI_VOICES:
            voice = None
        emotion = req.emotion if req.emotion is not None else emotion_from_instructions(req.instructions)
        # Packs styled by prompts (EmotiVoice) read the instructions themselves; others use the emotion.
        params = SynthesisParams.create(
            req.speed, req.pitch, req.energy, req.volume, emotion, instructions=req.instructions
        )
        job = SpeechJob(
            text=req.input,
            voice=voice,
            params=params,
            stream=req.stream_format is not None,
            deadline_s=self.config.deadline_s,
            timestamps=req.timestamps,
        )
        return SpeechPlan(job, req.response_format, req.stream_format, len(req.input))

    def submit(self, plan: SpeechPlan) -> SpeechStream:
        """Hand the job to the engine; raises ShuttingDown while draining, else what the engine raises."""
        if self.draining:
            raise ShuttingDown("the server is shutting down; retry on another instance")
        return self.engine.submit(plan.job)

    async def collect(self, plan: SpeechPlan, stream: SpeechStream) -> tuple[bytes, dict[str, str]]:
        """All of a job's audio as one file of ``plan.response_format``, with response headers."""
        parts: list[np.ndarray] = []
        rate = 0
        async for chunk in stream:
            parts.append(chunk.samples)
            rate = chunk.sample_rate
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if not rate:
            raise VoxserveError("the engine returned no audio")
        fmt = plan.response_format
        body = (
            encode_file(fmt, samples, rate)
            if fmt in ("wav", "pcm")
            else await asyncio.to_thread(encode_file, fmt, samples, rate)
        )
        return body, self.audio_headers(rate) | {"X-Audio-Duration": f"{len(samples) / rate:.3f}"}

    @staticmethod
    def audio_headers(sample_rate: int) -> dict[str, str]:
        """Headers every speech response carries (the PCM rate matters: pcm has no header of its own)."""
        return {"X-Sample-Rate": str(sample_rate)}

    async def first_chunk(self, stream: SpeechStream) -> tuple[AudioChunk | None, AsyncIterator[AudioChunk]]:
        """Wait for the first chunk, so errors before any audio still get a proper status code."""
        it = aiter(stream)
        try:
            return await anext(it), it
        except StopAsyncIteration:
            return None, it

    async def audio_bytes(
        self, plan: SpeechPlan, first: AudioChunk | None, rest: AsyncIterator[AudioChunk], sample_rate: int
    ) -> AsyncIterator[tuple[bytes, AudioChunk | None]]:
        """Encoded pieces of the file as chunks arrive, each with the chunk it came from (None: trailer)."""
        enc = stream_encoder(plan.response_format, sample_rate)
        cheap = plan.response_format in ("wav", "pcm")

        async def encode(samples: np.ndarray) -> bytes:
            return enc.encode(samples) if cheap else await asyncio.to_thread(enc.encode, samples)

        if first is not None:
            yield await encode(first.samples), first
            async for chunk in rest:
                yield await encode(chunk.samples), chunk
        yield (enc.finish() if cheap else await asyncio.to_thread(enc.finish)), None

    async def sse_events(
        self, plan: SpeechPlan, first: AudioChunk | None, rest: AsyncIterator[AudioChunk], sample_rate: int
    ) -> AsyncIterator[tuple[bytes, AudioChunk | None]]:
        """SSE frames: one ``speech.audio.delta`` per encoded piece, then ``speech.audio.done``."""
        samples = 0
        async for data, chunk in self.audio_bytes(plan, first, rest, sample_rate):
            if chunk is not None:
                samples += len(chunk.samples)
            stamps = None
            if plan.job.timestamps and chunk is not None:
                stamps = [CharTiming(text=t.text, start=t.start, end=t.end) for t in chunk.chars]
            if data or stamps:
                event = SpeechAudioDelta(audio=base64.b64encode(data).decode(), timestamps=stamps)
                yield sse_frame(event.model_dump_json(exclude_none=True)), chunk
        frames = round(samples / sample_rate * 50) if sample_rate else 0
        usage = Usage(
            input_tokens=plan.input_chars, output_tokens=frames, total_tokens=plan.input_chars + frames
        )
        yield sse_frame(SpeechAudioDone(usage=usage).model_dump_json()), None

    # --- listings --------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=m) for m in (SERVED_MODEL, *MODEL_ALIASES)]

    def voices(self) -> list[VoiceInfo]:
        """Voices installed or convertible, with what their packs say (reads pack configs; call in a thread).

        Each served multi-speaker pack (EmotiVoice) also lists its speakers, as ``<pack>:<speaker>``.
        """
        from voxserve.errors import PackError
        from voxserve.packs import store
        from voxserve.packs.pack import Pack

        out: list[VoiceInfo] = []
        speakers: list[VoiceInfo] = []
        installed = set(store.installed())
        served = served_packs(self.config)
        for name in store.available():
            info = VoiceInfo(id=name, name=name, language=None, default=name == self.config.voice)
            if name in installed:
                try:
                    cfg = Pack(store.packs_dir() / name).config
                except PackError as e:
                    log.warning("voice %s: %s", name, e)
                    continue
                emotions = list(cfg.emotions) or list(cfg.prosody_presets)
                facts = {
                    "language": cfg.language,
                    "gender": cfg.gender,
                    "emotions": emotions,
                    "sample_rate": cfg.sample_rate,
                    "instructions": cfg.style.get("kind") == "emotivoice-prompt",
                }
                info = info.model_copy(update=facts)
                if name in served and _lists_speakers(cfg):
                    speakers.extend(
                        info.model_copy(
                            update={
                                "id": f"{name}:{s}",
                                "name": s,
                                "default": f"{name}:{s}" == self.config.voice,
                            }
                        )
                        for s in cfg.speakers
                    )
            out.append(info)
        return out + speakers

    def render_metrics(self) -> bytes:
        """Engine metrics (when the engine has them) followed by the HTTP ones, Prometheus text."""
        engine_metrics = getattr(self.engine, "metrics", None)
        head = engine_metrics.render() if engine_metrics is not None else b""
        if head and not head.endswith(b"\n"):
            head += b"\n"
        tail = b""
        worker = worker_label()
        if worker is not None:  # --workers: say which process answered (metrics are per process)
            tail = (
                b"# HELP voxserve_worker The server worker process that rendered these metrics.\n"
                b"# TYPE voxserve_worker gauge\n"
                + f'voxserve_worker{{index="{worker[0]}",workers="{worker[1]}"}} 1\n'.encode()
            )
        return head + self.metrics.render() + tail


def _lists_speakers(cfg: PackConfig) -> bool:
    """Whether a pack's named speakers are voices of their own: a speaker table (EmotiVoice), or the
    training speakers of a pack that takes d-vectors (the clone voice: ``clone:<speaker>``)."""
    return cfg.speaker_input == "table" or (cfg.speaker_input == "embedding" and bool(cfg.speakers))


def served_packs(config: ServerConfig) -> list[str]:
    """Names of the packs a server with ``config`` serves: its default voice's and the preloaded ones."""
    # getattr: UI callers may pass a minimal config that names only the default voice.
    preload = getattr(config, "preload", ())
    return list(dict.fromkeys(v.split(":", 1)[0] for v in (config.voice, *preload)))


def voice_names(config: ServerConfig) -> list[str]:
    """Voice ids for menus: the default voice first, the served packs' speakers, then every other pack.

    Reads pack configs (cheap JSON); a pack that cannot be read contributes its name only.
    """
    from voxserve.errors import PackError
    from voxserve.packs import store
    from voxserve.packs.pack import Pack

    names = [config.voice]
    for name in served_packs(config):
        names.append(name)
        if name in store.installed():
            try:
                cfg = Pack(store.packs_dir() / name).config
            except PackError:
                continue
            if _lists_speakers(cfg):
                names.extend(f"{name}:{s}" for s in cfg.speakers)
    names.extend(store.available())
    return list(dict.fromkeys(names))


def sse_frame(data: str) -> bytes:
    """One server-sent event carrying ``data`` (JSON; the event name is its ``type`` field, as OpenAI does)."""
    return f"data: {data}\n\n".encode()
