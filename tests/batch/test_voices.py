"""Voice switching inside a chapter, with a second installed pack (baker's weights, lower default pitch)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.batch.conftest import decode

from voxserve.batch import subtitles
from voxserve.batch.documents import Chapter, Document
from voxserve.batch.render import resample
from voxserve.batch.runner import BatchJob, BatchSettings
from voxserve.bench.prosody import measure


@pytest.fixture()
def two_voices(tts, tmp_path, monkeypatch):
    """A TTS whose pack store holds ``baker`` and ``baker-low`` (same weights, neutral pitch × 0.8)."""
    from voxserve import TTS

    source = tts.voice().pack.path
    packs = tmp_path / "home" / "packs"
    packs.mkdir(parents=True)
    (packs / "baker").symlink_to(source)
    low = packs / "baker-low"
    low.mkdir()
    for f in source.iterdir():
        if f.name != "config.json":
            (low / f.name).symlink_to(f)
    config = json.loads((source / "config.json").read_text("utf-8"))
    config["name"] = "baker-low"
    config["prosody_presets"]["普通"]["pitch"] = 0.8
    (low / "config.json").write_text(json.dumps(config, ensure_ascii=False), "utf-8")
    monkeypatch.setenv("VOXSERVE_HOME", str(tmp_path / "home"))
    return TTS()


def test_voice_span_switches_voice(two_voices, tmp_path):
    text = "今天天气很好。[voice:baker-low]今天天气很好。[/]今天天气很好。"
    doc = Document("", (Chapter("", (text,)),), "t")
    report = BatchJob(doc, tmp_path / "out", BatchSettings(format="wav"), tts=two_voices).run()
    x, sr = decode(tmp_path / "out" / report.manifest["chapters"][0]["audio"]["path"])
    cues = subtitles.parse((tmp_path / "out" / "chapter-001.srt").read_text("utf-8"))
    before, switched, after = (measure(x[int(c.start * sr) : int(c.end * sr)], sr).f0_median for c in cues)
    assert switched < 0.88 * before
    assert after == pytest.approx(before, rel=0.02)


def test_resample_keeps_duration_and_pitch():
    sr = 16000
    t = np.arange(sr) / sr
    y = resample(np.sin(2 * np.pi * 220 * t).astype(np.float32), sr, 24000)
    assert len(y) == 24000
    assert measure(y, 24000).f0_median == pytest.approx(220, rel=0.03)
