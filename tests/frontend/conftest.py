"""One Mandarin frontend per test session (jieba and pypinyin load once)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def frontend():
    from voxserve.frontend.mandarin import MandarinFrontend

    fe = MandarinFrontend("baker")
    fe.warmup()
    return fe


@pytest.fixture(scope="session")
def readings(frontend):
    """sentence → list of (word, [pinyin...]) as the analysis produced them."""

    def run(sentence: str) -> list[tuple[str, list[str]]]:
        return [(w.text, [s.pinyin for s in w.syllables]) for w in frontend.analyze(sentence).words]

    return run


@pytest.fixture(scope="session")
def flat_pinyin(frontend):
    """sentence → one space-joined pinyin string over all its syllables."""

    def run(sentence: str) -> str:
        return " ".join(s.pinyin for w in frontend.analyze(sentence).words for s in w.syllables)

    return run
