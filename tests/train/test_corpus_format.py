"""The corpus format: writer → reader round trip, quantization, validation, the tiny corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxserve.errors import PackError
from voxserve.train.corpus.format import (
    MEL_QUANT,
    Corpus,
    CorpusWriter,
    dequantize_mel,
    quantize_mel,
    write_tiny_corpus,
)


def _utt(rng: np.random.Generator, n_tok: int, n_frames: int) -> dict:
    logmel = rng.uniform(MEL_QUANT["min"], MEL_QUANT["max"], size=(n_frames, 80)).astype(np.float32)
    dvec = rng.normal(size=256)
    return {
        "tokens": rng.integers(0, 500, size=n_tok),
        "logmel": logmel,
        "f0": rng.uniform(0, 300, size=n_frames).astype(np.float32),
        "dvector": (dvec / np.linalg.norm(dvec)).astype(np.float32),
    }


def test_round_trip_across_shards(tmp_path):
    rng = np.random.default_rng(1)
    writer = CorpusWriter(tmp_path, shard_size=3)
    utts = []
    for i in range(7):
        u = _utt(rng, 5 + i, 20 + 3 * i)
        u["durations"] = None
        if i % 2 == 0:
            d = np.ones(5 + i, np.int32)
            d[-1] = 20 + 3 * i - (4 + i)
            u["durations"] = d
        rec = {
            "id": f"u{i}",
            "speaker": f"s{i % 2}",
            "emotion": "开心",
            "lang": "zh",
            "text": f"句子{i}",
            "split": "train",
        }
        writer.add(rec, u["tokens"], quantize_mel(u["logmel"]), u["f0"], u["dvector"], u["durations"])
        utts.append(u)
    speakers = [
        {"name": "s0", "teacher": "t", "lang": "zh", "held_out": False},
        {"name": "s1", "teacher": "t", "lang": "zh", "held_out": True},
    ]
    writer.finish(["a", "b"], speakers, ["普通", "开心"], {"x": "y"}, {"n_fft": 1024})
    assert sorted(p.name for p in tmp_path.glob("shard_*")) == [
        "shard_000.safetensors",
        "shard_001.safetensors",
        "shard_002.safetensors",
    ]

    corpus = Corpus.open(tmp_path)
    assert len(corpus) == 7
    assert corpus.speaker_index == {"s0": 0, "s1": 1}
    step = (MEL_QUANT["max"] - MEL_QUANT["min"]) / 255
    for i, u in enumerate(utts):
        got = corpus[i]
        assert got.id == f"u{i}" and got.text == f"句子{i}" and got.emotion == "开心"
        np.testing.assert_array_equal(got.tokens, u["tokens"])
        assert got.mel.dtype == np.float32 and got.mel.shape == u["logmel"].shape
        assert np.abs(got.mel - u["logmel"]).max() <= step / 2 + 1e-5
        np.testing.assert_allclose(got.f0, u["f0"], rtol=1e-3, atol=0.1)
        np.testing.assert_allclose(got.dvector, u["dvector"], atol=1e-3)
        if u["durations"] is None:
            assert got.durations is None
        else:
            np.testing.assert_array_equal(got.durations, u["durations"])
    rows = [json.loads(line) for line in (tmp_path / "utts.jsonl").read_text("utf-8").splitlines()]
    assert [r["shard"] for r in rows] == [0, 0, 0, 1, 1, 1, 2]
    assert rows[4]["n_frames"] == 32 and rows[4]["n_tokens"] == 9


def test_quantization_clips_and_inverts():
    x = np.array([[-20.0, MEL_QUANT["min"], 0.0, MEL_QUANT["max"], 9.0]], np.float32)
    codes = quantize_mel(x)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [
        [0, 0, round(-MEL_QUANT["min"] / (MEL_QUANT["max"] - MEL_QUANT["min"]) * 255), 255, 255]
    ]
    assert dequantize_mel(codes)[0, 1] == pytest.approx(MEL_QUANT["min"])


def test_writer_rejects_inconsistent_items(tmp_path):
    writer = CorpusWriter(tmp_path)
    rec = {"id": "x", "speaker": "s", "emotion": "普通", "lang": "zh", "text": "t", "split": "train"}
    mel = np.zeros((10, 80), np.uint8)
    with pytest.raises(ValueError, match="f0"):
        writer.add(rec, np.arange(3), mel, np.zeros(9), np.zeros(256), None)
    with pytest.raises(ValueError, match="durations"):
        writer.add(rec, np.arange(3), mel, np.zeros(10), np.zeros(256), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="uint8"):
        writer.add(rec, np.arange(3), mel.astype(np.float32), np.zeros(10), np.zeros(256), None)


def test_open_names_the_problem(tmp_path):
    with pytest.raises(PackError, match=r"meta\.json"):
        Corpus.open(tmp_path)
    write_tiny_corpus(tmp_path, n=4)
    meta = json.loads((tmp_path / "meta.json").read_text("utf-8"))
    meta["version"] = 99
    (tmp_path / "meta.json").write_text(json.dumps(meta), "utf-8")
    with pytest.raises(PackError, match="version"):
        Corpus.open(tmp_path)


def test_resume_keeps_flushed_shards(tmp_path):
    write_tiny_corpus(tmp_path, n=10, shard_size=4)
    writer = CorpusWriter(tmp_path, shard_size=4, resume=True)
    assert len(writer.done_ids) == 10
    rec = {"id": "new", "speaker": "tiny_a", "emotion": "普通", "lang": "zh", "text": "t", "split": "train"}
    writer.add(rec, np.arange(3), np.zeros((6, 80), np.uint8), np.zeros(6), np.ones(256) / 16, None)
    assert not (tmp_path / "meta.json").exists()  # reopened: unfinished until finish()
    writer.finish(
        ["a"], [{"name": "tiny_a", "teacher": "t", "lang": "zh", "held_out": False}], ["普通"], {}, {}
    )
    corpus = Corpus.open(tmp_path)
    assert len(corpus) == 11 and corpus.records[-1]["shard"] == 3 and corpus[10].id == "new"


def test_tiny_corpus_is_valid(tmp_path):
    corpus = write_tiny_corpus(tmp_path, n=12)
    assert len(corpus) == 12
    assert set(corpus.meta["emotions"]) == {"普通", "生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧"}
    assert len(corpus.meta["symbols"]) == 502
    assert corpus.indices("eval") and corpus.indices("train")
    held = {s["name"] for s in corpus.meta["speakers"] if s["held_out"]}
    for i in range(len(corpus)):
        u = corpus[i]
        assert (u.split == "eval") == (u.speaker in held)
        assert u.mel.shape == (len(u.f0), 80)
        assert abs(np.linalg.norm(u.dvector) - 1) < 1e-2
        assert u.tokens.max() < 502
        if u.durations is not None:
            assert u.durations.sum() == len(u.mel)
    assert any(u.durations is None for u in corpus) and any(u.durations is not None for u in corpus)
