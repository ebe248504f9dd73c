"""Shipped sentence lists and the corpus plan (speakers, jobs, held-out split)."""

from __future__ import annotations

import collections
import random
import re

import pytest

from voxserve.engine.controls import EMOTIONS
from voxserve.train.corpus import plan, sentences


@pytest.fixture(scope="module")
def frontend():
    from voxserve.frontend.mixed import MixedFrontend

    return MixedFrontend("emotivoice")


def test_lists_are_present_and_varied():
    sizes = {name: len(sentences.load(name)) for name in sentences.LISTS}
    assert sizes["zh_news"] >= 2000 and sizes["en_fortunes"] >= 1000
    assert sizes["zh_reviews_pos"] >= 500 and sizes["zh_reviews_neg"] >= 500 and sizes["zh_en_mixed"] >= 100
    for name in sentences.LISTS:
        items = sentences.load(name)
        assert len(set(items)) > 0.98 * len(items), name
        assert not any(s.startswith("#") for s in items)
    assert all(
        re.search(r"[\u4e00-\u9fff]", s) and re.search("[A-Za-z]{2}", s)
        for s in sentences.load("zh_en_mixed")
    )
    assert not any(re.search(r"[\u4e00-\u9fff]", s) for s in sentences.load("en_fortunes"))
    assert not any(re.search(r"[0-9０-９]", s) for name in sentences.LISTS for s in sentences.load(name))
    with pytest.raises(KeyError, match="valid"):
        sentences.load("nope")


def test_sample_of_every_list_maps_into_the_tokenlist(frontend):
    from voxserve.frontend.symbols.emotivoice import tokens

    valid = set(tokens())
    rng = random.Random(0)
    for name in sentences.LISTS:
        for text in rng.sample(sentences.load(name), 40):
            assert frontend.split(text) == [text]  # stored normalized, one sentence each
            seq = frontend.phonemize(text)
            assert set(seq.symbols) <= valid
            assert any(s.startswith("[") for s in seq.symbols) == (sentences.LANG[name] != "zh")


def test_plan_speakers_and_held_out_split():
    opts = plan.Options(minutes=20, blends=10, held_out_blends=3, seed=3)
    speakers = plan.speakers(opts)
    names = [s.name for s in speakers]
    assert names[:7] == ["baker", "piper_joe"] + [f"kokoro_{v}" for v in plan.VOICES]
    held = {s.name for s in speakers if s.held_out}
    assert held == {"blend_000", "blend_001", "blend_002"}
    for s in speakers[7:]:
        assert abs(sum(s.blend["weights"].values()) - 1) < 0.01
    jobs = plan.jobs(opts, speakers)
    assert plan.jobs(opts) == jobs  # deterministic
    assert len({j.id for j in jobs}) == len(jobs)
    assert not any(j.split == "train" and j.speaker in held for j in jobs)
    evals = [j for j in jobs if j.split == "eval"]
    assert {j.speaker for j in evals} == held | set(names[:7])
    assert {j.text for j in evals}.isdisjoint(j.text for j in jobs if j.split == "train")
    clips = [j for j in evals if j.clip]
    assert len(clips) == len(held) + 7 and {j.lang for j in clips} == {"zh", "en"}
    assert all(j.id.endswith("_ref") for j in clips)
    assert all(len(j.text.split()) >= 14 for j in clips if j.lang == "en")
    assert all(len(j.text) >= 20 for j in clips if j.lang == "zh")
    assert jobs[: len(evals)] == evals  # eval first
    assert all(j.emotion == plan.NEUTRAL for j in jobs if j.teacher == "piper")
    assert not any(re.search("[A-Za-z]", j.text) for j in jobs if j.teacher == "baker")
    train = [j for j in jobs if j.split == "train"]
    counts = collections.Counter(j.emotion for j in train if j.teacher != "piper")
    assert set(counts) == set(EMOTIONS)
    langs = collections.Counter(j.lang for j in train if j.teacher == "kokoro")
    assert abs(langs["zh"] - langs["en"]) <= len(speakers)
    mixed = sum(1 for j in train if j.lang == "zh" and re.search("[A-Za-z]", j.text))
    assert 0 < mixed < 0.15 * sum(1 for j in train if j.lang == "zh")


def test_plan_voice_spread_and_baker_variants():
    opts = plan.Options(
        minutes=20, blends=12, held_out_blends=2, seed=5, baker_pitches=(0.8, 1.25), voice_spread=0.3
    )
    speakers = plan.speakers(opts)
    names = [s.name for s in speakers]
    assert names[:4] == ["baker", "baker_p080", "baker_p125", "piper_joe"]
    assert [s.blend["pitch"] for s in speakers[1:3]] == [0.8, 1.25]
    blends = [s for s in speakers if s.name.startswith("blend")]
    pitches = [b.blend["pitch"] for b in blends]
    assert all(1 / 1.3 - 1e-3 <= p <= 1.3 + 1e-3 for p in pitches)
    assert all(0.7 <= b.blend["pitch_range"] <= 1.3 and 0.9 <= b.blend["rate"] <= 1.1 for b in blends)
    assert len(set(pitches)) == len(pitches) and min(pitches) < 0.95 < 1.05 < max(pitches)
    # Without a spread the blends keep the packs' own voices (the earlier corpus stays reproducible).
    plain = plan.speakers(plan.Options(blends=12, seed=5))
    assert all("pitch" not in s.blend for s in plain)
    jobs = plan.jobs(opts, speakers)
    variants = {"baker_p080", "baker_p125"}
    assert not any(j.split == "eval" and j.speaker in variants for j in jobs)  # no eval clips for them
    seconds = collections.Counter()
    for j in jobs:
        if j.split == "train" and j.teacher == "baker":
            seconds[j.speaker] += len(j.text) / j.tempo
    assert set(seconds) == {"baker"} | variants  # baker's share split three ways
    assert max(seconds.values()) < 1.5 * min(seconds.values())


@pytest.mark.parametrize(
    ("flags", "param"),
    [
        (["--shares", "0.5,0.5"], "shares"),
        (["--shares", "0.5,0.5,0.5,x"], "shares"),
        (["--baker-pitches", "0.8,3"], "baker_pitches"),
        (["--baker-pitches", "low"], "baker_pitches"),
        (["--voice-spread", "0.7"], "voice_spread"),
    ],
)
def test_corpus_cli_refuses_bad_voice_options(tmp_path, flags, param):
    from voxserve.cli import build_parser
    from voxserve.errors import InvalidInput

    args = build_parser().parse_args(["train", "corpus", str(tmp_path / "c"), *flags])
    with pytest.raises(InvalidInput) as err:
        args.train_func(args)
    assert err.value.param == param
    assert not (tmp_path / "c").exists()
