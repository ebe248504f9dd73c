"""How voxserve runs on Ray Serve: ``RayOptions``, its flags, and the Serve deployment settings.

``voxserve serve --ray`` reads ``RayOptions`` from its flags (``add_ray_arguments``); ``serve run``
and KubeRay's ``serveConfigV2`` pass the same settings as builder ``args`` (``parse_builder_args``
reads them, server settings and Ray settings in one mapping). ``deployment_options`` turns both
into the keyword arguments of ``serve.deployment``. This module does not import Ray.

Each replica is a whole voxserve server with its own scheduler: Ray only routes requests and
scales replicas, it does not batch (no ``@serve.batch``), so batching stays where the model
calls are.
"""

from __future__ import annotations

import argparse
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from voxserve.server.config import ConfigError, ServerConfig

DEPLOYMENT_NAME = "voxserve"
"""Name of the Serve deployment (KubeRay's ``serveConfigV2`` overrides refer to it)."""
FORWARDED_ENV = ("VOXSERVE_VOICE_STORE", "VOXSERVE_CLONE_PACK")
"""Environment the replicas get from the process that deploys them: the voice registry's store
(a ``redis://`` URL shares registered voices across replicas) and the pack cloned voices use."""


@dataclass(frozen=True)
class RayOptions:
    """Load-time settings of the Ray deployment; validated on construction (``ConfigError`` names the field)."""

    replicas: int = 1
    """Replicas at start; the fixed count unless ``max_replicas`` is larger (then the autoscaling minimum)."""
    max_replicas: int | None = None
    """Most replicas the autoscaler may run (None or equal to ``replicas``: no autoscaling)."""
    target_ongoing: float | None = None
    """Autoscaling target: requests in flight per replica (None: half of ``max_ongoing``)."""
    max_ongoing: int | None = None
    """Requests Ray sends one replica at once (None: the server's ``max_queue``, so voxserve's own 429 decides)."""
    num_gpus: float | None = None
    """GPUs per replica, fractions allowed (None: 1 when the device is cuda, 0 on cpu)."""
    num_cpus: float = 1.0
    """CPUs Ray reserves per replica (the frontend and encoders run on CPU)."""
    address: str | None = None
    """Ray cluster to join (None: ``$RAY_ADDRESS``, else start a local cluster)."""
    app_name: str = "voxserve"
    """Name of the Serve application."""
    graceful_shutdown_s: float | None = None
    """How long a stopping replica may finish in-flight requests, in seconds (None: the server's drain_timeout_s)."""
    health_check_period_s: float = 10.0
    """Seconds between Ray's health checks of a replica (each asks the engine whether it is ready)."""
    health_check_timeout_s: float = 30.0
    """Seconds a health check may take before the replica counts as unhealthy and is replaced."""
    upscale_delay_s: float | None = None
    """Autoscaling: how long load must stay high before adding replicas, in seconds (None: Ray's default)."""
    downscale_delay_s: float | None = None
    """Autoscaling: how long load must stay low before removing replicas, in seconds (None: Ray's default)."""
    engine_factory: str | None = None
    """``module:function`` returning the ``ServingEngine`` for a ``ServerConfig`` (None: the real engine)."""

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"ray option {name} {why}")

        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise bad("replicas", f"must be a positive integer, got {self.replicas!r}")
        if self.max_replicas is not None and (
            isinstance(self.max_replicas, bool)
            or not isinstance(self.max_replicas, int)
            or self.max_replicas < self.replicas
        ):
            raise bad(
                "max_replicas", f"must be an integer >= replicas ({self.replicas}), got {self.max_replicas!r}"
            )
        if self.max_ongoing is not None and (
            isinstance(self.max_ongoing, bool)
            or not isinstance(self.max_ongoing, int)
            or self.max_ongoing < 1
        ):
            raise bad("max_ongoing", f"must be a positive integer, got {self.max_ongoing!r}")
        positive = ("target_ongoing", "health_check_period_s", "health_check_timeout_s")
        non_negative = ("num_gpus", "num_cpus", "graceful_shutdown_s", "upscale_delay_s", "downscale_delay_s")
        for name in (*positive, *non_negative):
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and name in positive):
                kind = "positive" if name in positive else "non-negative"
                raise bad(name, f"must be a {kind} number, got {value!r}")
        if self.engine_factory is not None and ":" not in self.engine_factory:
            raise bad("engine_factory", f"must be 'module:function', got {self.engine_factory!r}")
        if not self.app_name:
            raise bad("app_name", "must not be empty")

    @property
    def autoscaling(self) -> bool:
        """True when the replica count may change (``max_replicas`` above ``replicas``)."""
        return self.max_replicas is not None and self.max_replicas > self.replicas

    def gpus_for(self, config: ServerConfig) -> float:
        """GPUs per replica for ``config``: ``num_gpus``, else 1 on cuda and 0 on cpu."""
        if self.num_gpus is not None:
            return float(self.num_gpus)
        return 1.0 if config.device.startswith("cuda") else 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RayOptions:
        """Build from flags added by ``add_ray_arguments`` (unset flags keep the defaults)."""
        known = {f.name for f in fields(cls)}
        given = {k[len("ray_") :]: v for k, v in vars(args).items() if k.startswith("ray_") and v is not None}
        return cls(**{k: v for k, v in given.items() if k in known})


def check_device(config: ServerConfig, options: RayOptions) -> None:
    """Refuse device settings that cannot work under Ray, naming the flag.

    Ray hands each replica its GPUs through ``CUDA_VISIBLE_DEVICES``, so a replica sees its
    GPU as ``cuda`` (index 0): an explicit index would point at a GPU it does not own.
    """
    gpus = options.gpus_for(config)
    if config.device.startswith("cuda"):
        if config.device != "cuda":
            raise ConfigError(f"--device {config.device!r}: under Ray use plain 'cuda' (Ray assigns the GPU)")
        if gpus == 0:
            raise ConfigError("--device cuda with --num-gpus 0: the replicas would get no GPU")


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``FORWARDED_ENV`` variables set in ``environ``."""
    return {k: environ[k] for k in FORWARDED_ENV if environ.get(k)}


def deployment_options(
    config: ServerConfig, options: RayOptions, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``serve.deployment`` (plain data, so tests and manifests can check them).

    ``env``: environment variables every replica gets (``forwarded_env(os.environ)`` when deploying).
    """
    check_device(config, options)
    max_ongoing = options.max_ongoing or config.max_queue
    actor: dict[str, Any] = {"num_cpus": float(options.num_cpus), "num_gpus": options.gpus_for(config)}
    if env:
        actor["runtime_env"] = {"env_vars": dict(env)}
    out: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": actor,
        "max_ongoing_requests": max_ongoing,
        # Beyond every replica's max_ongoing, Ray's own queue; bounded so overload ends in 503, not a hang.
        "max_queued_requests": max_ongoing * (options.max_replicas or options.replicas),
        "graceful_shutdown_timeout_s": float(
            options.graceful_shutdown_s if options.graceful_shutdown_s is not None else config.drain_timeout_s
        ),
        "graceful_shutdown_wait_loop_s": 0.5,
        "health_check_period_s": float(options.health_check_period_s),
        "health_check_timeout_s": float(options.health_check_timeout_s),
    }
    if options.autoscaling:
        scaling: dict[str, Any] = {
            "min_replicas": options.replicas,
            "initial_replicas": options.replicas,
            "max_replicas": options.max_replicas,
            "target_ongoing_requests": float(options.target_ongoing or max(1.0, max_ongoing / 2)),
        }
        if options.upscale_delay_s is not None:
            scaling["upscale_delay_s"] = float(options.upscale_delay_s)
        if options.downscale_delay_s is not None:
            scaling["downscale_delay_s"] = float(options.downscale_delay_s)
        out["autoscaling_config"] = scaling
    else:
        out["num_replicas"] = options.replicas
    return out


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray`` and the Ray flags to ``voxserve serve``; read them back with ``RayOptions.from_args``."""
    g = parser.add_argument_group("Ray Serve (with --ray)")
    a = g.add_argument
    a("--ray", action="store_true", help="run on Ray Serve: a local cluster, or the one at $RAY_ADDRESS")
    a(
        "--replicas",
        dest="ray_replicas",
        type=int,
        default=None,
        help="replicas (autoscaling minimum); default 1",
    )
    a("--max-replicas", dest="ray_max_replicas", type=int, default=None, help="autoscale up to this many")
    a(
        "--target-ongoing",
        dest="ray_target_ongoing",
        type=float,
        default=None,
        help="autoscaling target: requests in flight per replica (default: half of --max-ongoing)",
    )
    a(
        "--max-ongoing",
        dest="ray_max_ongoing",
        type=int,
        default=None,
        help="requests per replica (--max-queue)",
    )
    a(
        "--num-gpus",
        dest="ray_num_gpus",
        type=float,
        default=None,
        help="GPUs per replica (1 on cuda, 0 on cpu)",
    )
    a("--num-cpus", dest="ray_num_cpus", type=float, default=None, help="CPUs per replica (default 1)")
    a(
        "--ray-address",
        dest="ray_address",
        default=None,
        help="Ray cluster to join (default $RAY_ADDRESS or new)",
    )


# --- builder args (serve run / serveConfigV2) ------------------------------------------------------


def _convert(name: str, value: Any, hint: Any) -> Any:
    """``value`` (often a string from ``serve run k=v``) as the type ``hint`` of field ``name``.

    ``env:NAME`` stands for the environment variable ``NAME`` of the process building the app,
    so secrets (a Redis URL with a password) can stay out of manifests.
    """
    if isinstance(value, str) and value.startswith("env:"):
        var = value[len("env:") :]
        if not os.environ.get(var):
            raise ConfigError(f"builder arg {name}: {value!r} but ${var} is not set")
        value = os.environ[var]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        inner = [a for a in args if a is not type(None)]
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
            return None
        if value is None:
            return None
        hint = inner[0]
    origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        raise ConfigError(f"builder arg {name}: expected a list or comma-separated string, got {value!r}")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"builder arg {name}: {value!r} is not a valid {hint.__name__}") from None
    return value


def parse_builder_args(args: Mapping[str, Any]) -> tuple[ServerConfig, RayOptions]:
    """Server and Ray settings from one mapping (``serve run ...:app voice=baker replicas=2``).

    Keys are field names of ``ServerConfig`` or ``RayOptions`` (``-`` may stand for ``_``);
    values may be strings (``serve run``) or typed (YAML), or ``env:NAME``. Unknown keys raise ``ConfigError``
    naming the key and listing the valid ones.
    """
    server_hints = typing.get_type_hints(ServerConfig)
    ray_hints = typing.get_type_hints(RayOptions)
    server: dict[str, Any] = {}
    ray: dict[str, Any] = {}
    for raw_key, value in args.items():
        key = str(raw_key).replace("-", "_")
        if key in server_hints:
            server[key] = _convert(key, value, server_hints[key])
        elif key in ray_hints:
            ray[key] = _convert(key, value, ray_hints[key])
        else:
            valid = sorted({*server_hints, *ray_hints})
            raise ConfigError(f"builder arg {raw_key!r} is unknown; valid: {', '.join(valid)}")
    return ServerConfig(**server), RayOptions(**ray)
