"""The on-disk model pack: ``config.json`` + safetensors weights + frontend assets.

A pack is a directory. Its ``config.json`` holds every fact about the voice that
code needs (sample rate, hop, mel settings, symbol table, speakers, emotions,
prosody presets, and the family and config of each stage). Loading validates it
and names the file and key on error. A pack does not run inference; it builds the
stage modules with their weights and hands them to a backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxserve.errors import PackError

FORMAT_VERSION = 1
SPEAKER_INPUTS = ("none", "table", "embedding")
"""Values of ``PackConfig.speaker_input``."""


@dataclass(frozen=True)
class StageSpec:
    """One model stage of a pack (acoustic model or vocoder)."""

    family: str
    """Model family name, a key of ``voxserve.models.registry.FAMILIES``."""
    config: dict[str, Any]
    """The family's load-time config, as a dict for its ``Config.from_dict``."""
    weights: str
    """Safetensors file name, relative to the pack directory."""


@dataclass(frozen=True)
class PackConfig:
    """The validated contents of a pack's config.json."""

    name: str
    """Pack name, the voice id users pass (e.g. ``baker``)."""
    format_version: int
    """Pack format version; this code reads version 1."""
    language: str
    """BCP-47-ish language tag of the voice, e.g. ``zh``."""
    sample_rate: int
    """Output sample rate in Hz."""
    hop_length: int
    """Samples per mel frame."""
    mel: dict[str, Any]
    """Mel settings the models were trained with (n_mels, fft size, fmin, fmax…)."""
    symbols: tuple[str, ...]
    """Symbol table: position = model input id."""
    frontend: str
    """Name of the frontend/symbol set that produces ``symbols`` (e.g. ``mandarin-baker``)."""
    speakers: tuple[str, ...]
    """Speaker names; row i of the speaker table (a single-speaker pack lists one)."""
    emotions: tuple[str, ...]
    """Emotion labels the acoustic model learned; empty when emotion comes from prosody presets."""
    prosody_presets: dict[str, dict[str, float]]
    """Emotion label → control multipliers (pitch, pitch_range, energy, speed) for packs without learned emotion."""
    acoustic: StageSpec
    """The acoustic model stage."""
    vocoder: StageSpec
    """The vocoder stage."""
    gender: str | None = None
    """Speaker gender where known (``female``/``male``), for voice listings."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the weights came from (package, version, file hashes)."""
    speaker_input: str = "none"
    """How the acoustic model takes its speaker: ``none`` (one voice, no input), ``table`` (a row of its
    speaker table, ``speakers`` names the rows) or ``embedding`` (a float vector, e.g. a cloned voice)."""
    speaker_dim: int = 0
    """Width of the speaker embedding an ``embedding`` pack takes (channels); 0 otherwise."""
    default_speaker: str | None = None
    """The speaker a request for the pack's own name gets (a ``table`` pack); None: the first."""
    style: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    """How the acoustic model gets its style vector: ``{"kind": ...}`` plus that kind's settings. Kinds:
    ``none`` (no style input; emotions act through ``prosody_presets``), ``emotivoice-prompt`` (a prompt
    text and the sentence through the pack's BERT style encoder, ``encoder`` says where its files are),
    ``emotion-table`` (a one-hot or soft vector over ``emotions``). See ``voxserve.engine.conditioning``."""

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["symbols"], d["speakers"], d["emotions"] = (
            list(self.symbols),
            list(self.speakers),
            list(self.emotions),
        )
        d["acoustic"], d["vocoder"] = vars(self.acoustic).copy(), vars(self.vocoder).copy()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config.json") -> PackConfig:
        """Validate a parsed config.json; errors name ``where`` and the bad key."""

        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if key not in d:
                raise PackError(f"{where}: missing key {key!r}")
            if not isinstance(d[key], kind):
                raise PackError(f"{where}: key {key!r} must be {getattr(kind, '__name__', kind)}")
            return d[key]

        def stage(key: str) -> StageSpec:
            s = need(key, dict)
            for k in ("family", "config", "weights"):
                if k not in s:
                    raise PackError(f"{where}: missing key {key}.{k}")
            return StageSpec(str(s["family"]), dict(s["config"]), str(s["weights"]))

        speakers = tuple(need("speakers", list))
        speaker_input = d.get("speaker_input", "table" if len(speakers) > 1 else "none")
        if speaker_input not in SPEAKER_INPUTS:
            raise PackError(f"{where}: key 'speaker_input' must be one of {', '.join(SPEAKER_INPUTS)}")
        speaker_dim = d.get("speaker_dim", 0)
        if isinstance(speaker_dim, bool) or not isinstance(speaker_dim, int) or speaker_dim < 0:
            raise PackError(f"{where}: key 'speaker_dim' must be a non-negative integer")
        if speaker_input == "embedding" and not speaker_dim:
            raise PackError(
                f"{where}: key 'speaker_dim' must be positive when 'speaker_input' is 'embedding'"
            )
        default_speaker = d.get("default_speaker")
        if default_speaker is not None and default_speaker not in speakers:
            raise PackError(f"{where}: key 'default_speaker' {default_speaker!r} is not in 'speakers'")
        style = d.get("style")
        style = dict(style) if isinstance(style, dict) else style
        if style is None:
            # Packs converted before the ``style`` key: the style encoder entry says it is EmotiVoice's.
            style = (
                {"kind": "emotivoice-prompt", "encoder": d["style_encoder"]} if "style_encoder" in d else {}
            )
        if not isinstance(style, dict) or not isinstance(style.setdefault("kind", "none"), str):
            raise PackError(f"{where}: key 'style' must be an object with a string 'kind'")

        version = need("format_version", int)
        if version != FORMAT_VERSION:
            raise PackError(f"{where}: format_version {version} is not supported (this voxserve reads 1)")
        for key in ("sample_rate", "hop_length"):
            if need(key, int) <= 0:
                raise PackError(f"{where}: key {key!r} must be positive")
        symbols = tuple(need("symbols", list))
        if len(set(symbols)) != len(symbols):
            raise PackError(f"{where}: key 'symbols' has duplicates")
        return cls(
            name=need("name", str),
            format_version=version,
            language=need("language", str),
            sample_rate=d["sample_rate"],
            hop_length=d["hop_length"],
            mel=need("mel", dict),
            symbols=symbols,
            frontend=need("frontend", str),
            speakers=speakers,
            emotions=tuple(d.get("emotions", [])),
            prosody_presets={k: dict(v) for k, v in d.get("prosody_presets", {}).items()},
            acoustic=stage("acoustic"),
            vocoder=stage("vocoder"),
            gender=d.get("gender"),
            source=dict(d.get("source", {})),
            speaker_input=speaker_input,
            speaker_dim=speaker_dim,
            default_speaker=default_speaker,
            style=dict(style),
        )


class Pack:
    """A pack directory with its validated config."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        cfg_path = self.path / "config.json"
        if not cfg_path.is_file():
            raise PackError(f"{self.path}: not a voxserve pack (no config.json)")
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PackError(f"{cfg_path}: unreadable ({e})") from e
        if not isinstance(raw, dict):
            raise PackError(f"{cfg_path}: top level must be an object")
        self.config = PackConfig.from_dict(raw, where=str(cfg_path))

    @property
    def name(self) -> str:
        return self.config.name

    def build_stage(self, which: str) -> Any:
        """Build the ``acoustic`` or ``vocoder`` module with its weights (strict), in eval mode, on CPU.

        A family whose one module holds several stages (EmotiVoice's joint model: ``am`` and
        ``generator``, saved as one checkpoint) names them in its ``PARTS``; the whole module
        is loaded strictly and the stage's part returned. Each call builds fresh modules.
        """
        from safetensors.torch import load_file

        from voxserve.models.registry import family

        spec: StageSpec = getattr(self.config, which)
        fam = family(spec.family)
        model = fam.Model(fam.Config.from_dict(spec.config))
        weights = self.path / spec.weights
        if not weights.is_file():
            raise PackError(f"{self.path}: missing weights file {spec.weights}")
        try:
            model.load_state_dict(load_file(str(weights)), strict=True)
        except RuntimeError as e:
            raise PackError(f"{weights}: does not match family {spec.family!r}: {e}") from e
        part = getattr(fam, "PARTS", {}).get(which)
        return (getattr(model, part) if part else model).eval()

    def speaker_row(self, name: str | None = None) -> int:
        """Row of speaker ``name`` in the speaker table (None: the default speaker); NotFound if absent."""
        from voxserve.errors import NotFound

        rows = self._rows()
        name = name if name is not None else (self.config.default_speaker or self.config.speakers[0])
        if name not in rows:
            shown = ", ".join(self.config.speakers[:10]) + (" ..." if len(rows) > 10 else "")
            raise NotFound(f"voice {self.name!r} has no speaker {name!r}; speakers: {shown}", param="voice")
        return rows[name]

    def _rows(self) -> dict[str, int]:
        rows = getattr(self, "_speaker_rows", None)
        if rows is None:
            rows = self._speaker_rows = {s: i for i, s in enumerate(self.config.speakers)}
        return rows


def write_pack(out_dir: Path, config: PackConfig, weights: dict[str, dict[str, Any]]) -> Path:
    """Write a pack atomically: build it in a sibling temp dir, then rename into place.

    ``weights`` maps each stage's weights file name to its state dict.
    """
    import os
    import shutil
    import tempfile

    from safetensors.torch import save_file

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for filename, state in weights.items():
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / filename))
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), ensure_ascii=False, indent=1), "utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
