"""Training the tiny clone model on CPU: loss falls, resume is exact, the CLI runs in a time budget."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from voxserve.errors import InvalidInput
from voxserve.models.clone import TINY
from voxserve.train.corpus.format import write_tiny_corpus
from voxserve.train.data import load_corpus
from voxserve.train.trainer import TrainConfig, Trainer

TRAIN = TrainConfig(
    frames_per_batch=240, max_batch=6, warmup_steps=5, lr=3e-3, bin_loss_start=10, log_every=5
)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus")
    write_tiny_corpus(path, n=24)
    return path


@pytest.fixture(scope="module")
def data(corpus_dir):
    return load_corpus(corpus_dir)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_data_batches_are_padded_and_consistent(data):
    idx = data.indices("train")[:4]
    b = data.batch(idx)
    assert b.ids.shape == (4, int(data.n_tokens[idx].max()))
    assert torch.equal(b.lengths, torch.from_numpy(data.n_tokens[idx]))
    for row in range(4):
        n, f = int(b.lengths[row]), int(b.mel_lengths[row])
        assert torch.all(b.ids[row, n:] == 0) and torch.all(b.mel[row, f:] == 0)
        if b.has_durations[row]:
            assert int(b.durations[row].sum()) == f
    assert torch.allclose(b.style.sum(1), torch.ones(4))
    names, table = data.speaker_table()
    assert names == ["tiny_a", "tiny_b"]  # the held-out speaker has no row
    torch.testing.assert_close(table.norm(dim=1), torch.ones(2))


def test_sampler_is_deterministic_and_covers_the_split(data):
    t1, t2 = Trainer.create(data, TINY, TRAIN), Trainer.create(data, TINY, TRAIN)
    e1, e2 = t1.sampler.epoch(3), t2.sampler.epoch(3)
    assert [b.tolist() for b in e1] == [b.tolist() for b in e2]
    assert sorted(np.concatenate(e1).tolist()) == data.indices("train").tolist()
    assert [b.tolist() for b in t1.sampler.epoch(4)] != [b.tolist() for b in e1]
    for b in e1:
        assert len(b) == 1 or data.n_frames[b].max() * len(b) <= TRAIN.frames_per_batch


def test_loss_falls(data):
    t = Trainer.create(data, TINY, TRAIN)
    rows = [t.train_step() for _ in range(30)]
    assert np.isfinite([r["total"] for r in rows]).all()
    acoustic = [r["mel"] + r["duration"] + r["pitch"] + r["energy"] for r in rows]
    assert np.mean(acoustic[-5:]) < 0.6 * np.mean(acoustic[:5])
    assert np.mean([r["mel"] for r in rows[-5:]]) < np.mean([r["mel"] for r in rows[:5]])
    assert t.model.config.n_speakers == 2 and t.model.config.n_emotions == 7
    # The prosody statistics come from the corpus (F0 around 180 Hz in the tiny corpus).
    assert 150 < np.exp(t.model.config.pitch_stats[0]) < 220


def test_resume_continues_exactly(data, tmp_path):
    t = Trainer.create(data, TINY, TRAIN)
    for _ in range(12):
        t.train_step()
    t.save(tmp_path)
    expected = [t.train_step() for _ in range(3)]
    r = Trainer.resume(tmp_path, data)
    assert r.step == 12
    got = [r.train_step() for _ in range(3)]
    for a, b in zip(expected, got, strict=True):
        assert a["total"] == b["total"] and a["frames"] == b["frames"]
    for (ka, va), (kb, vb) in zip(t.model.state_dict().items(), r.model.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_light_checkpoint_carries_weights_and_position_with_a_fresh_optimizer(data, tmp_path):
    t = Trainer.create(data, TINY, TRAIN)
    for _ in range(8):
        t.train_step()
    light = t.save_light(tmp_path / "light.safetensors")
    t.save(tmp_path / "exact")
    exact_bytes = sum(p.stat().st_size for p in (tmp_path / "exact").iterdir())
    assert light.stat().st_size < exact_bytes / 3
    r = Trainer.resume(light, data)
    assert (r.step, r.pos, r.speaker_names) == (8, t.pos, t.speaker_names)
    for k, v in t.model.state_dict().items():
        torch.testing.assert_close(r.model.state_dict()[k], v.half().float())
    assert not r.optim.state  # fresh moments
    assert r.lr_at(8) < 0.01 * t.lr_at(8)  # the learning rate ramps up again
    assert r.lr_at(8 + TRAIN.rewarm_steps) == pytest.approx(t.lr_at(8 + TRAIN.rewarm_steps))
    assert np.isfinite(r.train_step()["total"])
    r.save(tmp_path / "again")  # the ramp survives an exact checkpoint
    assert Trainer.resume(tmp_path / "again", data).rewarm_from == 8


def test_resume_refuses_another_corpus_unless_told(data, corpus_dir, tmp_path):
    t = Trainer.create(data, TINY, TRAIN)
    t.train_step()
    t.save(tmp_path / "ck")
    other = tmp_path / "other"
    write_tiny_corpus(other, n=18, seed=5)
    other_data = load_corpus(other)
    with pytest.raises(InvalidInput, match="another corpus"):
        Trainer.resume(tmp_path / "ck", other_data)
    r = Trainer.resume(tmp_path / "ck", other_data, new_corpus=True)
    assert r.step == 1 and (r.pos.epoch, r.pos.batch) == (0, 0)
    # A warm start on a corpus with other speakers takes that corpus's speaker table.
    meta = json.loads((other / "meta.json").read_text())
    meta["speakers"][1]["held_out"] = True
    (other / "meta.json").write_text(json.dumps(meta))
    fewer = load_corpus(other)
    names, table = fewer.speaker_table()
    assert names == ["tiny_a"] and len(data.speaker_table()[0]) == 2
    r = Trainer.resume(tmp_path / "ck", fewer, new_corpus=True)
    assert r.speaker_names == names and r.config.n_speakers == 1
    torch.testing.assert_close(r.model.speaker_table, table.to(r.model.speaker_table))
    assert np.isfinite(r.train_step()["total"])


def test_cli_runs_in_a_budget_and_resumes(corpus_dir, tmp_path, capsys):
    from voxserve.cli import build_parser

    out = tmp_path / "run"
    common = ["--corpus", str(corpus_dir), "--out", str(out), "--device", "cpu", "--minutes", "0.12"]
    args = build_parser().parse_args(["train", "run", *common, "--size", "tiny", "--frames-per-batch", "240"])
    first = args.train_func(args)
    names = {p.name for p in out.iterdir()}
    assert {"train.log", "history.csv", "curve.svg", "summary.json", "light.safetensors"} <= names
    assert any(n.startswith("ckpt-00-of-") for n in names)
    args = build_parser().parse_args(["train", "run", *common, "--resume", str(out)])
    second = args.train_func(args)
    assert second["step"] >= first["step"]
    assert json.loads((out / "summary.json").read_text())["step"] == second["step"]
    assert "<svg" in (out / "curve.svg").read_text()
    with pytest.raises(InvalidInput, match="size"):
        bad = build_parser().parse_args(
            ["train", "run", *common[:2], "--out", str(tmp_path / "x"), "--minutes", "1", "--size", "huge"]
        )
        bad.train_func(bad)


def test_eval_reports_the_held_out_split(data):
    t = Trainer.create(data, TINY, dataclasses.replace(TRAIN, eval_batches=2))
    ev = t.evaluate()
    assert {"mel", "duration", "pitch", "energy", "align", "total"} <= ev.keys()
    assert all(np.isfinite(v) for v in ev.values())


def test_leave_out_drops_one_teachers_training_language(corpus_dir, data, tmp_path):
    from voxserve.cli import build_parser
    from voxserve.train.corpus.format import Corpus

    records = Corpus.open(corpus_dir).records
    langs = {(r["lang"], r["split"]) for r in records}
    assert ("zh", "train") in langs and ("en", "train") in langs
    fewer = load_corpus(corpus_dir, leave_out=[("tiny", "zh")])
    dropped = sum(1 for r in records if r["split"] == "train" and r["lang"] == "zh")
    assert len(fewer) == len(data) - dropped and dropped > 0
    assert int((~fewer.is_train).sum()) == int((~data.is_train).sum())  # eval utterances stay
    assert fewer.fingerprint != data.fingerprint
    assert len(load_corpus(corpus_dir, leave_out=[("kokoro", "zh")])) == len(data)  # no such teacher
    args = build_parser().parse_args(
        [
            "train",
            "run",
            "--corpus",
            str(corpus_dir),
            "--out",
            str(tmp_path / "r"),
            "--minutes",
            "1",
            "--leave-out",
            "tiny",
        ]
    )
    with pytest.raises(InvalidInput, match="leave-out"):
        args.train_func(args)
