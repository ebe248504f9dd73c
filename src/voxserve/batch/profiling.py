"""Profiling a batch run (``voxserve batch --profile PATH``): cProfile of the run, stacks of every thread.

A batch run is several threads (run, planner, writers) contending for one GIL, so two views:

- ``PATH``: a cProfile (pstats) file. On Python 3.11 and older it covers the thread that starts
  the profile (the CLI's run thread: batching and model calls); on 3.12+ cProfile listens to every
  thread (``sys.monitoring``), so the planner's and writers' calls are in it too.
- ``PATH.stacks.txt``: every thread's Python stack sampled every ``interval`` seconds, in the
  collapsed format of flame-graph tools (``thread;outer;...;inner count``), with wall time per
  thread, idle waits included. Read it with ``sort -k2 -n`` or any flame-graph viewer.

Not a general profiler: sampling costs the GIL for a moment per sample (~1% at 5 ms).
"""

from __future__ import annotations

import cProfile
import sys
import threading
from collections import Counter
from pathlib import Path
from types import FrameType, TracebackType


class StackSampler:
    """Samples every thread's Python stack every ``interval`` seconds into collapsed-stack counts."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-profiler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self.counts[f"{names.get(ident, ident)};{_stack(frame)}"] += 1

    def write(self, path: Path) -> None:
        lines = [f"{stack} {n}" for stack, n in self.counts.most_common()]
        path.write_text("\n".join(lines) + "\n", "utf-8")


def _stack(frame: FrameType | None) -> str:
    names = []
    while frame is not None:
        code = frame.f_code
        names.append(f"{code.co_name} ({Path(code.co_filename).name}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(names))


class RunProfile:
    """``with RunProfile(path):`` profiles the block (see the module docstring); files written at exit."""

    def __init__(self, path: str | Path, interval: float = 0.005) -> None:
        self.path = Path(path)
        self._profile = cProfile.Profile()
        self._sampler = StackSampler(interval)

    def __enter__(self) -> RunProfile:
        self._sampler.start()
        self._profile.enable()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._profile.disable()
        self._sampler.stop()
        self._profile.dump_stats(str(self.path))
        self._sampler.write(self.path.with_name(self.path.name + ".stacks.txt"))
