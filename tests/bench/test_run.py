"""The backend benchmark on the CPU: baker and a tiny EmotiVoice, reports, parity, skipped backends."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from voxserve.backends import registry
from voxserve.backends.torch_eager import TorchBackend
from voxserve.bench import report
from voxserve.bench.compare import parity
from voxserve.bench.presets import load_workload
from voxserve.bench.run import Plan, bench
from voxserve.bench.stages import Rendered
from voxserve.models.interface import AcousticOutput

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Small enough for CI, large enough for percentiles and a batch sweep.
TINY = Plan(repeats=2, warmup=0, batch_sizes=(1, 2), throughput_repeats=1, stage_repeats=1)
BAKER = Plan(repeats=2, warmup=0, batch_sizes=(1,), throughput_repeats=1, stage_repeats=1)


class NoisyBackend(TorchBackend):
    """The reference with a perturbed mel and one lengthened symbol: parity must notice both."""

    name = "noisy"

    def acoustic(self, ids, lengths, controls, speaker=None, style=None) -> AcousticOutput:
        out = super().acoustic(ids, lengths, controls, speaker, style)
        gen = torch.Generator().manual_seed(0)
        durations = out.durations.clone()
        durations[:, 0] += 1
        mel = out.mel + 0.05 * torch.randn(out.mel.shape, generator=gen)
        return out._replace(mel=mel, durations=durations)


_real_create = registry.create


def _create(name: str, **kwargs):
    """The registry's ``create``, plus the test-only ``noisy`` backend."""
    return NoisyBackend(**kwargs) if name == "noisy" else _real_create(name, **kwargs)


@pytest.fixture(scope="module")
def baker_result():
    backends = ["torch"] + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])
    return bench(load_workload("baker", quick=True), backends, "cpu", BAKER)


@pytest.fixture(scope="module")
def emotivoice_result():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "create", _create)
        return bench(load_workload("emotivoice-small", quick=True), ["noisy", "cuda", "no-such"], "cpu", TINY)


def _check_measured(entry, classes, gpu=False, plan=TINY):
    assert entry["status"] == "ok", entry["reason"]
    for cls in classes:
        lat = entry["latency"][cls]
        assert lat["n"] >= 2
        assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
        assert lat["audio_s"] > 0 and lat["rtf"] > 0
        ttfa = entry["ttfa"][cls]
        assert 0 < ttfa["p50_ms"] <= ttfa["p95_ms"] <= ttfa["p99_ms"]
        st = entry["stages_ms"][cls]
        assert {"frontend", "vocoder", "encoding"} <= set(st)
        assert all(v >= 0 for v in st.values())
    assert [p["batch"] for p in entry["throughput"]] == list(plan.batch_sizes)
    assert all(p["audio_s_per_s"] > 0 for p in entry["throughput"])
    assert entry["memory"]["rss_peak_mib"] > 50
    if gpu:
        assert entry["memory"]["gpu_peak_mib"] > 0
    else:
        assert entry["memory"]["gpu_peak_mib"] is None


@pytest.mark.slow
def test_baker_reference_is_measured_and_agrees_with_itself(baker_result):
    ref = baker_result["backends"][0]
    assert ref["name"] == "torch" and baker_result["reference"] == "torch"
    _check_measured(ref, ["short", "medium", "long"], plan=BAKER)
    # A real voice streams through the serving engine when there is one.
    engine = importlib.util.find_spec("voxserve.engine.runtime") is not None
    assert {t["source"] for t in ref["ttfa"].values()} == {"engine" if engine else "simple"}
    # The eager reference splits the acoustic model into its three stages.
    assert {"encoder", "variance_adaptor", "decoder"} <= set(ref["stages_ms"]["medium"])
    # Long texts take longer than short ones, and audio is realistic (24 kHz Mandarin).
    assert ref["latency"]["long"]["audio_s"] > ref["latency"]["short"]["audio_s"] > 0.5
    assert ref["speedup"]["rtf"] == 1.0
    assert set(ref["speedup"]["latency_p50"].values()) == {1.0}
    assert set(ref["speedup"]["throughput"].values()) == {1.0}
    p = ref["parity"]
    assert p["duration_equal_rate"] == 1.0 and p["mel_length_equal_rate"] == 1.0
    assert p["mel_corr_min"] == 1.0 and p["mel_max_abs_diff"] == 0.0
    assert p["sentences"] >= 3


@pytest.mark.slow
def test_baker_onnxruntime_is_measured_or_skipped_with_reason(baker_result):
    others = baker_result["backends"][1:]
    for e in others:
        if e["status"] == "ok":
            _check_measured(e, ["short", "medium", "long"], plan=BAKER)
            assert e["parity"]["duration_equal_rate"] > 0.9
        else:
            assert e["status"] in ("skipped", "failed") and e["reason"]


def test_emotivoice_parity_and_speedup_for_another_backend(emotivoice_result):
    ref, noisy = emotivoice_result["backends"][:2]
    _check_measured(ref, ["short", "medium", "long"])
    _check_measured(noisy, ["short", "medium", "long"])
    assert ref["parity"]["mel_corr_min"] == 1.0
    assert {t["source"] for t in ref["ttfa"].values()} == {"simple"}  # random tokens: no text to stream
    # A backend the bench cannot split reports the acoustic model as one stage.
    assert "acoustic" in noisy["stages_ms"]["medium"] and "encoder" not in noisy["stages_ms"]["medium"]
    p = noisy["parity"]
    assert 0 < p["duration_equal_rate"] < 1.0
    assert p["mel_max_abs_diff"] > 0.05 and p["mel_corr_min"] < 1.0
    sp = noisy["speedup"]["latency_p50"]["medium"]
    assert sp == pytest.approx(ref["latency"]["medium"]["p50_ms"] / noisy["latency"]["medium"]["p50_ms"])


def test_unavailable_backends_are_skipped_with_the_reason(emotivoice_result):
    by_name = {e["name"]: e for e in emotivoice_result["backends"]}
    assert by_name["no-such"]["status"] == "skipped"
    assert "unknown backend" in by_name["no-such"]["reason"] and "torch" in by_name["no-such"]["reason"]
    assert by_name["cuda"]["status"] == "skipped"
    assert "cuda" in by_name["cuda"]["reason"].lower()
    assert "latency" not in by_name["cuda"]


def test_reports_are_written(emotivoice_result, tmp_path):
    paths = report.write(emotivoice_result, tmp_path)
    names = sorted(p.name for p in paths)
    stem = "bench-emotivoice-small-cpu"
    assert names == sorted(
        f"{stem}{s}" for s in (".json", ".md", "-latency.png", "-throughput.png", "-stages.png")
    )
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    data = json.loads((tmp_path / f"{stem}.json").read_text("utf-8"))
    assert data["workload"]["name"] == "emotivoice-small"
    assert data["machine"]["cores"] >= 1 and data["machine"]["packages"]["torch"] == torch.__version__
    md = (tmp_path / f"{stem}.md").read_text("utf-8")
    for heading in ("## Machine", "## Latency", "## Time to first audio", "## Throughput", "## Per-stage"):
        assert heading in md
    assert "no-such" in md and "unknown backend" in md
    text = report.table(emotivoice_result)
    assert "torch" in text and "noisy" in text and "skipped" in text


def test_markdown_names_the_gpu(emotivoice_result):
    import copy

    result = copy.deepcopy(emotivoice_result)
    result["machine"]["gpu"] = {
        "name": "NVIDIA H100 80GB HBM3",
        "memory_gib": 79.1,
        "capability": "9.0",
        "driver": "550.54",
        "cuda": "12.4",
        "cudnn": 90100,
        "tf32": {"matmul": False, "cudnn": True},
    }
    md = report.to_markdown(result)
    assert "GPU: NVIDIA H100 80GB HBM3" in md and "driver 550.54" in md and "CUDA 12.4" in md


def test_plan_rejects_nonsense():
    from voxserve.errors import InvalidInput

    with pytest.raises(InvalidInput, match="repeats"):
        Plan(repeats=0, warmup=0, batch_sizes=(1,), throughput_repeats=1, stage_repeats=1)
    with pytest.raises(InvalidInput):
        Plan(repeats=1, warmup=0, batch_sizes=(0,), throughput_repeats=1, stage_repeats=1)


def test_parity_measures_agreement():
    mel = np.random.default_rng(0).normal(size=(20, 80)).astype(np.float32)
    a = Rendered(np.zeros(1), [np.array([3, 4, 5])], [mel], 0)
    assert parity([a], [a])["mel_corr_min"] == 1.0
    shorter = Rendered(np.zeros(1), [np.array([3, 4, 4])], [mel[:19] + 0.1], 0)
    p = parity([a], [shorter])
    assert p["duration_equal_rate"] == pytest.approx(2 / 3)
    assert p["mel_length_equal_rate"] == 0.0
    assert p["mel_max_abs_diff"] == pytest.approx(0.1, rel=1e-3)
    assert 0.99 < p["mel_corr_min"] < 1.0


def test_emotivoice_preset_is_fixed_and_speaks_about_five_frames_per_token():
    a, b = load_workload("emotivoice-small"), load_workload("emotivoice-small")
    assert [i.ids for i in a.classes["medium"]] == [i.ids for i in b.classes["medium"]]
    assert (
        len(a.classes["medium"]) == 3
        and len(load_workload("emotivoice-small", quick=True).classes["long"]) == 1
    )
    backend = TorchBackend()
    backend.load(a.pack)
    from voxserve.bench.stages import acoustic, pad

    ids, lengths = pad([list(i.ids[0]) for i in a.classes["long"]])
    out = acoustic(a, backend, ids, lengths)
    rate = float(out.mel_lengths.sum()) / float(lengths.sum())
    assert 3.5 < rate < 6.5


def test_cli_writes_reports(tmp_path, capsys):
    from voxserve.bench.cli import build_parser, main

    main(build_parser().parse_args(["emotivoice-small", "--quick", "--repeat", "1", "--out", str(tmp_path)]))
    out = capsys.readouterr().out
    assert "emotivoice-small on cpu" in out and "torch" in out
    assert (tmp_path / "bench-emotivoice-small-cpu.json").is_file()
    assert (tmp_path / "bench-emotivoice-small-cpu-stages.png").is_file()


def test_unknown_voice_names_the_presets():
    from voxserve.errors import NotFound

    with pytest.raises(NotFound, match="emotivoice-size"):
        load_workload("no-such-voice")


@pytest.mark.gpu
@needs_cuda
def test_gpu_run_measures_memory_and_the_cuda_backend(tmp_path):
    plan = Plan(repeats=3, warmup=1, batch_sizes=(1, 4), throughput_repeats=2, stage_repeats=2)
    result = bench(load_workload("emotivoice-small", quick=True), ["cuda"], "cuda", plan)
    ref, fast = result["backends"]
    _check_measured(ref, ["short", "medium", "long"], gpu=True, plan=plan)
    assert result["machine"]["gpu"]["name"]
    if fast["status"] == "ok":
        _check_measured(fast, ["short", "medium", "long"], gpu=True, plan=plan)
        assert fast["parity"]["duration_equal_rate"] > 0.95
        assert fast["parity"]["mel_corr_min"] > 0.99
    else:
        assert fast["reason"]
    assert len(report.write(result, tmp_path)) == 5
