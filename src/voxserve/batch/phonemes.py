"""Phonemizing a book in worker processes, so the frontend does not hold the renderer's GIL.

The frontend (jieba, pypinyin, the G2P) is pure Python: in the job's process it takes the GIL
from the thread that feeds the GPU for about 0.5 ms per sentence. ``ProcessPhonemizer`` runs it
in ``processes`` spawned workers instead; each rebuilds the job's frontends from a ``Recipe``
(the frontend's class, symbol set and sentence length, plus the job's lexicon), so nothing heavy
is pickled and no worker imports torch. Workers start (and load their dictionaries) when the
phonemizer is made, typically during ``BatchJob.validate``.

Only phonemization moves: markup, splitting and gaps stay in ``plan.plan_chapter``, which falls
back to the in-process frontends if a worker fails (so errors keep their line and column).
"""

from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from voxserve.batch.lexicon import Lexicon, frontend_with_lexicon
from voxserve.frontend.interface import PhoneSequence


@dataclass(frozen=True)
class Recipe:
    """How a worker rebuilds one pack's frontend: ``module.name(symbol_set, max_chars=...)`` + lexicon."""

    module: str
    name: str
    symbol_set: str
    max_chars: int | None
    lexicon: Lexicon
    voice: str
    """For messages only (a lexicon entry the voice cannot say fails in the parent first)."""

    @classmethod
    def of(cls, frontend: Any, lexicon: Lexicon, voice: str) -> Recipe:
        """The recipe of a frontend as ``engine.voice.frontend_for`` builds them (class and symbol set)."""
        kind = type(frontend)
        return cls(
            kind.__module__,
            kind.__qualname__,
            frontend.symbol_set,
            getattr(frontend, "max_chars", None),
            lexicon,
            voice,
        )

    def build(self) -> Any:
        kind = getattr(importlib.import_module(self.module), self.name)
        kwargs = {} if self.max_chars is None else {"max_chars": self.max_chars}
        return frontend_with_lexicon(kind(self.symbol_set, **kwargs), self.lexicon, self.voice)


_FRONTENDS: dict[str, Any] = {}
"""In a worker: pack name → its frontend (set by ``_start``)."""


def _start(recipes: dict[str, Recipe]) -> None:
    for pack, recipe in recipes.items():
        frontend = recipe.build()
        warmup = getattr(frontend, "warmup", None)
        if callable(warmup):
            warmup()
        _FRONTENDS[pack] = frontend


def _ready() -> bool:
    return bool(_FRONTENDS)


def _phonemize(pack: str, texts: list[str]) -> list[PhoneSequence]:
    frontend = _FRONTENDS[pack]
    return [frontend.phonemize(t) for t in texts]


class ProcessPhonemizer:
    """``submit(pack, texts)`` → future of their ``PhoneSequence``s, computed in worker processes.

    Thread-safe (the planner thread submits). ``close()`` ends the workers. Spawned, not forked:
    the parent holds CUDA state and threads.
    """

    def __init__(self, recipes: dict[str, Recipe], processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.packs = frozenset(recipes)
        self._pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(recipes,),
        )
        # Start every worker now (the pool starts them on demand): dictionaries load meanwhile.
        self._warm = [self._pool.submit(_ready) for _ in range(processes)]

    def ready(self) -> bool:
        """Whether every worker has started and loaded its frontends (until then, plan in-process)."""
        return all(f.done() for f in self._warm)

    def wait(self, timeout: float | None = None) -> None:
        """Block until ``ready`` (re-raises a worker's start-up error; ``TimeoutError`` past ``timeout``)."""
        for f in self._warm:
            f.result(timeout)

    def submit(self, pack: str, texts: list[str]) -> Future[list[PhoneSequence]]:
        return self._pool.submit(_phonemize, pack, texts)

    def phonemize(self, pack: str, texts: list[str], chunk: int = 16) -> list[PhoneSequence]:
        """``texts`` in chunks across the workers, results in order (blocks)."""
        futures = [self.submit(pack, texts[i : i + chunk]) for i in range(0, len(texts), chunk)]
        return [seq for f in futures for seq in f.result()]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
