"""``voxserve serve --workers N``: N whole server processes on one port of one host.

Why: one server process runs its HTTP loop, text frontend and model executor under one
Python interpreter lock. At a few hundred concurrent streams that lock, not the GPU, is
the limit (measured: the executor thread at ~80 % of a core, the GPU mostly idle), so more
streams per GPU need more processes. Each worker is a full server (its own engine, model
copy, CUDA context and batch scheduler); the kernel spreads new connections over them
(``SO_REUSEPORT``: each worker listens on its own socket bound to the same port).

The supervisor (this process) binds the port first without listening, so a port in use
fails at once and ``--port 0`` picks one port for all workers. SIGTERM or SIGINT is passed
to every worker, which drains as a single server does; if a worker dies on its own, the
others are stopped and the supervisor exits non-zero (let the process manager restart it).

What it does not do: share state between workers beyond what is shared anyway (a Redis
cache or voice registry), or merge metrics: ``/metrics`` is the answering worker's, named by
``voxserve_worker``; scrape one worker per process, or use one worker per replica (Ray,
Kubernetes) when whole-server numbers matter.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("voxserve.server")

WORKER_ENV = "VOXSERVE_WORKER"
"""Set in each worker: ``index/count`` (e.g. ``1/4``)."""


def worker_label() -> tuple[str, str] | None:
    """(index, count) of this worker process, or None outside ``--workers``."""
    raw = os.environ.get(WORKER_ENV, "")
    index, _, count = raw.partition("/")
    return (index, count) if index.isdigit() and count.isdigit() else None


def listen_socket(host: str, port: int, reserve_only: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (listening unless ``reserve_only``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if not reserve_only:
        sock.listen(2048)
    return sock


def serve_workers(config: Any, serve_one: Callable[[Any, socket.socket], None]) -> None:
    """Run ``config.workers`` processes of ``serve_one(config, sock)`` on one port until signalled.

    ``serve_one`` must be a module-level function (workers are spawned, not forked: a forked
    CUDA or torch state is not usable). Raises SystemExit(1) when a worker died on its own.
    """
    n = int(config.workers)
    reservation = listen_socket(config.host, config.port, reserve_only=True)
    port = reservation.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(serve_one, config, port, k, n), name=f"voxserve-worker-{k}")
        for k in range(n)
    ]
    log.info("starting %d workers on %s:%d", n, config.host, port)
    for p in procs:
        p.start()
    stopping = False

    def stop(sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    try:
        while any(p.is_alive() for p in procs):
            dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead and not stopping:
                log.error("worker %s exited with %s; stopping the others", dead[0].name, dead[0].exitcode)
                failed = True
                stop(signal.SIGTERM, None)
            time.sleep(0.2)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        reservation.close()
    if failed or any(p.exitcode not in (0, -signal.SIGTERM) for p in procs):
        raise SystemExit(1)


def _worker(serve_one: Callable[[Any, socket.socket], None], config: Any, port: int, k: int, n: int) -> None:
    os.environ[WORKER_ENV] = f"{k}/{n}"
    logging.basicConfig(
        level=str(config.log_level).upper(), format=f"%(asctime)s %(levelname)s w{k} %(name)s: %(message)s"
    )
    # A signal before uvicorn installs its handlers: leave quietly (nothing was admitted yet).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Bound, not listening: uvicorn listens once the engine is loaded and warm, and the kernel
    # only hands connections to listening sockets, so no client waits on a worker still starting.
    serve_one(config, listen_socket(config.host, port, reserve_only=True))
