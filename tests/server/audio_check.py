"""Decode what the server returned, in any response format, to (samples, sample rate)."""

from __future__ import annotations

import io

import numpy as np


def decode(data: bytes, fmt: str, pcm_rate: int = 24000) -> tuple[np.ndarray, int]:
    """Decode a whole response body: soundfile for wav/flac/mp3/ogg-opus, PyAV for aac.

    A streamed FLAC carries no total length (its encoder could not seek back), which
    libsndfile refuses to size, so FLAC falls back to PyAV when soundfile declines.
    """
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, pcm_rate
    if fmt != "aac":
        import soundfile as sf

        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32")
            return samples, rate
        except (RuntimeError, ValueError, MemoryError):
            if fmt != "flac":
                raise
    return _decode_av(data)


def _decode_av(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
        parts = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    samples = np.concatenate(parts)
    if samples.dtype.kind == "i":
        samples = samples / float(np.iinfo(samples.dtype).max + 1)
    return samples.astype(np.float32), rate
