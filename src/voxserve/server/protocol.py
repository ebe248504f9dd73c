"""Request and response bodies of the HTTP API (pydantic), following OpenAI's audio API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_INPUT = 4096


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``: OpenAI's fields plus voxserve extensions (via ``extra_body``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("voxserve", max_length=128, description="model name; any listed by /v1/models")
    input: str = Field(..., min_length=1, max_length=MAX_INPUT, description="text to speak")
    voice: str | None = Field(None, max_length=128, description="voice id; default voice if omitted")
    instructions: str | None = Field(None, max_length=4096, description="style instructions (emotion words)")
    response_format: Literal["wav", "pcm"] = Field("wav", description="audio container")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="tempo multiplier")
    emotion: str | None = Field(None, max_length=32, description="extension: emotion label or English name")
    pitch: float | None = Field(None, ge=0.5, le=2.0, description="extension: pitch multiplier")
    energy: float | None = Field(None, ge=0.25, le=4.0, description="extension: energy multiplier")
    volume: float | None = Field(None, ge=0.0, le=4.0, description="extension: output gain")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape."""

    error: ErrorBody
