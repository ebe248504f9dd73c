"""The batch-job store: jobs, their inputs and their outputs, persisted in SQLite under one directory.

Layout of ``root`` (``ServerConfig.jobs_dir``, default ``$VOXSERVE_HOME/jobs``)::

    jobs.sqlite3                 one row per job (state, settings, progress, timestamps, error)
    batch_<24 hex>/input.<kind>  the uploaded document, as received
    batch_<24 hex>/out/          what the chapter runner writes (chapters, subtitles, manifest.json)

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; a queued job may be
cancelled directly. A job found ``running`` when the store opens was cut off (crash, kill,
shutdown) and goes back to ``queued``: the runner then skips the chapters it already finished.
One process owns a root at a time (an exclusive lock file; a second opener gets ``JobsBusy``).

Who calls what: the HTTP routes ``create``, ``get``, ``list_jobs`` and ``request_cancel``; the
worker ``recover``s at start, ``claim_next``s, reports ``update_progress`` and ``finish``es.
Every method is thread-safe and short (one statement or transaction); none synthesizes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxserve.errors import NotFound, VoxserveError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
TERMINAL = frozenset((DONE, FAILED, CANCELLED))
_ID = re.compile(r"^batch_[0-9a-f]{24}$")
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    input_name TEXT NOT NULL,
    input_kind TEXT NOT NULL,
    input_bytes INTEGER NOT NULL,
    settings TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    error_code TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
"""


class JobStateError(VoxserveError):
    """The job is not in a state that allows this (results of an unfinished job; deleting a running one)."""

    status = 409
    code = "invalid_job_state"


class JobsBusy(VoxserveError):
    """Another process holds this jobs directory (two servers must not run the same jobs)."""

    status = 503
    code = "jobs_busy"


@dataclass(frozen=True)
class JobRecord:
    """One job as stored. Times are Unix seconds; ``progress`` is the runner's last report."""

    id: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    input_name: str
    input_kind: str
    input_bytes: int
    settings: dict[str, Any]
    progress: dict[str, Any]
    error: str | None
    error_code: str | None
    runs: int
    """How many times a worker started it (more than 1: it was resumed)."""
    cancel_requested: bool

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def check_id(job_id: str) -> str:
    """``job_id`` if it has the shape of a job id, else NotFound (so no id can name another path)."""
    if not isinstance(job_id, str) or not _ID.match(job_id):
        raise NotFound(f"no batch job {job_id!r}", param="batch_id")
    return job_id


class JobStore:
    """Jobs of one root directory. See the module doc for layout, states and who calls what."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lockfile = _hold_lock(self.root / ".lock")
        self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # WAL keeps readers (GET requests) off the writer's back; NORMAL still survives a process kill.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise VoxserveError(f"{self.root / 'jobs.sqlite3'}: schema version {version} is not supported")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database and release the directory lock. Idempotent."""
        with self._lock:
            if self._lockfile is None:
                return
            self._db.close()
            self._lockfile.close()
            self._lockfile = None

    # --- paths ------------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.root / check_id(job_id)

    def input_path(self, job: JobRecord) -> Path:
        return self.job_dir(job.id) / f"input.{job.input_kind}"

    def out_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "out"

    # --- HTTP side --------------------------------------------------------------------------------

    def create(self, data: bytes, name: str, kind: str, settings: dict[str, Any]) -> JobRecord:
        """Store the input file, then a queued job for it (the file first: a listed job has its input)."""
        job_id = "batch_" + secrets.token_hex(12)
        folder = self.job_dir(job_id)
        folder.mkdir()
        tmp = folder / f".input.{kind}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / f"input.{kind}")
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, status, created_at, input_name, input_kind, input_bytes, settings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, QUEUED, time.time(), name, kind, len(data), json.dumps(settings)),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        """The job called ``job_id``; NotFound if there is none."""
        check_id(job_id)
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no batch job {job_id!r}", param="batch_id")
        return _record(row)

    def list_jobs(
        self, limit: int = 20, status: str | None = None, after: str | None = None
    ) -> list[JobRecord]:
        """Newest first, at most ``limit``; only ``status`` when given; only jobs older than ``after``."""
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if after is not None:
            anchor = self.get(after)
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [anchor.created_at, anchor.created_at, anchor.id]
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel: a queued job at once; a running one is flagged for its worker to stop. Terminal: no change."""
        check_id(job_id)
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, cancel_requested = 1 WHERE id = ? AND status = ?",
                (CANCELLED, time.time(), job_id, QUEUED),
            )
            self._db.execute(
                "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = ?", (job_id, RUNNING)
            )
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Remove a finished job's row and files; JobStateError for a job still queued or running."""
        job = self.get(job_id)
        if not job.terminal:
            raise JobStateError(f"batch job {job_id} is {job.status}; cancel it first")
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # --- worker side ------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Put jobs left ``running`` by a previous process back in the queue; returns their ids."""
        with self._lock:
            cursor = self._db.execute("SELECT id, cancel_requested FROM jobs WHERE status = ?", (RUNNING,))
            rows = cursor.fetchall()
            for row in rows:
                if row["cancel_requested"]:  # cancelled while it ran: honour it now
                    self._db.execute(
                        "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?",
                        (CANCELLED, time.time(), row["id"]),
                    )
                else:
                    self._db.execute("UPDATE jobs SET status = ? WHERE id = ?", (QUEUED, row["id"]))
        return [r["id"] for r in rows if not r["cancel_requested"]]

    def claim_next(self) -> JobRecord | None:
        """Mark the oldest queued job running and return it (None: the queue is empty)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE status = ? ORDER BY created_at, id LIMIT 1", (QUEUED,)
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE jobs SET status = ?, runs = runs + 1, started_at = COALESCE(started_at, ?)"
                        " WHERE id = ?",
                        (RUNNING, time.time(), row["id"]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return None if row is None else self.get(row["id"])

    def queued(self) -> int:
        """How many jobs wait to run."""
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()[0]
            )

    def update_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress), job_id))

    def finish(self, job_id: str, status: str, error: str | None = None, code: str | None = None) -> None:
        """End a running job as ``done``, ``failed`` or ``cancelled``, or put it back (``queued``)."""
        if status not in (*TERMINAL, QUEUED):
            raise ValueError(f"finish: bad status {status!r}")
        finished = None if status == QUEUED else time.time()
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?, error_code = ? WHERE id = ?",
                (status, finished, error, code, job_id),
            )


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        status=row["status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        input_name=row["input_name"],
        input_kind=row["input_kind"],
        input_bytes=row["input_bytes"],
        settings=json.loads(row["settings"]),
        progress=json.loads(row["progress"]),
        error=row["error"],
        error_code=row["error_code"],
        runs=row["runs"],
        cancel_requested=bool(row["cancel_requested"]),
    )


def _hold_lock(path: Path) -> Any:
    """An open file holding an exclusive lock on ``path``; JobsBusy when another process holds it."""
    handle = open(path, "a+")  # noqa: SIM115 (kept open: the lock lives as long as the store)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one server per directory is then the user's promise
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JobsBusy(f"{path.parent} is in use by another voxserve process") from None
    return handle
