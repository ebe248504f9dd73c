"""Load-time configuration of the HTTP server: one frozen dataclass, validated when built.

``ServerConfig`` holds everything ``voxserve serve`` can be told; ``add_serve_arguments``
adds the matching command-line flags and ``ServerConfig.from_args`` reads them back.
Per-request parameters live in ``protocol.py``, not here.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from voxserve.errors import VoxserveError

API_KEYS_ENV = "VOXSERVE_API_KEYS"
"""Environment variable with comma-separated API keys, read when ``api_keys`` is not given."""


class ConfigError(VoxserveError, ValueError):
    """A server setting is invalid; the message names the setting."""

    status = 500
    code = "config_error"


def keys_from_env() -> tuple[str, ...]:
    """API keys from ``$VOXSERVE_API_KEYS`` (comma-separated; blanks dropped)."""
    raw = os.environ.get(API_KEYS_ENV, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs at start. Validated on construction (``ConfigError`` names the field)."""

    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = 8000
    """TCP port to listen on (0: pick a free one)."""
    voice: str = "baker"
    """Default voice: used when a request names none, loaded and warmed at start."""
    preload: tuple[str, ...] = ()
    """Other voices to serve besides the default; all are loaded and warmed at start, no others are served."""
    backend: str = "torch"
    """How models run (a name from ``voxserve.backends.registry``)."""
    device: str = "cpu"
    """Device the backend runs on (``cpu``, ``cuda``, ``cuda:1``...)."""
    threads: int | None = None
    """Torch intra-op threads (None: torch's default)."""
    fallback: str | None = None
    """Backend that retries a batch the primary one failed (e.g. ``torch`` on CPU behind CUDA)."""
    api_keys: tuple[str, ...] = field(default_factory=keys_from_env)
    """Accepted bearer tokens; empty: no authentication. Default: ``$VOXSERVE_API_KEYS``."""
    max_body_bytes: int = 256 * 1024
    """Largest request body in bytes; larger ones get 413 before any parsing."""
    max_input_chars: int = 4096
    """Longest ``input`` in characters: OpenAI's limit, 4096, or less."""
    max_queue: int = 64
    """Requests the engine holds at once (running or waiting); beyond it new ones get 429 with Retry-After."""
    max_batch: int | None = None
    """Most items the engine runs in one model call (None: the backend's largest bucket, else 16)."""
    max_wait_ms: float = 5.0
    """Longest the engine waits to fill a batch, in milliseconds."""
    deadline_s: float | None = 60.0
    """Default per-request deadline in seconds (None: none); past it the request gets 504."""
    cache: str | None = None
    """Cache of finished audio for short repeated texts: None (off), ``memory``, or a ``redis://`` URL."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS (``*`` for any); empty: no CORS headers."""
    drain_timeout_s: float = 30.0
    """On SIGTERM, how long in-flight requests may run before the server stops anyway, in seconds."""
    ui: bool = True
    """Mount the web UI at ``/ui`` when its optional dependencies are installed."""
    openai_voices: bool = True
    """Accept OpenAI's voice names (alloy, nova...) as the default voice, so unchanged clients work."""
    log_level: str = "info"
    """Log level of the server and uvicorn."""
    jobs: bool = False
    """Serve batch synthesis jobs at ``/v1/audio/batches`` and run them in the background (opt-in:
    it stores uploads on disk and spends compute between interactive requests)."""
    jobs_dir: str | None = None
    """Where batch jobs live (SQLite database, inputs, outputs); None: ``$VOXSERVE_HOME/jobs``."""
    max_upload_bytes: int = 32 * 1024 * 1024
    """Largest document a batch job accepts (upload or JSON text), in bytes; larger ones get 413."""
    jobs_slice_ms: float = 50.0
    """Target milliseconds of model work a batch job runs between checks for interactive requests."""
    stream_first_s: float = 0.4
    """Audio in a stream's first chunk, seconds: shorter comes sooner."""
    stream_growth: float = 2.0
    """Each next chunk of a stream's first sentence is this many times longer (>= 1): fewer chunks,
    less per-chunk work for the server, as long as each arrives before the audio before it ends.
    Measured on an H100 with two workers (``docs/benchmarks/h100-s3/serving``): growth 3 and
    ``stream_max_s`` 4.8 gave p99 TTFA 161 ms at 400 streams against 259 ms, but a full search
    with them found 239 streams against 304: within run-to-run noise, so the default stays."""
    stream_max_s: float = 3.2
    """Longest stream chunk, seconds."""
    keep_alive_s: int = 65
    """How long an idle keep-alive connection stays open, seconds. A listener that plays a long
    answer before asking again sits idle for seconds; with uvicorn's 5 s default its next request
    could meet the server closing the connection (a failed request on the client). 65 s outlasts
    the common 60 s idle timeout of load balancers in front."""
    vocoder_call_s: float | None = 20.0
    """Most audio one batched vocoder call makes, seconds (None: only ``max_batch`` bounds it): a
    new stream's first chunk waits for the call in progress, so long calls lengthen its wait."""
    gil_switch_ms: float = 5.0
    """Python's thread switch interval in this process, ms (``sys.setswitchinterval``; Python's
    default is 5). The HTTP loop, the frontend and the executor share one interpreter lock, and
    a thread that gives it up for a device call may wait a whole interval to get it back."""
    workers: int = 1
    """Server processes sharing the port, each with its own engine and model copy (see server/workers.py)."""

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"server config: {name} {why}")

        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise bad("port", f"must be 0-65535, got {self.port!r}")
        names = ("max_body_bytes", "max_input_chars", "max_queue", "max_batch", "max_upload_bytes", "workers")
        for name in names:
            value = getattr(self, name)
            if value is None and name == "max_batch":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, f"must be a positive integer, got {value!r}")
        if self.max_input_chars > 4096:
            raise bad(
                "max_input_chars", f"must be at most 4096 (OpenAI's limit), got {self.max_input_chars!r}"
            )
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise bad("threads", f"must be a positive integer, got {self.threads!r}")
        if self.max_wait_ms < 0:
            raise bad("max_wait_ms", f"must be >= 0, got {self.max_wait_ms!r}")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise bad("deadline_s", f"must be > 0 or None, got {self.deadline_s!r}")
        if self.jobs and self.workers > 1:
            raise bad("workers", "must be 1 with jobs (one process runs the batch jobs of a jobs directory)")
        if not (0 < self.stream_first_s <= self.stream_max_s) or not self.stream_growth >= 1:
            raise bad("stream_first_s", "chunks need 0 < first <= max seconds and a growth >= 1")
        if (
            isinstance(self.keep_alive_s, bool)
            or not isinstance(self.keep_alive_s, int)
            or self.keep_alive_s < 1
        ):
            raise bad("keep_alive_s", f"must be a positive integer, got {self.keep_alive_s!r}")
        if self.vocoder_call_s is not None and not self.vocoder_call_s > 0:
            raise bad("vocoder_call_s", f"must be > 0 or None, got {self.vocoder_call_s!r}")
        if not 0 < self.gil_switch_ms <= 1000:
            raise bad("gil_switch_ms", f"must be in (0, 1000], got {self.gil_switch_ms!r}")
        if not self.jobs_slice_ms > 0:
            raise bad("jobs_slice_ms", f"must be > 0, got {self.jobs_slice_ms!r}")
        if self.drain_timeout_s < 0:
            raise bad("drain_timeout_s", f"must be >= 0, got {self.drain_timeout_s!r}")
        if self.cache not in (None, "memory") and not str(self.cache).startswith(("redis://", "rediss://")):
            raise bad("cache", f"must be None, 'memory' or a redis:// URL, got {self.cache!r}")
        if any(not isinstance(k, str) or not k or any(c.isspace() for c in k) for k in self.api_keys):
            raise bad("api_keys", "must be non-empty strings without spaces")
        if not self.voice:
            raise bad("voice", "must name a voice")
        # Tuples keep the dataclass hashable and frozen even when lists were passed.
        for name in ("preload", "api_keys", "cors_origins"):
            if isinstance(getattr(self, name), str):
                raise bad(name, "must be a list of strings, not one string")
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def auth(self) -> bool:
        """True when requests must carry one of ``api_keys``."""
        return bool(self.api_keys)

    def with_(self, **changes: Any) -> ServerConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerConfig:
        """Build from flags added by ``add_serve_arguments`` (flags left unset keep the defaults)."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in vars(args).items() if k in known and v is not None}
        if given.get("api_keys") == ():
            given.pop("api_keys")
        return cls(**given)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``voxserve serve`` flags; read them back with ``ServerConfig.from_args``."""
    d = ServerConfig.__dataclass_fields__
    a = parser.add_argument
    a("--host", default=None, help=f"interface to listen on (default {d['host'].default})")
    a("--port", type=int, default=None, help=f"TCP port (default {d['port'].default})")
    a("--voice", default=None, help="default voice, loaded and warmed at start (default baker)")
    a("--preload", nargs="*", default=None, help="other voices to load at start")
    a("--backend", default=None, help="how models run (default torch)")
    a("--device", default=None, help="device for the backend (default cpu)")
    a("--threads", type=int, default=None, help="torch intra-op threads")
    a("--fallback", default=None, help="backend to retry failed batches on (e.g. torch)")
    a(
        "--api-key",
        dest="api_keys",
        action="append",
        default=None,
        help=f"accepted bearer token (repeatable; default: ${API_KEYS_ENV}, comma-separated)",
    )
    a("--max-body-bytes", type=int, default=None, help="largest request body (default 262144)")
    a("--max-input-chars", type=int, default=None, help="longest input text (default 4096)")
    a("--max-queue", type=int, default=None, help="waiting requests before 429 (default 64)")
    a("--max-batch", type=int, default=None, help="items per model call (default: the backend's)")
    a("--max-wait-ms", type=float, default=None, help="batch fill wait in ms (default 5)")
    a("--deadline", dest="deadline_s", type=float, default=None, help="per-request deadline, s (default 60)")
    a("--cache", default=None, help="cache: memory or redis://host:port/db (default off)")
    a("--cors-origin", dest="cors_origins", action="append", default=None, help="allowed CORS origin")
    a("--drain-timeout", dest="drain_timeout_s", type=float, default=None, help="SIGTERM grace, s (30)")
    a("--no-ui", dest="ui", action="store_false", default=None, help="do not mount the web UI")
    a("--log-level", default=None, choices=["debug", "info", "warning", "error"], help="log level")
    a("--jobs", action="store_true", default=None, help="serve batch synthesis jobs (/v1/audio/batches)")
    a("--jobs-dir", default=None, help="batch jobs directory (default $VOXSERVE_HOME/jobs)")
    a("--max-upload-bytes", type=int, default=None, help="largest batch document (default 33554432)")
    a("--stream-first-s", type=float, default=None, help="first stream chunk, seconds (default 0.4)")
    a("--stream-growth", type=float, default=None, help="stream chunk growth ratio (default 2)")
    a("--stream-max-s", type=float, default=None, help="longest stream chunk, seconds (default 3.2)")
    a("--keep-alive", dest="keep_alive_s", type=int, default=None, help="idle connection lifetime, s (65)")
    a("--vocoder-call-s", type=float, default=None, help="most audio per vocoder call, s (default 20)")
    a("--gil-switch-ms", type=float, default=None, help="Python thread switch interval, ms (default 5)")
    a("--workers", type=int, default=None, help="server processes sharing the port (default 1)")
    a("--jobs-slice-ms", type=float, default=None, help="batch work between interactive checks, ms (50)")
