"""Write a random-weight EmotiVoice release in the official layout, for tests and benchmarks.

The real weights come from a model hub this project cannot reach; this writer
produces the same files with the same keys, shapes and containers (random
values), so the converter, loaders and timings can be exercised end to end.
Symbol and speaker names are placeholders; emotion and prompt lists are the
release's. Durations are biased to about 5 frames per symbol (the release speaks
at roughly that rate), so mel lengths and timings are realistic.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from voxserve.models.emotivoice import Config, Model
from voxserve.packs.emotivoice import release as rl

EMOTIONS = ("普通", "生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧")
PITCH_PROMPTS = ("音调普通", "音调很高", "音调很低")
ENERGY_PROMPTS = ("音量普通", "音量很高", "音量很低")
SPEED_PROMPTS = ("语速普通", "语速很快", "语速很慢")

SMALL_CONFIG = Config(
    n_vocab=502,  # the real tokenlist, so the frontend's output fits
    n_speakers=6,
    hidden=32,
    encoder_layers=2,
    encoder_heads=2,
    decoder_layers=2,
    decoder_heads=2,
    variance_hidden=32,
    bert_dim=32,
    upsample_initial_channel=32,
)
"""A tiny model with the release's structure (same hop, mels, kernels; fewer and narrower layers)."""

FRAMES_PER_SYMBOL = 5
"""Typical frames per symbol the duration predictor is biased to (frames)."""

_BASE_SYMBOLS = (
    "_",
    "<sos/eos>",
    "sp0",
    "sp1",
    "sp2",
    "sp3",
    "sp4",
    "engsp1",
    "engsp2",
    "engsp4",
    ".",
    "?",
    "!",
)


def placeholder_symbols(n: int) -> tuple[str, ...]:
    """``n`` symbol names: the real release inventory when ``n`` is its size (so the frontend's output
    fits), else the release's first and silence symbols, then ``sym{i}``."""
    from voxserve.frontend.symbols.emotivoice import tokens

    real = tokens()
    if n == len(real):
        return real
    names = list(_BASE_SYMBOLS[:n])
    names += [f"sym{i}" for i in range(len(names), n)]
    return tuple(names)


def write_random_release(
    root: str | Path,
    config: Config | None = None,
    small: bool = False,
    seed: int = 0,
    *,
    legacy_weight_norm: bool = False,
) -> Path:
    """Write a release directory under ``root`` and return ``root``.

    ``config`` defaults to the release (39 M acoustic + 14 M vocoder parameters,
    BERT-base style encoder) or, with ``small``, to :data:`SMALL_CONFIG` and a
    two-layer BERT. ``legacy_weight_norm`` writes vocoder keys as
    ``weight_g``/``weight_v`` (older PyTorch) instead of ``parametrizations.*``.
    The same arguments always write the same tensors.
    """
    root = Path(root)
    config = config or (SMALL_CONFIG if small else Config())
    # Seeded, without disturbing the caller's random state.
    with torch.random.fork_rng():
        return _write(root, config, small, seed, legacy_weight_norm)


def write_random_pack(
    out_dir: str | Path, small: bool = True, seed: int = 0, name: str | None = None
) -> Path:
    """A random release (see :func:`write_random_release`) converted into a pack at ``out_dir``.

    The release is written to a temporary directory and removed; ``name`` defaults to the
    directory's name. For tests and demos that need an installed EmotiVoice pack.
    """
    import tempfile

    from voxserve.packs.emotivoice.convert import convert_emotivoice

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="emotivoice-release-") as release:
        write_random_release(release, small=small, seed=seed)
        return convert_emotivoice(release, out_dir, name=name or out_dir.name)


def _write(root: Path, config: Config, small: bool, seed: int, legacy_weight_norm: bool) -> Path:

    text = root / rl.TEXT_DIR
    text.mkdir(parents=True, exist_ok=True)
    lists = {
        "tokenlist": placeholder_symbols(config.n_vocab),
        "speaker2": tuple(str(1000 + i) for i in range(config.n_speakers)),
        "emotion": EMOTIONS,
        "pitch": PITCH_PROMPTS,
        "energy": ENERGY_PROMPTS,
        "speed": SPEED_PROMPTS,
    }
    for name, rows in lists.items():
        (text / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    _write_yaml(root / rl.YAML, config)

    model = random_model(config, seed)
    state = model.state_dict()
    if legacy_weight_norm:
        state = _to_legacy(state)
    (root / rl.GENERATOR_DIR).mkdir(parents=True, exist_ok=True)
    torch.save({"generator": state}, root / rl.GENERATOR_DIR / rl.GENERATOR_NAME)

    _write_style(root, config, small, lists)
    return root


def random_model(config: Config, seed: int = 0) -> Model:
    """A randomly initialized model (eval mode) whose durations average about 5 frames per symbol.

    Seeds PyTorch's global generator with ``seed`` (wrap in ``torch.random.fork_rng`` to keep yours).
    """
    torch.manual_seed(seed)
    model = Model(config)
    with torch.no_grad():
        # exp(b) - 1 = FRAMES_PER_SYMBOL; the shrunk weights leave a spread of about 3 to 8 frames.
        dp = model.am.duration_predictor.linear
        dp.weight.mul_(0.5)
        dp.bias.fill_(math.log(FRAMES_PER_SYMBOL + config.duration_offset))
    return model.eval()


def _to_legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        out[key] = value
    return out


def _write_yaml(path: Path, c: Config) -> None:
    import yaml  # type: ignore[import-untyped]  # PyYAML, installed with transformers

    model: dict[str, Any] = {yaml_key: getattr(c, field) for yaml_key, field in rl.YAML_MODEL_KEYS.items()}
    model.update(
        decoder_n_hidden=c.hidden, speaker_embed_dim=c.hidden, resblock="1", initial_channel=c.n_mels
    )
    # Recorded as the release writes them; the network never reads them.
    model.update(encoder_kernel_size_depthwise=7, decoder_kernel_size_depthwise=31)
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()}
    model["resblock_dilation_sizes"] = [list(d) for d in c.resblock_dilation_sizes]
    doc: dict[str, Any] = {yaml_key: getattr(c, field) for yaml_key, field in rl.YAML_TOP_KEYS.items()}
    doc["model"] = model
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _bert_vocab(size: int) -> list[str]:
    # BERT special tokens, the emotion/prompt characters (so prompts tokenize to real ids), then CJK and filler.
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = dict.fromkeys("".join(EMOTIONS + PITCH_PROMPTS + ENERGY_PROMPTS + SPEED_PROMPTS) + "，。！？,.!?")
    chars.update(dict.fromkeys("abcdefghijklmnopqrstuvwxyz0123456789"))
    vocab += list(chars)
    cp = 0x4E00
    while len(vocab) < size:
        ch = chr(cp)
        if ch not in chars:
            vocab.append(ch)
        cp += 1
    return vocab[:size]


def _write_style(root: Path, config: Config, small: bool, lists: dict[str, tuple[str, ...]]) -> None:
    from transformers import BertConfig

    from voxserve.models.emotivoice.style import StyleEncoder, StyleHeads

    if small:
        bert_config = BertConfig(
            vocab_size=200,
            hidden_size=config.bert_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * config.bert_dim,
            max_position_embeddings=512,
        )
    else:  # SimBERT-base-chinese's shape
        bert_config = BertConfig(
            vocab_size=13685,
            hidden_size=config.bert_dim,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=4 * config.bert_dim,
            max_position_embeddings=512,
        )
    heads = StyleHeads(
        pitch=len(lists["pitch"]),
        speed=len(lists["speed"]),
        energy=len(lists["energy"]),
        emotion=len(lists["emotion"]),
    )
    encoder = StyleEncoder(bert_config, heads)
    bert_dir = root / rl.BERT_DIR
    bert_dir.mkdir(parents=True, exist_ok=True)
    encoder.bert.save_pretrained(str(bert_dir))
    (bert_dir / "vocab.txt").write_text(
        "\n".join(_bert_vocab(bert_config.vocab_size)) + "\n", encoding="utf-8"
    )

    # The release was fine-tuned after SimBERT, so its BERT differs from the directory's: perturb it.
    state = {
        k: (v + 0.01 * torch.randn_like(v) if k.startswith("bert.") else v)
        for k, v in encoder.state_dict().items()
    }
    saved = {"module." + k: v for k, v in state.items()}
    # transformers 4.26 (the release's) stored this constant buffer; keep the file faithful.
    saved["module.bert.embeddings.position_ids"] = torch.arange(bert_config.max_position_embeddings)[None, :]
    (root / rl.STYLE_DIR).mkdir(parents=True, exist_ok=True)
    torch.save({"model": saved, "iteration": 163431}, root / rl.STYLE_DIR / rl.STYLE_NAME)
