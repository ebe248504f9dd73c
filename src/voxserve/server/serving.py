"""Server logic without FastAPI: turns validated requests into audio bytes.

Synthesis runs in worker threads so the event loop stays free. This module knows
nothing about routes; app.py maps its results and errors onto HTTP.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from voxserve.engine.controls import EMOTION_ALIASES, EMOTIONS
from voxserve.engine.tts import TTS
from voxserve.server.protocol import SpeechRequest

MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm"}


def emotion_from_instructions(text: str | None) -> str | None:
    """The first emotion label or English emotion word found in free text, else None."""
    if not text:
        return None
    for label in EMOTIONS:
        if label in text:
            return label
    lowered = text.lower()
    for word, label in EMOTION_ALIASES.items():
        if word in lowered:
            return label
    return None


class SpeechService:
    """Synthesizes speech requests with one TTS engine on a small thread pool."""

    def __init__(self, tts: TTS, workers: int = 2) -> None:
        self.tts = tts
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxserve-synth")
        self.ready = False

    def warmup(self, voice: str) -> None:
        self.tts.voice(voice).backend.warmup()
        self.tts.synthesize("你好。", voice=voice)
        self.ready = True

    async def speech(self, req: SpeechRequest) -> tuple[bytes, dict[str, str]]:
        emotion = req.emotion or emotion_from_instructions(req.instructions)
        audio = await asyncio.get_running_loop().run_in_executor(
            self.pool,
            lambda: self.tts.synthesize(
                req.input,
                voice=req.voice,
                speed=req.speed,
                pitch=req.pitch,
                energy=req.energy,
                volume=req.volume,
                emotion=emotion,
            ),
        )
        body = audio.wav() if req.response_format == "wav" else audio.pcm16()
        headers = {"X-Sample-Rate": str(audio.sample_rate), "X-Audio-Duration": f"{audio.duration:.3f}"}
        return body, headers
