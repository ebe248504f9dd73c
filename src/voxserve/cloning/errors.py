"""Typed errors of reference-audio uploads; the server maps each ``status`` to the HTTP answer."""

from __future__ import annotations

from voxserve.errors import InvalidInput


class AudioError(InvalidInput):
    """A reference clip that cannot be used (400 unless a subclass says otherwise)."""

    code = "invalid_audio"


class UnsupportedAudio(AudioError):
    """Not one of the accepted formats (wav, flac, mp3, ogg), or not audio at all (HTTP 415)."""

    status = 415
    code = "unsupported_audio"


class CorruptAudio(AudioError):
    """Looks like an accepted format but does not decode (truncated header, bad frames, NaN samples)."""

    status = 400
    code = "corrupt_audio"


class UnusableAudio(AudioError):
    """Decodes fine but is no usable reference: silent, no speech, too little or too much (HTTP 422)."""

    status = 422
    code = "unusable_audio"


class UploadTooLarge(InvalidInput):
    """A file or the whole upload is over the configured size limit (HTTP 413)."""

    status = 413
    code = "request_too_large"
