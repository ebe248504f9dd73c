"""Reference audio in: recognise the format, decode to mono float, resample.

Accepted formats are recognised by their first bytes, not by file names or content types:
WAV (RIFF/RF64), FLAC, Ogg (Vorbis, Opus) and MP3 (ID3 tag or an MPEG frame header). All
four decode with libsndfile (``soundfile``; MP3 needs libsndfile >= 1.1, which the soundfile
wheels bundle). Nothing here judges whether the audio is speech (``reference`` does).
"""

from __future__ import annotations

import io
import math
import re

import numpy as np

from voxserve.cloning.errors import AudioError, CorruptAudio, UnsupportedAudio, UnusableAudio

FORMATS = ("wav", "flac", "ogg", "mp3")
"""Accepted formats, as ``sniff`` names them."""
MIN_RATE, MAX_RATE = 4000, 384000
"""Sample rates accepted on input (Hz)."""
MAX_CHANNELS = 16


def sniff(data: bytes) -> str:
    """The format of ``data`` from its magic bytes; ``UnsupportedAudio`` when it is none of ``FORMATS``."""
    head = data[:12]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    # MPEG audio: an ID3v2 tag, or an 11-bit frame sync with layer III bits and a valid bitrate index.
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 3 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2 and head[2] >> 4 not in (0, 15):
        return "mp3"
    raise UnsupportedAudio("not a supported audio file: expected wav, flac, mp3 or ogg", "files")


def decode(data: bytes, fmt: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """Samples as float32 [frames] (channels averaged) and the sample rate.

    Refuses (``UnusableAudio``) audio longer than ``max_seconds`` before decoding it where the
    header tells the length, and stops reading past it otherwise, so a small compressed file
    cannot expand into hours of samples. Undecodable data raises ``CorruptAudio``.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            if not MIN_RATE <= rate <= MAX_RATE:
                raise CorruptAudio(f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz", "files")
            if not 1 <= channels <= MAX_CHANNELS:
                raise CorruptAudio(f"{channels} channels; at most {MAX_CHANNELS} are accepted", "files")
            limit = math.ceil(max_seconds * rate)
            if f.frames is not None and 0 < f.frames < 2**62 and f.frames > limit:
                raise UnusableAudio(_too_long(f.frames / rate, max_seconds), "files")
            samples = f.read(frames=limit + 1, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError, OverflowError) as e:
        raise CorruptAudio(f"the {fmt} file does not decode ({_short(e)})", "files") from e
    if samples.shape[0] > limit:
        raise UnusableAudio(_too_long(samples.shape[0] / rate, max_seconds, at_least=True), "files")
    if samples.shape[0] == 0:
        raise CorruptAudio(f"the {fmt} file holds no audio frames", "files")
    if not np.isfinite(samples).all():
        raise CorruptAudio("the audio holds NaN or infinite samples", "files")
    return samples.mean(axis=1, dtype=np.float32), rate


def _too_long(seconds: float, limit: float, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"the clip is {more}{seconds:.1f} s long; at most {limit:g} s of audio are accepted"


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # libsndfile names the in-memory file object ("Error opening <_io.BytesIO ...>: "): drop it.
    return re.sub(r"^Error opening <[^>]*>: ", "", text)[:200]


# --- resampling -----------------------------------------------------------------------------------

_ZEROS = 24
"""Zero crossings of the sinc kernel on each side, at the lower of the two rates."""
_ROLLOFF = 0.94
"""Passband edge as a fraction of the lower Nyquist frequency."""
_KAISER_BETA = 9.0
"""Kaiser window shape: about 90 dB stopband attenuation."""
_MAX_PHASES = 4096
"""Precompute one kernel row per output phase up to this many phases; beyond, compute per sample."""
_CHUNK = 32768


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling by a Kaiser-windowed sinc kernel, float32 out.

    Each output sample is a weighted sum of the input around its position; for a rational
    ratio L/M (reduced) the kernel has only L distinct rows, precomputed once (polyphase).
    The kernel cuts off at 94 % of the lower Nyquist frequency, so downsampling does not alias.
    """
    x = np.asarray(samples, dtype=np.float32)  # float32 sums are exact enough (1e-6) and twice as fast
    if rate_in == rate_out:
        return x.copy()
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    scale = min(1.0, rate_out / rate_in)  # kernel stretch when downsampling
    half = math.ceil(_ZEROS / scale)  # input taps on each side
    n_out = math.ceil(x.size * up / down)
    padded = np.pad(x, (half, half + 1))
    offsets = np.arange(-half + 1, half + 1)  # taps relative to floor(position)
    table = _kernel_rows(np.arange(up) / up, offsets, scale).astype(np.float32) if up <= _MAX_PHASES else None
    out = np.empty(n_out, dtype=np.float32)
    for start in range(0, n_out, _CHUNK):
        n = np.arange(start, min(n_out, start + _CHUNK))
        base = (n * down) // up
        phase = (n * down) % up
        rows = (
            table[phase] if table is not None else _kernel_rows(phase / up, offsets, scale).astype(np.float32)
        )
        taps = padded[base[:, None] + offsets[None, :] + half]
        out[start : start + n.size] = np.einsum("ij,ij->i", taps, rows)
    return out


def _kernel_rows(frac: np.ndarray, offsets: np.ndarray, scale: float) -> np.ndarray:
    """Kernel weights [len(frac), len(offsets)] for outputs at fractional input positions ``frac``."""
    t = offsets[None, :] - frac[:, None]  # input tap distance from the output position (input samples)
    half = offsets[-1]
    window = _kaiser(t, half)
    cutoff = scale * _ROLLOFF
    return cutoff * np.sinc(cutoff * t) * window


def _kaiser(t: np.ndarray, half: float) -> np.ndarray:
    ratio = np.clip(t / half, -1.0, 1.0)
    return np.i0(_KAISER_BETA * np.sqrt(1.0 - ratio**2)) / np.i0(_KAISER_BETA)
