"""Typed errors. The CLI turns them into one line and exit code 2; the server into 4xx JSON."""

from __future__ import annotations


class VoxserveError(Exception):
    """Base class of every error voxserve raises on purpose."""

    status = 500
    code = "internal_error"


class InvalidInput(VoxserveError, ValueError):
    """The request or its text cannot be synthesized as given (names the bad field in ``param``)."""

    status = 400
    code = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NotFound(VoxserveError, LookupError):
    """An unknown voice, model, pack or emotion."""

    status = 404
    code = "not_found"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class PackError(VoxserveError):
    """A model pack is missing, malformed, or cannot be converted; names the file and key."""

    status = 503
    code = "model_unavailable"
