"""Int8 weights for exported stage files (ONNX Runtime quantization), made once beside the float32 files.

Two methods, measured on baker (2 threads, Zen 4 with AVX-512 VNNI; see the tests for accuracy):

* ``static`` (default): int8 weights *and* activations (QDQ, per-channel weights,
  MinMax activation ranges from calibration). ONNX Runtime then runs its int8
  convolution kernels: the decoder gets 2.5-3.5× faster (CPU time) at mel
  correlation ≈ 0.997 with float32 (mean error 0.05 nats on speech frames).
  Calibration feeds are the pack's own sentences through its frontend when it has
  one (:data:`CALIBRATION_SENTENCES`), else random symbol sequences.
* ``dynamic``: int8 MatMul weights, activations quantized at run time. No gain on
  these models: their time is in convolutions, and dynamic int8 convolutions
  (``ConvInteger``) are slower than float32 and lose accuracy.

Which stages: by default only the decoder. The encoder decides durations (a
rounded float; int8 moves a few by a frame) and costs little; the vocoder in
static int8 drops to waveform correlation ≈ 0.8-0.9 and log-spectrum correlation
≈ 0.55 (a noise floor fills the silences), whichever layers are kept in float. Int8 files are for ONNX Runtime only: TensorRT gets the float32 files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput

METHODS = ("static", "dynamic")
"""Quantization methods, see the module docstring."""
STATIC_OPS = {
    "encoder": ("Conv", "MatMul"),
    "decoder": ("Conv", "MatMul"),
    "vocoder": ("Conv", "ConvTranspose"),
}
"""Op types that static quantization turns into int8, per stage."""
DYNAMIC_OPS = ("MatMul",)
"""Op types that dynamic quantization turns into int8 (convolutions would get slower)."""
CALIBRATION_SENTENCES = (
    "欢迎使用语音合成服务，祝您生活愉快。",
    "明天上午九点，我们在三号会议室开会。",
    "你知道附近哪里有好吃的饭馆吗？",
    "春天来了，公园里的花都开了，到处都是游客。",
    "这本书一共有三百二十页，我已经读了一半。",
    "请注意，列车即将进站，请站在黄线以外等候。",
    "太好了！我们终于完成了这个项目。",
    "他一边听音乐，一边慢慢地写着日记。",
    "谢谢！",
    "是的。",
)
"""Sentences whose stage activations set the static int8 ranges (not the tests' sentences).

Short ones matter: a one-word utterance is mostly leading and trailing silence,
whose mel values lie far below a sentence's (without them, a test's "好。" clipped
its silence by 3 nats)."""


def int8_path(directory: Path, stage: str, method: str) -> Path:
    """Where the int8 file of ``stage`` made by ``method`` lives.

    The name carries a short hash of what shaped the file (method, op types,
    calibration sentences, ONNX Runtime version), so changing any of them makes
    a new file instead of reusing a stale one.
    """
    import hashlib

    import onnxruntime  # type: ignore[import-untyped]

    if method not in METHODS:
        raise InvalidInput(
            f"unknown int8 method {method!r}; known: {', '.join(METHODS)}", param="int8_method"
        )
    ops = STATIC_OPS[stage] if method == "static" else DYNAMIC_OPS
    recipe = repr((method, ops, CALIBRATION_SENTENCES if method == "static" else (), onnxruntime.__version__))
    return directory / f"{stage}.int8-{method}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}.onnx"


def calibration_feeds(pack: Any, facts: dict[str, int]) -> list[dict[str, Any]]:
    """Encoder inputs (numpy, batch 1 each) for calibration: real sentences if the pack has a frontend."""
    from voxserve.backends.onnx_export import real_inputs, sample_inputs

    feeds = []
    for sentence in CALIBRATION_SENTENCES:
        one = real_inputs(pack, (sentence,))
        if one is None:
            break
        feeds.append(one)
    if not feeds:  # no frontend: random symbols, speech-like lengths
        feeds = [sample_inputs(facts, batch=1, tokens=n, seed=n) for n in (12, 24, 36, 48, 64, 80)]
    return [{k: v.numpy() for k, v in f.items()} for f in feeds]


def stage_inputs(directory: Path, manifest: dict[str, Any], encoder_feeds: list[dict[str, Any]], stage: str):
    """The inputs ``stage`` sees for each encoder feed, from running the float32 stages before it."""
    import numpy as np

    from voxserve.backends.onnxruntime import make_session

    def run(name: str, feeds: dict[str, Any]) -> dict[str, Any]:
        spec = manifest["stages"][name]
        out = sessions[name].run(None, {n: feeds[n] for n in spec["inputs"]})
        return dict(zip(spec["outputs"], out, strict=True))

    order = ("encoder", "decoder", "vocoder")
    sessions = {s: make_session(directory / f"{s}.onnx") for s in order[: order.index(stage)]}
    result = []
    for feeds in encoder_feeds:
        current = dict(feeds)
        for name in order[: order.index(stage)]:
            out = run(name, current)
            if name == "encoder":
                out["lengths"] = current["lengths"]
                out["frame_ids"] = np.arange(max(1, int(out["durations"].sum(1).max())), dtype=np.int64)
            else:
                out = {"mel": out["mel"]}
            current = out
        result.append({n: current[n] for n in manifest["stages"][stage]["inputs"]})
    return result


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    # onnxruntime.quantization logs advice and per-tensor notes on the root logger.
    root = logging.getLogger()

    def drop(record: logging.LogRecord) -> bool:
        return not record.pathname.replace(os.sep, "/").count("onnxruntime/quantization")

    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def quantize_stage(
    directory: Path,
    manifest: dict[str, Any],
    stage: str,
    method: str = "static",
    pack: Any = None,
) -> Path:
    """Make the int8 file of ``stage`` (see :func:`int8_path`) once; later calls return it.

    ``pack`` supplies calibration sentences for ``static`` (see :func:`calibration_feeds`).
    """
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    target = int8_path(directory, stage, method)
    if target.is_file():
        return target
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=directory)
    os.close(fd)
    source = directory / f"{stage}.onnx"
    try:
        with _quiet_quantizer():
            if method == "dynamic":
                quantize_dynamic(
                    source,
                    tmp,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(DYNAMIC_OPS),
                    per_channel=True,
                    extra_options={"MatMulConstBOnly": True},
                )
            else:
                data = stage_inputs(directory, manifest, calibration_feeds(pack, manifest["facts"]), stage)

                class Reader(CalibrationDataReader):
                    def __init__(self) -> None:
                        self.items = iter(data)

                    def get_next(self) -> dict[str, Any] | None:
                        return next(self.items, None)

                quantize_static(
                    source,
                    tmp,
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(STATIC_OPS[stage]),
                    per_channel=True,
                    activation_type=QuantType.QUInt8,  # u8 activations × s8 weights: the VNNI kernels
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
