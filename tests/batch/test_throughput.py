"""The throughput pipeline keeps outputs: piecewise encoding, cues without assembly, frontend processes.

Also the measuring aids: ``Report.timings`` and ``voxserve batch --profile``.
"""

from __future__ import annotations

import io
import json
import pstats

import numpy as np
import pytest

from voxserve.batch.documents import Chapter, Document
from voxserve.batch.encode import chapter_parts, encode_parts
from voxserve.batch.phonemes import ProcessPhonemizer
from voxserve.batch.plan import ChapterPlan, Sentence, plan_chapter
from voxserve.batch.render import assemble, chapter_cues
from voxserve.batch.runner import BatchJob, BatchSettings
from voxserve.cli import main
from voxserve.frontend.interface import PhoneSequence
from voxserve.server.encoding import encode_file

RATE = 24000


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.6 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(
        len(t)
    )
    return x.astype(np.float32)  # peaks past 1.0: clipping is part of what must match


def _decode(data: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data)) as f:
        return np.concatenate([fr.to_ndarray().reshape(-1) for fr in f.decode(f.streams.audio[0])])


@pytest.mark.parametrize("fmt", ["pcm", "wav", "flac", "mp3", "aac", "opus"])
def test_pieces_encode_to_the_bytes_of_the_whole(fmt):
    x = _speech_like(4.0, 1)
    cuts = np.sort(np.random.default_rng(2).integers(0, len(x), 12))
    parts = np.split(x, cuts)
    parts.insert(3, np.zeros(0, np.float32))
    whole, pieces = encode_file(fmt, x, RATE), encode_parts(fmt, iter(parts), RATE)
    if fmt == "opus":  # Ogg's random stream serial differs per file: compare the audio
        assert np.array_equal(_decode(whole), _decode(pieces))
    else:
        assert pieces == whole


def _plan() -> tuple[ChapterPlan, list[np.ndarray], list[np.ndarray]]:
    sentences, samples, durations = [], [], []
    for k in range(5):
        n = 3 + k
        # A silence symbol first (char_index -1), then one symbol per character.
        seq = PhoneSequence("字" * n, ("sil", *["a"] * n), (-1, *range(n)))
        sentences.append(Sentence("字" * n, "baker", None, seq, gap_after=0.05 * (k + 1)))
        samples.append(_speech_like(0.2 + 0.1 * k, k))
        durations.append(np.array([0.0 if k == 2 else 0.03] + [0.01] * n))
    return ChapterPlan(1, "", tuple(sentences), lead=0.1), samples, durations


@pytest.mark.parametrize("volume", [1.0, 1.7])
def test_parts_and_cues_equal_the_assembled_chapter(volume):
    plan, samples, durations = _plan()
    audio = assemble(plan, list(samples), list(durations), RATE, volume)
    cues, length = chapter_cues(plan, samples, durations, RATE)
    parts = list(chapter_parts(plan, samples, RATE, volume))
    assert cues == audio.cues and length == len(audio.samples)
    assert np.array_equal(np.concatenate(parts), audio.samples)
    assert audio.cues[0].start == 0.13  # lead 0.1 s + the leading silence symbol's 0.03 s


@pytest.fixture(scope="module")
def voices(tts):
    job = BatchJob(Document("", (Chapter("", ("好。",)),), "t"), "/nonexistent", BatchSettings(), tts=tts)
    job.validate()
    return job._voices


def test_frontend_processes_plan_what_this_process_plans(voices):
    chapter = Chapter("第一章", ("今天天气很好，我们去公园。\n\n[pause:300ms]她说：“走吧！”", "第二段。"))
    here = plan_chapter(chapter, 1, voices, "baker", None)
    pool = ProcessPhonemizer(voices.recipes(), 1)
    try:
        there = plan_chapter(chapter, 1, voices, "baker", None, pool.phonemize)
    finally:
        pool.close()
    assert there == here and len(here.sentences) >= 4


def test_a_failing_phonemizer_falls_back_to_this_process(voices):
    chapter = Chapter("", ("你好。再见。",))

    def broken(pack, texts):
        raise RuntimeError("worker died")

    assert plan_chapter(chapter, 1, voices, "baker", None, broken) == plan_chapter(
        chapter, 1, voices, "baker", None
    )


def test_frontend_processes_write_the_same_files_and_report_timings(tts, tmp_path):
    doc = Document("", (Chapter("一", ("今天天气很好。",)), Chapter("二", ("我们去公园散步吧！",))), "t")
    reports = {}
    for n in (0, 1):
        job = BatchJob(doc, tmp_path / str(n), BatchSettings(format="flac", frontend_processes=n), tts=tts)
        job.validate()
        if n:
            job._phonemizer.wait(120)  # else the first chapters are planned here while workers start
        reports[n] = job.run()
        assert job._phonemizer is None  # run() ends the workers
    names = sorted(p.name for p in (tmp_path / "0").iterdir())
    for name in names:
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes(), name
    timings = reports[1].timings
    assert timings is not None and timings["wall"] > 0
    assert {"plan", "render", "model", "encode", "write"} <= set(timings["steps"])
    assert 0 < timings["steps"]["model"] <= timings["steps"]["render"]
    assert reports[1].to_dict()["timings"] == timings


def test_cli_profile_writes_a_pstats_file_and_thread_stacks(tmp_path):
    src = tmp_path / "a.md"
    src.write_text("# 一\n\n你好。\n\n# 二\n\n再见。\n", "utf-8")
    prof, report = tmp_path / "run.prof", tmp_path / "r.json"
    out = ["batch", str(src), "-o", str(tmp_path / "o"), "--quiet", "--format", "wav"]
    main([*out, "--profile", str(prof), "--report", str(report), "--frontend-procs", "0"])
    names = {fn[2] for fn in pstats.Stats(str(prof)).stats}  # type: ignore[attr-defined]
    assert "render_sentences" in names
    stacks = (tmp_path / "run.prof.stacks.txt").read_text("utf-8").splitlines()
    assert stacks and all(line.rsplit(" ", 1)[1].isdigit() for line in stacks)
    assert any(line.startswith("MainThread;") for line in stacks)
    assert json.loads(report.read_text("utf-8"))["timings"]["steps"]["render"] > 0
