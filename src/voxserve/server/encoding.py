"""Audio encoders for the HTTP responses: whole files and incremental streams.

Every format encodes incrementally: ``encode(samples)`` returns the bytes ready so
far and ``finish()`` the rest, and the pieces concatenated are one valid file:

- ``pcm``: s16le mono at the voice's rate, no header (the rate goes in a response header).
- ``wav``: 16-bit PCM; streamed, the RIFF and data sizes are 0xFFFFFFFF ("until the end"),
  which libsndfile, ffmpeg and Python's ``wave`` read to the end of the data.
- ``mp3`` (MPEG frames), ``opus`` (Ogg pages), ``aac`` (ADTS frames), ``flac``: PyAV's
  bundled encoders and muxers, no ffmpeg binary. Streamed, the muxer gets a sink that
  cannot seek, so nothing is patched afterwards; whole files get a seekable buffer, so
  FLAC's STREAMINFO carries the length and MP3 a Xing/LAME header (exact duration).
  Opus runs at 48/24/16/12/8 kHz; PyAV resamples other rates.

This module knows nothing about HTTP or the engine.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from voxserve.engine.audio import to_pcm16, wav_header


@dataclass(frozen=True)
class FormatSpec:
    """How one ``response_format`` is produced and labelled."""

    media_type: str
    """Content-Type of the response."""
    container: str | None = None
    """PyAV muxer name (None: written here)."""
    codec: str | None = None
    """PyAV encoder name."""
    bit_rate: int | None = None
    """Target bits per second for lossy codecs (mono speech)."""
    options: tuple[tuple[str, str], ...] = ()
    """Muxer options (Ogg pages every 20 ms so streamed Opus leaves at once)."""
    codec_options: tuple[tuple[str, str], ...] = ()
    """Encoder options (LAME's quality 7: about 25% less CPU than its default, same size, fine for speech)."""


FORMATS: dict[str, FormatSpec] = {
    "mp3": FormatSpec("audio/mpeg", "mp3", "libmp3lame", 64_000, codec_options=(("compression_level", "7"),)),
    "opus": FormatSpec("audio/ogg", "ogg", "libopus", 32_000, (("page_duration", "20000"),)),
    "aac": FormatSpec("audio/aac", "adts", "aac", 64_000),
    "flac": FormatSpec("audio/flac", "flac", "flac"),
    "wav": FormatSpec("audio/wav"),
    "pcm": FormatSpec("audio/pcm"),
}


class Encoder(ABC):
    """Incremental encoder of mono float32 audio into one format. Not thread-safe; one per response."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    @abstractmethod
    def encode(self, samples: np.ndarray) -> bytes:
        """Bytes that these samples complete (may be empty while a codec fills its frame)."""

    @abstractmethod
    def finish(self) -> bytes:
        """The remaining bytes; call once, after the last ``encode``."""


class PcmEncoder(Encoder):
    """Raw s16le: each piece is just the samples."""

    def encode(self, samples: np.ndarray) -> bytes:
        return to_pcm16(samples)

    def finish(self) -> bytes:
        return b""


class WavStreamEncoder(Encoder):
    """WAV with an open-ended header first, then raw samples."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._header: bytes | None = wav_header(sample_rate, None)

    def encode(self, samples: np.ndarray) -> bytes:
        head, self._header = self._header or b"", None
        return head + to_pcm16(samples)

    def finish(self) -> bytes:
        head, self._header = self._header or b"", None
        return head


class _Sink:
    """A write-only file for PyAV; without ``seek`` the muxer treats its output as a stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: Any) -> int:
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class AvEncoder(Encoder):
    """Encoder and muxer from PyAV; ``seekable`` False streams, True lets the muxer fix headers at the end."""

    def __init__(self, fmt: str, sample_rate: int, seekable: bool = False) -> None:
        import av

        super().__init__(sample_rate)
        spec = FORMATS[fmt]
        assert spec.container and spec.codec  # FORMATS entries without a muxer never get here
        self._file: _Sink | io.BytesIO = io.BytesIO() if seekable else _Sink()
        self._out = av.open(self._file, mode="w", format=spec.container, options=dict(spec.options))
        rates = av.codec.Codec(spec.codec, "w").audio_rates
        rate = sample_rate if not rates or sample_rate in rates else _nearest_rate(sample_rate, rates)
        stream = self._out.add_stream(spec.codec, rate=rate, options=dict(spec.codec_options))
        self._stream = cast("av.AudioStream", stream)
        self._stream.layout = "mono"
        if spec.bit_rate:
            self._stream.bit_rate = spec.bit_rate
        self._pts = 0

    def _drain(self) -> bytes:
        if isinstance(self._file, _Sink):
            return self._file.take()
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        import av

        if len(samples) == 0:
            return b""
        x = np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)[None]
        frame = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += x.shape[1]
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        return self._drain()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        if isinstance(self._file, io.BytesIO):
            return self._file.getvalue()
        return self._drain()


def _nearest_rate(rate: int, rates: Any) -> int:
    """The smallest supported rate at or above ``rate``, else the largest (resampling up loses nothing)."""
    above = sorted(r for r in rates if r >= rate)
    return above[0] if above else max(rates)


def stream_encoder(fmt: str, sample_rate: int) -> Encoder:
    """An incremental encoder whose pieces, concatenated, are one valid file of ``fmt``."""
    if fmt == "pcm":
        return PcmEncoder(sample_rate)
    if fmt == "wav":
        return WavStreamEncoder(sample_rate)
    if fmt not in FORMATS:
        raise KeyError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return AvEncoder(fmt, sample_rate)


def encode_file(fmt: str, samples: np.ndarray, sample_rate: int) -> bytes:
    """One complete file of ``fmt`` with exact lengths in its headers."""
    if fmt == "pcm":
        return to_pcm16(samples)
    if fmt == "wav":
        data = to_pcm16(samples)
        return wav_header(sample_rate, len(data)) + data
    if fmt not in FORMATS:
        raise KeyError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "flac":  # libsndfile (soundfile, a core dependency) writes it directly: no PyAV needed
        import io

        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    enc = AvEncoder(fmt, sample_rate, seekable=True)
    enc.encode(samples)
    return enc.finish()
