"""Export a voice's stages to ONNX once, cache them beside the pack, and check them against PyTorch.

Files (one directory per weights hash, ``<pack>/onnx/<key>/``)::

    encoder.onnx decoder.onnx vocoder.onnx   float32, dynamic batch/token/frame axes, opset 18
    manifest.json                            stage inputs/outputs, facts, verification figures
    <stage>.profile.json, trtexec.sh         TensorRT shape profiles and build commands (trt.py)
    <stage>.int8-<method>-<recipe>.onnx      made on demand by onnx_int8.py

The key hashes the weights, the stage configs, :data:`EXPORTER_VERSION` and the
torch version, so a changed model or exporter exports again and an unchanged one
never does. A pack directory that cannot be written (or a pack with no
directory) caches under ``$VOXSERVE_HOME/onnx/<pack>/`` instead. The split is
documented in :mod:`voxserve.backends.onnx_stages`. This module runs ONNX
Runtime only to verify what it wrote; ``onnxruntime.py`` serves. It imports
nothing heavy at module level (the CLI reads its arguments for ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxserve.errors import InvalidInput, NotFound, PackError

if TYPE_CHECKING:
    import torch

    from voxserve.backends.onnx_stages import StageSet

logger = logging.getLogger(__name__)

EXPORTER_VERSION = 3
"""Bump when the stage split or graph contents change: it is part of the cache key (3: polyphase upsampling)."""
OPSET = 18
"""ONNX opset: the lowest the torch exporter writes; TensorRT 10 reads 9 to 20."""
MANIFEST = "manifest.json"
STAGE_NAMES = ("encoder", "decoder", "vocoder")


def weights_key(stages: StageSet) -> str:
    """16 hex digits naming this exporter + these weights and configs."""
    import torch

    h = hashlib.sha256(f"voxserve-onnx {EXPORTER_VERSION} opset {OPSET} torch {torch.__version__}".encode())
    h.update(json.dumps([stages.family, stages.facts], sort_keys=True).encode())
    for name in ("encoder", "vocoder"):  # the decoder shares the encoder's acoustic model
        module = stages.modules[name]
        config = getattr(module, "config", getattr(getattr(module, "m", None), "config", None))
        h.update(f"{name} {type(module).__name__} {config!r}".encode())
        for key, t in sorted(module.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{key} {t.dtype} {tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def cache_root(pack: Any, cache_dir: str | Path | None = None) -> Path:
    """Where a pack's exports live: ``cache_dir``, else ``<pack>/onnx``, else under voxserve's home."""
    if cache_dir is not None:
        return Path(cache_dir)
    path = Path(str(pack.path))
    if path.is_dir() and os.access(path, os.W_OK):
        return path / "onnx"
    from voxserve.packs.store import home

    return home() / "onnx" / str(pack.name)


def sample_inputs(facts: Mapping[str, int], batch: int, tokens: int, seed: int) -> dict[str, torch.Tensor]:
    """Random encoder inputs: ids in range, varied lengths (the first is ``tokens``), item 0 neutral."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, tokens // 3), tokens + 1, (batch,), generator=g)
    lengths[0] = tokens
    ids = torch.randint(1, facts["vocab"], (batch, tokens), generator=g)
    ids = ids * (torch.arange(tokens) < lengths[:, None])
    controls = torch.ones(batch, 4)
    controls[1:] = 0.8 + 0.4 * torch.rand(batch - 1, 4, generator=g)
    feeds = {"ids": ids, "lengths": lengths, "controls": controls}
    if facts.get("speaker_dim"):  # the clone family: unit d-vectors and emotion weights summing to 1
        speaker = torch.randn(batch, facts["speaker_dim"], generator=g)
        feeds["speaker"] = speaker / speaker.norm(dim=1, keepdim=True)
        feeds["style"] = torch.softmax(2 * torch.randn(batch, facts["style_dim"], generator=g), dim=1)
    elif facts["style_dim"]:
        feeds["speaker"] = torch.randint(0, facts["n_speakers"], (batch,), generator=g)
        feeds["style"] = torch.tanh(torch.randn(batch, facts["style_dim"], generator=g))  # BERT pooler range
    return feeds


def _mish(x: Any) -> Any:
    """Mish as ``x·n/(n+2)``, ``n = eᵗ(eᵗ+2)``, ``t = min(x, 20)``: equal to ``x·tanh(softplus(x))``.

    ONNX Runtime runs the ``Mish`` op through a slow Softplus; this form is exact
    to float rounding (past 20 the ratio is 1.0 in float32) and cuts the FastSpeech2
    decoder's time by about a tenth. TensorRT fuses it as plain pointwise math.
    """
    from onnxscript import opset18 as op

    two = op.CastLike(op.Constant(value_float=2.0), x)  # type: ignore[type-var]
    e = op.Exp(op.Min(x, op.CastLike(op.Constant(value_float=20.0), x)))  # type: ignore[type-var]
    n = op.Mul(e, op.Add(e, two))
    return op.Mul(x, op.Div(n, op.Add(n, two)))


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes that say nothing about our graphs (renamed axes, optional torchvision ops)."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")

    def drop(record: logging.LogRecord) -> bool:
        return "torchvision" not in record.getMessage()

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        registry.addFilter(drop)
        try:
            yield
        finally:
            registry.removeFilter(drop)


def _export_one(stages: StageSet, name: str, args: tuple[torch.Tensor, ...], path: Path) -> None:
    import torch
    from torch.export import Dim

    f = stages.facts
    batch = Dim("batch", min=1, max=4096)
    tokens = Dim("tokens", min=1, max=f["max_frames"])
    frames = Dim("frames", min=1, max=f["max_frames"])
    axes = {
        "ids": {0: batch, 1: tokens},
        "lengths": {0: batch},
        "controls": {0: batch},
        "speaker": {0: batch},
        "style": {0: batch},
        "states": {0: batch, 1: tokens},
        "durations": {0: batch, 1: tokens},
        "frame_ids": {0: frames},
        "mel": {0: batch, 1: Dim("frames", min=f["min_frames"], max=f["max_frames"])},
    }
    names = stages.inputs[name]
    with torch.inference_mode(False), torch.no_grad(), _quiet_exporter():
        torch.onnx.export(
            stages.modules[name].eval(),
            args,
            str(path),
            input_names=list(names),
            output_names=list(stages.outputs[name]),
            dynamic_shapes={n: axes[n] for n in names},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
            custom_translation_table={torch.ops.aten.mish.default: _mish},
        )


def export_stages(stages: StageSet, out_dir: Path, *, verify: bool = True) -> dict[str, Any]:
    """Write the three stage files, TensorRT profiles and a manifest into ``out_dir``; returns the manifest.

    Traces with batch 2 so that no axis is specialized to 1.
    """
    import torch

    from voxserve.backends import trt

    out_dir.mkdir(parents=True, exist_ok=True)
    feeds = sample_inputs(stages.facts, batch=2, tokens=12, seed=0)
    enc_args = tuple(feeds[n] for n in stages.inputs["encoder"])
    with torch.no_grad():
        states, durations, _, _ = stages.modules["encoder"](*enc_args)
    dec_feeds = {"states": states, "durations": durations, "lengths": feeds["lengths"]}
    dec_feeds["frame_ids"] = torch.arange(max(2, int(durations.sum(1).max())))
    dec_args = tuple(dec_feeds[n] for n in stages.inputs["decoder"])
    mel = torch.randn(2, max(16, stages.facts["min_frames"]) + 3, stages.facts["n_mels"])
    for name, args in (("encoder", enc_args), ("decoder", dec_args), ("vocoder", (mel,))):
        _export_one(stages, name, args, out_dir / f"{name}.onnx")
    manifest: dict[str, Any] = {
        "exporter_version": EXPORTER_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "family": stages.family,
        "facts": stages.facts,
        "stages": {
            s: {"file": f"{s}.onnx", "inputs": list(stages.inputs[s]), "outputs": list(stages.outputs[s])}
            for s in STAGE_NAMES
        },
    }
    if verify:
        manifest["verification"] = {"random": verify_stages(stages, out_dir)}
    trt.write_profiles(out_dir, manifest)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def ensure_exported(
    pack: Any, cache_dir: str | Path | None = None, stages: StageSet | None = None
) -> tuple[Path, dict[str, Any]]:
    """The directory holding ``pack``'s exported stages and its manifest, exporting first if needed.

    ``stages`` saves building the pack's modules again when the caller has them.
    Exports into a temporary sibling and renames it into place, so concurrent
    processes never read a half-written directory (the first rename wins).
    """
    from voxserve.backends.onnx_stages import stage_set

    if stages is None:
        stages = stage_set(pack.build_stage("acoustic"), pack.build_stage("vocoder"))
    root = cache_root(pack, cache_dir)
    final = root / weights_key(stages)
    if (final / MANIFEST).is_file():
        return final, read_manifest(final)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        logger.info("exporting %s to ONNX in %s", pack.name, final)
        export_stages(stages, tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first; keep its files
            if not (final / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, read_manifest(final)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of an export directory; PackError if unreadable or from another exporter version."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise PackError(f"{path}: unreadable ONNX manifest ({e})") from e
    if manifest.get("exporter_version") != EXPORTER_VERSION or set(manifest.get("stages", {})) != set(
        STAGE_NAMES
    ):
        raise PackError(f"{path}: written by another exporter version; delete {directory} to export again")
    return manifest


def corr(a: Any, b: Any) -> float:
    """Pearson correlation of two arrays or tensors, flattened (1.0 for two equal constants)."""
    import numpy as np

    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x @ x) * (y @ y)))
    return 1.0 if denom == 0 else float(x @ y) / denom


def verify_stages(
    stages: StageSet,
    directory: Path,
    feeds: dict[str, torch.Tensor] | None = None,
    files: Mapping[str, Path] | None = None,
    vocoder: bool = True,
) -> dict[str, float]:
    """Run each stage file in ONNX Runtime against PyTorch; returns the figures.

    Each stage is checked on the reference's own inputs, so one stage's error does
    not hide another's: the encoder against the model's durations and pitch, the
    decoder fed the PyTorch encoder stage's outputs against the model's mel, the
    vocoder fed that mel against the PyTorch vocoder. ``feeds`` (encoder inputs, as
    :func:`sample_inputs` makes) default to a random padded batch of 3; ``files``
    replaces stage files (e.g. int8 ones) by stage name. ``vocoder=False`` skips
    the vocoder (its figures are then absent).
    """
    import numpy as np
    import torch

    from voxserve.backends.onnxruntime import make_session
    from voxserve.models.interface import Controls

    feeds = feeds if feeds is not None else sample_inputs(stages.facts, batch=3, tokens=23, seed=1)
    acoustic: Any = stages.modules["decoder"].m
    enc_args = [feeds[n] for n in stages.inputs["encoder"]]
    controls = Controls(*feeds["controls"].unbind(1))
    with torch.inference_mode():
        ref = acoustic(feeds["ids"], feeds["lengths"], controls, feeds.get("speaker"), feeds.get("style"))
        states = stages.modules["encoder"](*enc_args)[0]
    paths = {s: directory / f"{s}.onnx" for s in STAGE_NAMES} | dict(files or {})
    sess = {s: make_session(paths[s]) for s in STAGE_NAMES if vocoder or s != "vocoder"}
    out = sess["encoder"].run(
        None, {n: t.numpy() for n, t in zip(stages.inputs["encoder"], enc_args, strict=True)}
    )
    enc = dict(zip(stages.outputs["encoder"], out, strict=True))
    dec_in = {
        "states": states.numpy(),
        "durations": ref.durations.numpy(),
        "lengths": feeds["lengths"].numpy(),
        "frame_ids": np.arange(ref.mel.shape[1], dtype=np.int64),
    }
    mel, mel_lengths = sess["decoder"].run(None, {n: dec_in[n] for n in stages.inputs["decoder"]})
    figures = {
        "durations_equal": float((enc["durations"] == ref.durations.numpy()).mean()),
        "pitch_max_abs": float(np.abs(enc["pitch"] - ref.pitch.numpy()).max()),
        "states_max_abs": float(np.abs(enc["states"] - states.numpy()).max()),
        "mel_corr": corr(mel, ref.mel),
        "mel_max_abs": float(np.abs(mel - ref.mel.numpy()).max()),
        "mel_lengths_equal": float((mel_lengths == ref.mel_lengths.numpy()).mean()),
    }
    if vocoder:
        with torch.inference_mode():
            wav = stages.modules["vocoder"](ref.mel)
        (ort_wav,) = sess["vocoder"].run(None, {"mel": ref.mel.numpy()})
        figures["wav_corr"] = corr(ort_wav, wav)
        figures["wav_max_abs"] = float(np.abs(ort_wav - wav.numpy()).max())
    return figures


def real_inputs(pack: Any, sentences: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    """Encoder inputs for real sentences through the pack's frontend (neutral controls); None without one."""
    import torch

    from voxserve.engine.voice import frontend_for

    try:
        frontend = frontend_for(pack)
    except (PackError, AttributeError):
        return None
    table = {s: i for i, s in enumerate(pack.config.symbols)}
    phones = [frontend.phonemize(t) for t in sentences]
    seqs = [[table[s] for s in p.symbols] for p in phones]
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
    feeds = {"ids": ids, "lengths": lengths, "controls": torch.ones(len(seqs), 4)}
    return feeds | _conditioning(pack, [p.text for p in phones])


def _conditioning(pack: Any, texts: list[str]) -> dict[str, torch.Tensor]:
    """Speaker and style inputs for ``texts`` as the engine makes them (default speaker, neutral style)."""
    from voxserve.engine.batch import conditioning_tensors
    from voxserve.engine.conditioning import speaker_value, style_source
    from voxserve.engine.controls import SynthesisParams
    from voxserve.engine.speakers import Speaker

    source = style_source(pack)
    default = speaker_value(pack, Speaker(pack.name))
    speaker, style = conditioning_tensors(
        [default] * len(texts), [source.vector(SynthesisParams(), t) for t in texts]
    )
    return {k: v for k, v in (("speaker", speaker), ("style", style)) if v is not None}


# --- command line: ``voxserve export onnx`` --------------------------------------------------------

CHECK_SENTENCES = (
    "今天天气很好，我们去公园散步吧。",
    "请在二零二五年三月十五日之前提交报告。",
    "他说：这件事情，我们明天再讨论。",
)
"""Sentences for the real-input check of packs with a text frontend."""


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``voxserve export onnx``."""
    parser.add_argument(
        "voice", help="pack name (baker, an installed pack) or a preset (emotivoice-small, emotivoice-size)"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="cache root: files go to OUT/<weights key>/ (default: the pack's onnx/ directory, "
        "which the onnxruntime backend reads; pass OUT as its cache_dir otherwise)",
    )
    parser.add_argument("--int8", action="store_true", help="also write and check an int8 decoder")
    parser.add_argument(
        "--int8-method", default="static", choices=("static", "dynamic"), help="see onnx_int8.py"
    )


def _resolve(voice: str) -> Any:
    from voxserve.packs import store

    if voice in store.available():
        return store.load(voice)
    from voxserve.bench.presets import PRESETS, load_workload

    if voice in PRESETS:
        return load_workload(voice, quick=True).pack
    raise NotFound(
        f"unknown voice {voice!r}; available: {', '.join([*store.available(), *PRESETS])}", param="voice"
    )


def main(args: argparse.Namespace) -> None:
    """Export (or find the cached export of) ``args.voice``; print the files and verification figures."""
    from voxserve.backends.onnx_int8 import quantize_stage
    from voxserve.backends.onnx_stages import stage_set

    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise InvalidInput(f"--out {args.out!r} is not a directory", param="out")
    pack = _resolve(args.voice)
    stages = stage_set(pack.build_stage("acoustic"), pack.build_stage("vocoder"))
    directory, manifest = ensure_exported(pack, args.out, stages)
    checks = {"random": manifest["verification"]["random"]}
    feeds = real_inputs(pack, CHECK_SENTENCES)
    if feeds is not None:
        checks["real"] = verify_stages(stages, directory, feeds)
    if args.int8:
        files = {"decoder": quantize_stage(directory, manifest, "decoder", args.int8_method, pack)}
        checks["int8 random"] = verify_stages(stages, directory, files=files, vocoder=False)
        if feeds is not None:
            checks["int8 real"] = verify_stages(stages, directory, feeds, files=files, vocoder=False)
    print(f"{pack.name}: ONNX stages in {directory}")
    for path in sorted(directory.iterdir()):
        if path.is_file():
            print(f"  {path.name:28s} {path.stat().st_size / 1e6:9.2f} MB")
    for name, figures in checks.items():
        print(f"verification ({name}): " + ", ".join(f"{k} {v:.6g}" for k, v in figures.items()))
