"""``voxserve bench cloning`` end to end on a tiny random pack (numbers are meaningless, structure is not)."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from voxserve.bench.cloning import _directions, load_manifest
from voxserve.errors import InvalidInput

PACK = "clone-bench-tiny"


def _clip(f0: float, seconds: float = 6.0, rate: int = 16000, seed: int = 0) -> bytes:
    """A voiced-sounding test signal: harmonics of ``f0`` in 0.3 s syllables with short pauses, WAV bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / rate
    syllables = (t % 0.42) < 0.3
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * syllables
    x = 0.3 * x / np.abs(x).max() + 0.003 * rng.normal(size=t.size)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cloning_eval")
    voices = []
    for i, f0 in enumerate((110.0, 220.0)):
        (d / f"v{i}.wav").write_bytes(_clip(f0, seed=i))
        voices.append({"name": f"held_{i}", "kind": "blend", "lang": "zh", "clips": [f"v{i}.wav"]})
    manifest = {"version": 1, "voices": voices, "sentences": {"zh": ["你好。"], "en": ["Hello."]}}
    (d / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    return d


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    import os

    from voxserve.packs import store
    from voxserve.packs.clone.tiny import write_tiny_pack

    old = os.environ.get("VOXSERVE_HOME")
    os.environ["VOXSERVE_HOME"] = str(tmp_path_factory.mktemp("home"))
    write_tiny_pack(store.packs_dir() / PACK, name=PACK)
    yield PACK
    if old is None:
        os.environ.pop("VOXSERVE_HOME")
    else:
        os.environ["VOXSERVE_HOME"] = old


def test_manifest_errors_are_clear(tmp_path, eval_dir):
    with pytest.raises(InvalidInput, match="no cloning evaluation manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"voices": [{"name": "a", "clips": ["missing.wav"]}]}))
    with pytest.raises(InvalidInput, match="missing"):
        load_manifest(tmp_path)
    voices, sentences = load_manifest(eval_dir)
    assert [v.name for v in voices] == ["held_0", "held_1"] and sentences["en"] == ["Hello."]
    # Without a manifest, each audio file named <voice>_<lang> is a voice.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("blend_003_zh.wav", "piper_joe_en.wav"):
        (bare / name).write_bytes(_clip(150.0))
    voices, sentences = load_manifest(bare)
    assert [(v.name, v.kind, v.lang) for v in voices] == [
        ("blend_003_zh", "blend", "zh"),
        ("piper_joe_en", "teacher", "en"),
    ]
    assert len(sentences["zh"]) == 5


def test_every_emotion_has_an_intended_direction():
    d = _directions()
    assert set(d) == {"生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧"}
    assert d["悲伤"] == {"pitch": -1, "energy": -1, "tempo": -1}
    assert all(any(v.values()) for v in d.values())


def test_confusion_table_per_output_and_per_voice():
    from voxserve.bench.cloning import confusion_table

    ref = np.eye(3)[:, :3].astype(np.float32)  # three orthogonal references a, b, c

    def out(voice, *v):
        e = np.array(v, np.float32)
        return {"voice": voice, "embedding": e / np.linalg.norm(e)}

    outputs = [
        out("a", 1, 0.1, 0),
        out("a", 0.4, 0.6, 0),  # one output of a lands nearer b ...
        out("b", 0, 1, 0.2),
        out("c", 0.1, 0, 1),
        out("c", 1, 0, 0.05),  # ... and c's outputs average out nearer a
        {"voice": "c", "embedding": None},
    ]
    table, closest, voices = confusion_table(["a", "b", "c"], ref, outputs)
    assert closest == [True, False, True, True, False]
    assert voices == [True, True, False]
    assert table.shape == (3, 3) and np.argmax(table[0]) == 0 and np.argmax(table[2]) == 0


def test_bench_runs_and_reports_everything(eval_dir, tiny_pack, tmp_path):
    from voxserve.bench.cli import build_parser, main

    args = build_parser().parse_args(
        ["cloning", "--eval-dir", str(eval_dir), "--pack", tiny_pack, "--quick", "--out", str(tmp_path)]
    )
    main(args)
    r = json.loads((tmp_path / "cloning.json").read_text())
    assert r["pack"] == tiny_pack and len(r["voices"]) == 2
    assert len(r["outputs"]) == 4  # 2 voices × (1 zh + 1 en)
    assert np.array(r["confusion"]["mean_cosine"]).shape == (2, 2)
    assert r["mean_cosine"] is None or -1.0 <= r["mean_cosine"] <= 1.0
    assert set(r["emotion"]) == set(_directions()) and 0 <= r["emotions_ok"] <= 6
    lat = r["latency_ms"]
    assert lat["new_voice_p50"] > 0 and lat["registered_voice_p50"] > 0 and len(lat["new_voice"]) == 2
    assert r["cer_zh"] is None and r["wer_en"] is None  # --quick skips the ASR judge
    assert set(r["pass"]) == {"cosine", "confusion", "voice_confusion", "cer_zh", "wer_en", "emotion"}
    assert r["voices_closest_to_own_reference"] in (0.0, 0.5, 1.0)
    md = (tmp_path / "cloning.md").read_text()
    assert "| mean cosine" in md and "## Confusion" in md and "## Emotion" in md
    assert all(math.isfinite(v["pitch"]["log_ratio"]) or True for v in r["emotion"].values())


def test_teacher_ceiling_reads_the_corpus_eval_utterances(tmp_path):
    from voxserve.bench.cloning import teacher_ceiling
    from voxserve.train.corpus.format import Corpus, write_tiny_corpus

    write_tiny_corpus(tmp_path / "c", n=24, seed=2)
    corpus = Corpus.open(tmp_path / "c")
    evals = [u for u in corpus if u.split == "eval"]
    speakers = sorted({u.speaker for u in evals} | {"tiny_a"})
    # References: each speaker's mean d-vector (the tiny corpus clusters d-vectors by speaker).
    ref = np.stack(
        [np.mean([np.asarray(u.dvector, np.float32) for u in corpus if u.speaker == s], 0) for s in speakers]
    )
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    names = [f"{s}_zh" for s in speakers]
    own = teacher_ceiling(tmp_path / "c", names, ref)
    assert own["utterances"] == len([u for u in evals if u.speaker in speakers]) > 0
    assert own["closest_to_own_reference"] == 1.0
    swapped = teacher_ceiling(tmp_path / "c", names, ref[::-1].copy())
    assert swapped["closest_to_own_reference"] < 1.0
