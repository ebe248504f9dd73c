"""voxserve on Ray Serve: each replica is a whole voxserve server behind Ray's HTTP proxy.

A replica builds the same FastAPI app as ``voxserve serve`` (``create_app``) around its own
serving engine, so the OpenAI API, streaming, errors and metrics are the same; Ray routes
requests to replicas, starts and replaces them, and scales their number on requests in flight.
The engine's scheduler batches inside each replica; Ray adds no batching of its own.

- ``build_app(config, options)``: the bound Serve application.
- ``app(args)``: the builder for ``serve run voxserve.scale.ray_app:app voice=baker replicas=2``
  and for KubeRay's ``serveConfigV2`` (``import_path: voxserve.scale.ray_app:app``).
- ``serve_ray(config, options)``: what ``voxserve serve --ray`` runs.

Every response carries ``X-Voxserve-Replica`` (the Ray replica id), so clients and tests can see
where a request ran. Health: Ray calls ``check_health`` every ``health_check_period_s``; it fails
when the engine stopped being ready, and Ray then replaces the replica. Shutdown: Ray stops
routing to a stopping replica, waits up to ``graceful_shutdown_timeout_s`` for its requests in
flight, then the app's lifespan drains and stops the engine (``engine.stop(drain=True)``).

Shared state: ``cache=redis://...`` shares finished audio, and ``$VOXSERVE_VOICE_STORE=redis://...``
(forwarded to every replica, see ``options.FORWARDED_ENV``) shares the voice registry, so a voice
registered through one replica works on all. A memory cache or an SQLite store stays per replica.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from voxserve.errors import VoxserveError
from voxserve.scale.options import RayOptions, deployment_options, forwarded_env, parse_builder_args
from voxserve.server.config import ConfigError, ServerConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voxserve.engine.interface import ServingEngine
    from voxserve.server.serving import SpeechService

log = logging.getLogger("voxserve.scale")

REPLICA_HEADER = "X-Voxserve-Replica"
"""Response header naming the Ray replica that answered."""


class ReplicaUnhealthy(VoxserveError):
    """A replica's engine stopped being ready; Ray replaces the replica."""

    status = 503
    code = "replica_unhealthy"


class ReplicaHeader:
    """ASGI middleware adding ``X-Voxserve-Replica`` to every HTTP response; the body passes untouched."""

    def __init__(self, app: Any, replica: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


def load_engine_factory(path: str) -> Callable[[ServerConfig], ServingEngine]:
    """The function named by ``module:function``; ``ConfigError`` when it cannot be imported."""
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"engine_factory {path!r} cannot be loaded: {e}") from None
    if not callable(factory):
        raise ConfigError(f"engine_factory {path!r} is not callable")
    return factory  # type: ignore[no-any-return]


class VoxserveReplica:
    """One Serve replica: the voxserve app and engine, built when Ray starts the replica.

    Wrapped by ``serve.ingress()`` (late-bound: Ray calls ``__serve_build_asgi_app__`` after
    ``__init__`` and then runs the app's lifespan, which starts the engine). It defines no
    routes of its own and never batches.
    """

    def __init__(self, config: ServerConfig, engine_factory: str | None = None) -> None:
        from ray import serve

        self.config = config
        self.engine_factory = engine_factory
        self.replica = serve.get_replica_context().replica_tag
        # Not ``self.app``: Ray's ingress wrapper owns that name.
        self.service: SpeechService | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        from voxserve.server.app import create_app

        engine = load_engine_factory(self.engine_factory)(self.config) if self.engine_factory else None
        app = create_app(self.config, engine)
        app.add_middleware(ReplicaHeader, replica=self.replica)
        self.service = app.state.service
        log.info(
            "replica %s built (voice %s, %s on %s)",
            self.replica,
            self.config.voice,
            self.config.backend,
            self.config.device,
        )
        return app

    async def check_health(self) -> None:
        """Raise when the engine is no longer ready (Ray then replaces this replica).

        Before the app started, Ray's start-up timeout governs; while draining, the replica is
        on its way out, so neither counts as unhealthy.
        """
        service = self.service
        if service is None or not service.started or service.draining:
            return
        if not service.engine.ready:
            raise ReplicaUnhealthy(f"replica {self.replica}: the engine is not ready")


def build_app(config: ServerConfig, options: RayOptions | None = None) -> Any:
    """The Serve application (``serve.run(build_app(...))``): one deployment of ``VoxserveReplica``."""
    from ray import serve

    options = options or RayOptions()
    settings = deployment_options(config, options, forwarded_env(os.environ))
    deployment: Any = serve.deployment(serve.ingress()(VoxserveReplica), **settings)
    return deployment.bind(config, options.engine_factory)


def app(args: Mapping[str, Any]) -> Any:
    """Builder for ``serve run voxserve.scale.ray_app:app key=value ...`` and KubeRay's serveConfigV2.

    ``args`` holds ``ServerConfig`` and ``RayOptions`` fields (see ``parse_builder_args``).
    """
    config, options = parse_builder_args(args or {})
    return build_app(config, options)


def serve_ray(config: ServerConfig, options: RayOptions) -> None:
    """``voxserve serve --ray``: deploy on Ray Serve and serve until SIGINT/SIGTERM, then drain.

    Joins the cluster at ``options.address`` or ``$RAY_ADDRESS``, else starts a local one. Ray's
    HTTP proxy listens on ``config.host:config.port``. On a signal the application is deleted
    (replicas drain their requests in flight); a cluster started here is shut down too.
    """
    import ray
    from ray import serve

    if config.port == 0:
        raise ConfigError("--port 0: Ray Serve's proxy needs a fixed port")
    app_ = build_app(config, options)  # validates before any cluster starts
    ray.init(
        address=options.address,
        ignore_reinit_error=True,
        logging_level=logging.getLevelName(config.log_level.upper()),
    )
    own_cluster = options.address is None and not os.environ.get("RAY_ADDRESS")
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": config.host, "port": config.port})
        serve.run(app_, name=options.app_name, route_prefix="/")
        log.info("voxserve on Ray Serve at http://%s:%d (%s)", config.host, config.port, options.app_name)
        stop.wait()
        log.info("stopping: replicas drain their requests in flight")
        serve.delete(options.app_name)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if own_cluster:
            serve.shutdown()
            ray.shutdown()
