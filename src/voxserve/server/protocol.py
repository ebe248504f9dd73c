"""Request and response bodies of the HTTP API (pydantic), following OpenAI's audio API.

Unknown request fields are rejected (400, ``code: unknown_parameter``), as OpenAI
does: a misspelt ``spead`` fails loudly instead of being ignored. Types are strict
(JSON's own: ``"speed": "1.5"`` or ``"pitch": true`` is a 400, not coerced). The official
client sends only known fields; voxserve's extensions (``emotion``, ``pitch``,
``energy``, ``volume``, ``timestamps``) go through its ``extra_body``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voxserve.engine.controls import RANGES

MAX_INPUT = 4096
"""OpenAI's limit on ``input``; a server may be configured lower, never higher."""

ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
StreamFormat = Literal["audio", "sse"]


class VoiceRef(BaseModel):
    """A voice given as an object, as OpenAI allows for custom voices: ``{"id": "baker"}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(..., min_length=1, max_length=128)


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``: OpenAI's fields plus voxserve extensions (sent via ``extra_body``).

    ``stream_format`` decides delivery: omitted, the response is one complete file with
    Content-Length; ``audio``, chunked bytes as the engine renders them; ``sse``, server-sent
    ``speech.audio.delta`` events and a final ``speech.audio.done``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    model: str = Field(
        "voxserve", min_length=1, max_length=128, description="model id from /v1/models (tts-1 etc. accepted)"
    )
    input: str = Field(..., min_length=1, max_length=MAX_INPUT, description="text to speak")
    voice: str | VoiceRef | None = Field(
        None, description="voice id from /v1/audio/voices; omitted: the server's default voice"
    )
    instructions: str | None = Field(
        None,
        max_length=4096,
        description="free-text style: a prompt for voices that take one (EmotiVoice), else an emotion it mentions",
    )
    response_format: ResponseFormat = Field("mp3", description="audio container; pcm is s16le mono")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="tempo multiplier")
    stream_format: StreamFormat | None = Field(
        None, description="audio: chunked bytes; sse: server-sent events; omitted: one complete file"
    )
    emotion: str | None = Field(
        None, max_length=32, description="extension: emotion label (开心) or English name (happy)"
    )
    pitch: float | None = Field(
        None, ge=RANGES["pitch"][0], le=RANGES["pitch"][1], description="extension: pitch multiplier"
    )
    energy: float | None = Field(
        None, ge=RANGES["energy"][0], le=RANGES["energy"][1], description="extension: energy multiplier"
    )
    volume: float | None = Field(
        None, ge=RANGES["volume"][0], le=RANGES["volume"][1], description="extension: output gain"
    )
    timestamps: bool = Field(
        False, description="extension: character timings in each SSE delta (needs stream_format=sse)"
    )

    @property
    def voice_id(self) -> str | None:
        """The voice name, whichever way it was given."""
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape."""

    error: ErrorBody


class CharTiming(BaseModel):
    """When one character is spoken, in seconds from the start of the audio."""

    text: str
    start: float
    end: float


class SpeechAudioDelta(BaseModel):
    """SSE event with the next piece of the encoded audio file."""

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str = Field(..., description="base64 of the next bytes of the file in response_format")
    timestamps: list[CharTiming] | None = Field(None, description="extension: characters ending here")


class Usage(BaseModel):
    """OpenAI's usage block; voxserve counts input characters as input tokens."""

    input_tokens: int
    output_tokens: int = Field(..., description="audio length in 20 ms frames")
    total_tokens: int


class SpeechAudioDone(BaseModel):
    """The last SSE event of a successful stream."""

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: Usage


class SpeechError(BaseModel):
    """SSE event sent instead of ``speech.audio.done`` when a stream fails after it began."""

    type: Literal["error"] = "error"
    error: ErrorBody


SSE_EVENTS = (SpeechAudioDelta, SpeechAudioDone, SpeechError)
"""Every event a ``stream_format=sse`` response can carry, for the OpenAPI schema."""


class VoiceInfo(BaseModel):
    """One voice the server can speak with."""

    id: str
    name: str
    language: str | None = Field(None, description="language tag, e.g. zh; None until the pack is built")
    gender: str | None = None
    emotions: list[str] = Field(default_factory=list, description="emotion labels it accepts")
    instructions: bool = Field(
        default=False,
        description="free-text instructions steer its style as a prompt (EmotiVoice), not only emotion",
    )
    sample_rate: int | None = None
    default: bool = False


class VoiceList(BaseModel):
    voices: list[VoiceInfo]


class ModelInfo(BaseModel):
    """OpenAI's model object."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "voxserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: Literal["ready", "starting", "draining"]
    ready: bool
