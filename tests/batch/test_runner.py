"""Batch jobs end to end on the real baker voice: files, subtitles, manifest, markup, resume, errors."""

from __future__ import annotations

import errno
import itertools
import json
import threading

import numpy as np
import pytest
from tests.batch.conftest import decode, longest_quiet_run
from tests.batch.test_documents import make_epub

from voxserve.batch import manifest as mf
from voxserve.batch import subtitles
from voxserve.batch.documents import Chapter, Document, parse_document, parse_markdown
from voxserve.batch.lexicon import parse_lexicon_text
from voxserve.batch.runner import BatchJob, BatchSettings
from voxserve.bench.prosody import measure
from voxserve.errors import InvalidInput, NotFound


def one_chapter(text: str, title: str = "") -> Document:
    return Document("", (Chapter(title, (text,)),), "test")


def run(tts, doc, out, **settings):
    job = BatchJob(doc, out, BatchSettings(**{"format": "flac", **settings}), tts=tts)
    return job.run()


@pytest.fixture(scope="module")
def epub_job(tts, tmp_path_factory):
    out = tmp_path_factory.mktemp("epub")
    data = make_epub([("第一章", ["今天天气很好。", "我们去公园散步吧！"]), ("第二章", ["故事结束了。"])])
    report = run(tts, parse_document(data, "epub", "book.epub"), out)
    return out, report


def test_epub_files_subtitles_and_manifest(epub_job):
    out, report = epub_job
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["complete"] and report.chapters_rendered == 2 and not report.stopped
    assert [c["title"] for c in manifest["chapters"]] == ["第一章", "第二章"]
    assert manifest["settings"]["voice"] == "baker" and manifest["sample_rate"] == 24000
    assert set(manifest["versions"]) >= {"voxserve", "torch"}
    for entry in manifest["chapters"]:
        audio_path = out / entry["audio"]["path"]
        assert mf.file_sha256(audio_path) == entry["audio"]["sha256"]
        x, sr = decode(audio_path)
        duration = len(x) / sr
        assert duration == pytest.approx(entry["duration"], abs=1e-3)
        srt = subtitles.parse((out / entry["subtitles"]["srt"]).read_text("utf-8"))
        vtt_text = (out / entry["subtitles"]["vtt"]).read_text("utf-8")
        assert vtt_text.startswith("WEBVTT\n")
        assert subtitles.parse(vtt_text) == srt
        assert len(srt) == entry["sentences"]
        starts = [c.start for c in srt]
        ends = [c.end for c in srt]
        assert all(a < b for a, b in zip(starts, ends, strict=True))
        assert all(b <= a for a, b in zip(starts[1:], ends[:-1], strict=True))  # monotonic, no overlap
        assert ends[-1] == pytest.approx(duration, abs=0.05)
        # Cues sit on speech: louder inside each cue than in the gaps between cues.
        for c, nxt in itertools.pairwise(srt):
            inside = x[int(c.start * sr) : int(c.end * sr)]
            gap = x[int(c.end * sr) + 10 : int(nxt.start * sr) - 10]
            assert np.sqrt(np.mean(inside**2)) > 10 * np.sqrt(np.mean(gap**2) + 1e-12)
    assert srt[0].text == "第二章"  # titles are spoken first


def test_markdown_to_mp3(tts, tmp_path):
    doc = parse_markdown("# 书\n\n## 一\n\n你好，世界。\n\n## 二\n\n再见。\n")
    report = run(tts, doc, tmp_path, format="mp3")
    assert report.chapters_rendered == 2
    for entry in report.manifest["chapters"]:
        x, sr = decode(tmp_path / entry["audio"]["path"])
        assert entry["audio"]["path"].endswith(".mp3") and sr == 24000
        assert len(x) / sr == pytest.approx(entry["duration"], abs=0.06)


def test_emotion_span_changes_pitch_and_tempo(tts, tmp_path):
    sentence = "今天天气很好。"
    report = run(tts, one_chapter(f"[emotion:开心]{sentence}[/][emotion:sad]{sentence}[/]"), tmp_path)
    x, sr = decode(tmp_path / report.manifest["chapters"][0]["audio"]["path"])
    cues = subtitles.parse((tmp_path / "chapter-001.srt").read_text("utf-8"))
    happy, sad = (measure(x[int(c.start * sr) : int(c.end * sr)], sr) for c in cues)
    assert happy.f0_median > 1.15 * sad.f0_median  # presets: pitch 1.14 vs 0.9
    assert sad.duration > 1.15 * happy.duration  # tempo 1.08 vs 0.84


def test_pause_markup_inserts_the_requested_silence(tts, tmp_path):
    runs = {}
    for ms in (300, 1500):
        out = tmp_path / str(ms)
        report = run(tts, one_chapter(f"你好。[pause:{ms}ms]再见。"), out, format="wav")
        x, sr = decode(out / report.manifest["chapters"][0]["audio"]["path"])
        runs[ms] = longest_quiet_run(x, sr)
    assert runs[1500] - runs[300] == pytest.approx(1.2, abs=0.03)
    assert 1.5 <= runs[1500] <= 1.5 + 0.6  # plus the sentences' own edge silences


def test_voice_span_with_the_same_voice_changes_nothing(tts, tmp_path):
    a = run(tts, one_chapter("你好。"), tmp_path / "a")
    b = run(tts, one_chapter("[voice:baker]你好。[/]"), tmp_path / "b")
    assert a.manifest["chapters"][0]["audio"]["sha256"] == b.manifest["chapters"][0]["audio"]["sha256"]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("好。\n[voice:nobody]你好[/]", NotFound, r"chapter 1, line 2, column 1: unknown voice 'nobody'"),
        ("好[emotion:grumpy]你好[/]", NotFound, r"chapter 1, line 1, column 2: unknown emotion 'grumpy'"),
        ("好[pause:3]", InvalidInput, r"chapter 1, line 1, column 2: malformed pause"),
    ],
)
def test_bad_names_fail_before_synthesis(tts, tmp_path, text, error, message):
    doc = Document("", (Chapter("", ("第一章没问题。",)), Chapter("", (text,))), "t")
    job = BatchJob(doc, tmp_path / "out", BatchSettings(), tts=tts)
    with pytest.raises(error, match=message.replace("chapter 1", "chapter 2")):
        job.validate()
    assert not (tmp_path / "out").exists()


def test_lexicon_reaches_the_phones(tts, tmp_path):
    from voxserve.batch.plan import Voices, plan_chapter
    from voxserve.engine.controls import SynthesisParams

    chapter = Chapter("", ("我去银行。",))
    plain = plan_chapter(chapter, 1, Voices(tts, SynthesisParams(), parse_lexicon_text("")), "baker", None)
    custom_voices = Voices(tts, SynthesisParams(), parse_lexicon_text("银行\tyin2 xing2\n"))
    custom = plan_chapter(chapter, 1, custom_voices, "baker", None)
    assert "ang2" in plain.sentences[0].seq.symbols
    assert "ing2" in custom.sentences[0].seq.symbols and "ang2" not in custom.sentences[0].seq.symbols


def test_resume_skips_finished_chapters_and_redoes_changed_ones(tts, tmp_path):
    doc = Document("", (Chapter("一", ("甲。",)), Chapter("二", ("乙。",))), "t")
    run(tts, doc, tmp_path)
    first = (tmp_path / "chapter-001.flac").stat().st_mtime_ns
    second = (tmp_path / "chapter-002.flac").stat().st_mtime_ns
    again = run(tts, doc, tmp_path)
    assert (again.chapters_rendered, again.chapters_skipped) == (0, 2)
    changed = Document("", (doc.chapters[0], Chapter("二", ("丙。",))), "t")
    report = run(tts, changed, tmp_path)
    assert (report.chapters_rendered, report.chapters_skipped) == (1, 1)
    assert (tmp_path / "chapter-001.flac").stat().st_mtime_ns == first
    assert (tmp_path / "chapter-002.flac").stat().st_mtime_ns != second
    (tmp_path / "chapter-001.flac").write_bytes(b"damaged")
    assert run(tts, changed, tmp_path).chapters_rendered == 1  # a damaged file is redone
    assert run(tts, changed, tmp_path, speed=1.2).chapters_rendered == 2  # new settings redo all


def test_stop_then_resume(tts, tmp_path):
    doc = Document("", tuple(Chapter(f"第{n}章", ("你好。",)) for n in "一二三"), "t")
    stop = threading.Event()
    job = BatchJob(doc, tmp_path, BatchSettings(format="wav", workers=1), tts=tts)
    report = job.run(on_progress=lambda p: stop.set() if p.sentences_done >= 2 else None, stop=stop)
    assert report.stopped and not report.manifest["complete"]
    done = [c["index"] for c in report.manifest["chapters"] if c["status"] == "done"]
    assert done == [1]
    resumed = BatchJob(doc, tmp_path, BatchSettings(format="wav"), tts=tts).run()
    assert resumed.chapters_skipped == 1 and resumed.manifest["complete"]


def test_disk_full_is_a_clear_error(tts, tmp_path, monkeypatch):
    real = mf._write_file

    def full(path, data):
        if ".chapter-002" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(mf, "_write_file", full)
    doc = Document("", (Chapter("", ("甲。",)), Chapter("", ("乙。",))), "t")
    with pytest.raises(mf.BatchIOError, match=r"disk full writing .*chapter-002"):
        run(tts, doc, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    saved = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert [c["status"] for c in saved["chapters"]] == ["done", "pending"]


def test_chapter_with_nothing_speakable_is_recorded_without_files(tts, tmp_path):
    doc = Document("", (Chapter("", ("……",)), Chapter("", ("好。",))), "t")
    report = run(tts, doc, tmp_path, speak_titles=False)
    assert [c["status"] for c in report.manifest["chapters"]] == ["empty", "done"]
    assert report.manifest["complete"] and not list(tmp_path.glob("chapter-001.*"))
    assert run(tts, doc, tmp_path, speak_titles=False).chapters_skipped == 2


def test_progress_speed_and_eta():
    from voxserve.batch.runner import Progress

    p = Progress(sentences_total=10, sentences_done=4, audio_seconds=20.0, wall_seconds=2.0)
    assert p.speed == 10.0 and p.eta_seconds == pytest.approx(3.0)
    assert Progress(sentences_total=10).eta_seconds is None


@pytest.mark.gpu
def test_cuda_job_reports_gpu_utilization(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("pynvml")
    doc = Document("", (Chapter("一", ("今天天气很好。" * 20,)),), "t")
    job = BatchJob(doc, tmp_path, BatchSettings(format="wav", batch_size=64), backend="cuda", device="cuda")
    report = job.run()
    assert report.manifest["complete"] and report.gpu is not None and report.gpu["samples"] >= 1
    assert 0 <= report.gpu["util_mean"] <= 100


def test_nvml_sampler_with_a_fake_nvml(monkeypatch):
    import sys
    import types

    from voxserve.batch.gpu import NvmlSampler

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"Fake GPU",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=42),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**20),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.current_device", lambda: 0)
    with NvmlSampler("cuda", interval=0.01) as sampler:
        pass
    summary = sampler.summary()
    assert summary is not None and summary["device"] == "Fake GPU" and summary["samples"] >= 2
    assert summary["util_mean"] == 42 and summary["memory_peak_mb"] == 3.0
    with NvmlSampler("cpu") as cpu:
        pass
    assert cpu.summary() is None
