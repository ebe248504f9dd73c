"""GPU check of the CUDA backend: latency, throughput, memory, parity, a profile and a torch.compile trial.

Run on the GPU machine, one section per process so each can be time-boxed::

    python scripts/gpu_check_cuda.py bench   --out $OUT   # baker + EmotiVoice: eager fp32 vs CudaBackend variants
    python scripts/gpu_check_cuda.py final   --out $OUT   # eager fp32 vs fp16 graphs, with and without compile_vocoder
    python scripts/gpu_check_cuda.py profile --out $OUT   # kernel time breakdown at batch 1
    python scripts/gpu_check_cuda.py compile --out $OUT   # vocoder graph replay: eager vs torch.compile

``--dry`` runs the plumbing on the CPU with few repeats (no numbers worth reading).
Each section writes ``<section>.json`` under ``--out`` as it goes and prints a table last.
Batch-1 end-to-end is ``acoustic`` + ``vocoder`` through the Backend seam (CPU
tensors in and out), wall clock, median of many after warm-up.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from voxserve.backends.cuda import CudaBackend
from voxserve.models.interface import Controls

RESULTS: dict = {}
OUT = Path(".")
DEV = "cuda"
DRY = False


def save(section: str) -> None:
    (OUT / f"{section}.json").write_text(json.dumps(RESULTS, indent=1, ensure_ascii=False))


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def median_ms(fn, reps: int, warm: int = 3) -> float:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_reset() -> None:
    gc.collect()
    if DEV == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if DEV == "cuda" else None


class Eager:
    """The eager fp32 reference on the device, through the same call shape as a Backend."""

    def __init__(self, acoustic, vocoder) -> None:
        self.am, self.voc = acoustic.to(DEV).eval(), vocoder.to(DEV).eval()

    @torch.inference_mode()
    def acoustic(self, ids, lengths, controls, speaker=None, style=None):
        from voxserve.models.interface import AcousticOutput

        out = self.am(
            ids.to(DEV),
            lengths.to(DEV),
            Controls(*(c.to(DEV) for c in controls)),
            None if speaker is None else speaker.to(DEV),
            None if style is None else style.to(DEV),
        )
        return AcousticOutput(*(t.cpu() for t in out))

    @torch.inference_mode()
    def vocoder(self, mel):
        return self.voc(mel.to(DEV)).cpu()


def e2e(backend, inputs):
    out = backend.acoustic(*inputs)
    frames = max(int(out.mel_lengths.max()), 1)
    return out, backend.vocoder(out.mel[:, :frames])


def measure(name, backend, one, many, audio_s_many, ref=None, reps=30):
    """Batch-1 latency (+ stage split), batch-N throughput, peak memory, parity vs ``ref`` (out, wav)."""
    r: dict = {}
    r["b1_ms"] = median_ms(lambda: e2e(backend, one), 2 if DRY else reps)
    out = backend.acoustic(*one)
    r["b1_acoustic_ms"] = median_ms(lambda: backend.acoustic(*one), 2 if DRY else reps)
    r["b1_vocoder_ms"] = median_ms(lambda: backend.vocoder(out.mel), 2 if DRY else reps)
    if many is not None:
        t = median_ms(lambda: e2e(backend, many), 1 if DRY else 3, warm=1)
        r["bN_ms"] = t
        r["bN_audio_s_per_s"] = audio_s_many / (t / 1e3)
    r["peak_mib"] = peak_mib()
    if ref is not None:
        o, w = e2e(backend, one)
        r["durations_equal"] = bool(torch.equal(o.durations, ref[0].durations))
        r["mel_corr"] = corr(o.mel, ref[0].mel) if o.mel.shape == ref[0].mel.shape else None
        r["wav_corr"] = corr(w, ref[1]) if w.shape == ref[1].shape else None
        r["mel_max_abs"] = (
            float((o.mel - ref[0].mel).abs().max()) if o.mel.shape == ref[0].mel.shape else None
        )
    if isinstance(backend, CudaBackend):
        r["capture"] = backend.capture_info
    print(name, json.dumps(r), flush=True)
    return r


def cuda_backend(dtype="fp16", **kw):
    if DRY:
        kw.update(graphs=False, batch_buckets=(1, 4))
        return CudaBackend(device="cpu", dtype="fp32", **kw)
    return CudaBackend(dtype=dtype, **kw)


# --- inputs -------------------------------------------------------------------------------------------


def baker_inputs():
    from voxserve.bench.sentences import BENCH_SENTENCES
    from voxserve.frontend.mandarin import MandarinFrontend
    from voxserve.packs import store

    pack = store.load("baker")
    fe = MandarinFrontend("baker")
    table = {s: i for i, s in enumerate(pack.config.symbols)}
    medium = [[table[s] for s in fe.phonemize(t).symbols] for t in BENCH_SENTENCES["medium"]]

    def batch(seqs):
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        return ids, lengths, Controls.neutral(len(seqs))

    n = 4 if DRY else 64
    return pack, batch(medium[:1]), batch([medium[i % 3] for i in range(n)])


def emotivoice_inputs(config, n, tokens=130, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, config.n_vocab, (n, tokens), generator=g)
    lengths = torch.full((n,), tokens)
    speaker = torch.randint(0, config.n_speakers, (n,), generator=g)
    style = torch.randn(n, 2 * config.bert_dim, generator=g)
    return ids, lengths, Controls.neutral(n), speaker, style


TRIM = {"batch_buckets": (1, 64), "token_buckets": (192,), "frame_buckets": (896, 1024)}


def bench() -> None:
    res = RESULTS.setdefault("bench", {})
    if DEV == "cuda":
        res["device"] = torch.cuda.get_device_name()
        res["torch"] = torch.__version__
    parts = (
        lambda: bench_baker(res, default_table=False),
        lambda: bench_emotivoice(res),
        lambda: bench_baker(res, default_table=True),  # last: capturing the full default table takes longest
    )
    for part in parts:
        try:
            part()
        except Exception as e:  # a broken part must not cost the others' numbers
            import traceback

            traceback.print_exc()
            res.setdefault("errors", []).append(f"{type(e).__name__}: {e}")
            save("bench")
    table()


def bench_baker(res: dict, default_table: bool) -> None:
    pack, one, many = baker_inputs()
    hop, sr = pack.config.hop_length, pack.config.sample_rate
    b = res.setdefault("baker", {"tokens": int(one[0].shape[1])})
    eager = Eager(pack.build_stage("acoustic"), pack.build_stage("vocoder"))
    ref = e2e(eager, one)
    b["frames"] = int(ref[0].mel_lengths[0])
    b["audio_s_b1"] = b["frames"] * hop / sr
    out_many = eager.acoustic(*many)
    audio_many = float(out_many.mel_lengths.sum()) * hop / sr
    b["audio_s_bN"] = audio_many
    if not default_table:
        peak_reset()
        b["eager_fp32"] = measure("baker eager fp32", eager, one, many, audio_many)
        save("bench")
    del eager
    variants = [
        ("fp16_graphs_trim", dict(dtype="fp16", **TRIM)),
        ("fp16_graphs_trim_cudnn_bench", dict(dtype="fp16", cudnn_benchmark=True, **TRIM)),
        ("bf16_graphs_trim", dict(dtype="bf16", **TRIM)),
        ("fp16_no_graphs", dict(dtype="fp16", graphs=False, **TRIM)),
    ]
    if default_table:
        variants = [("fp16_graphs_default_table", dict(dtype="fp16"))]
    for name, kw in variants:
        try:
            peak_reset()
            be = cuda_backend(**kw)
            be.load(pack)
            be.warmup()
            use_many = many if name.startswith("fp16_graphs") else None
            b[name] = measure(f"baker {name}", be, one, use_many, audio_many, ref)
        except Exception as e:  # keep going: one variant's failure must not lose the others
            b[name] = {"error": f"{type(e).__name__}: {e}"}
            print("baker", name, "FAILED", e, flush=True)
        be = None
        save("bench")


def bench_emotivoice(res: dict) -> None:
    from voxserve.models.emotivoice import Config
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model

    config = SMALL_CONFIG if DRY else Config()
    model = random_model(config, seed=0).fold_weight_norm()
    one = emotivoice_inputs(config, 1)
    many = emotivoice_inputs(config, 4 if DRY else 64, seed=1)
    ev = res.setdefault("emotivoice", {"tokens": 130})
    eager = Eager(model.am, model.generator)
    ref = e2e(eager, one)
    ev["frames"] = int(ref[0].mel_lengths[0])
    ev["audio_s_b1"] = ev["frames"] * config.hop_length / config.sample_rate
    audio_many = float(eager.acoustic(*many).mel_lengths.sum()) * config.hop_length / config.sample_rate
    ev["audio_s_bN"] = audio_many
    peak_reset()
    ev["eager_fp32"] = measure("emotivoice eager fp32", eager, one, many, audio_many)
    save("bench")
    for name, kw in [
        ("fp16_graphs_trim", dict(dtype="fp16", **TRIM)),
        ("fp16_graphs_trim_cudnn_bench", dict(dtype="fp16", cudnn_benchmark=True, **TRIM)),
        ("bf16_graphs_trim", dict(dtype="bf16", **TRIM)),
        ("fp16_no_graphs", dict(dtype="fp16", graphs=False, **TRIM)),
    ]:
        try:
            peak_reset()
            be = cuda_backend(**kw)
            be.load_models(model.am, model.generator)
            be.warmup()
            use_many = many if name.startswith("fp16_graphs") else None
            ev[name] = measure(f"emotivoice {name}", be, one, use_many, audio_many, ref)
        except Exception as e:
            ev[name] = {"error": f"{type(e).__name__}: {e}"}
            print("emotivoice", name, "FAILED", e, flush=True)
        be = None
        save("bench")


def final() -> None:
    """Shipped configuration (fp16, graphs) vs eager fp32, and the same with ``compile_vocoder``."""
    res = RESULTS.setdefault("bench", {})
    if DEV == "cuda":
        res["device"] = torch.cuda.get_device_name()
    from voxserve.models.emotivoice import Config
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model

    pack, one, many = baker_inputs()
    config = SMALL_CONFIG if DRY else Config()
    ev_model = random_model(config, seed=0).fold_weight_norm()
    cases = {
        "baker": (
            lambda: (pack.build_stage("acoustic"), pack.build_stage("vocoder")),
            one,
            many,
            pack.config.hop_length / pack.config.sample_rate,
        ),
        "emotivoice": (
            lambda: (ev_model.am, ev_model.generator),
            emotivoice_inputs(config, 1),
            emotivoice_inputs(config, 4 if DRY else 64, seed=1),
            config.hop_length / config.sample_rate,
        ),
    }
    for model, (build, one, many, sec_per_frame) in cases.items():
        r = res.setdefault(model, {})
        try:
            eager = Eager(*build())
            ref = e2e(eager, one)
            audio_many = float(eager.acoustic(*many).mel_lengths.sum()) * sec_per_frame
            r["frames_b1"], r["audio_s_bN"] = int(ref[0].mel_lengths[0]), audio_many
            peak_reset()
            r["eager_fp32"] = measure(f"{model} eager fp32", eager, one, many, audio_many)
            del eager
            save("bench")
        except Exception as e:
            r["error"] = f"{type(e).__name__}: {e}"
            print(model, "eager FAILED", e, flush=True)
            continue
        for name, kw in (
            ("fp16_graphs_trim", dict(dtype="fp16", **TRIM)),
            ("fp16_graphs_trim_compile", dict(dtype="fp16", compile_vocoder=not DRY, **TRIM)),
        ):
            try:
                peak_reset()
                be = cuda_backend(**kw)
                t0 = time.perf_counter()
                be.load_models(*build())
                be.warmup()
                warm_s = time.perf_counter() - t0
                r[name] = measure(f"{model} {name}", be, one, many, audio_many, ref)
                r[name]["load_warmup_s"] = warm_s
            except Exception as e:
                r[name] = {"error": f"{type(e).__name__}: {e}"}
                print(model, name, "FAILED", e, flush=True)
            be = None
            save("bench")
    table()


def table() -> None:
    print(
        "\n| model | variant | b1 e2e ms | acoustic ms | vocoder ms | batch-N audio s/s | peak MiB | dur eq | mel corr |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model in ("baker", "emotivoice"):
        for k, r in RESULTS.get("bench", {}).get(model, {}).items():
            if isinstance(r, dict) and "b1_ms" in r:
                print(
                    f"| {model} | {k} | {r['b1_ms']:.2f} | {r['b1_acoustic_ms']:.2f} | {r['b1_vocoder_ms']:.2f} | "
                    f"{r.get('bN_audio_s_per_s', float('nan')):.0f} | {r['peak_mib'] or 0:.0f} | "
                    f"{r.get('durations_equal', '')} | {r.get('mel_corr') or 0:.5f} |"
                )


# --- profile ---------------------------------------------------------------------------------------


def profile() -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    from voxserve.models.emotivoice import Config
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model

    pack, one, _ = baker_inputs()
    config = SMALL_CONFIG if DRY else Config()
    model = random_model(config, seed=0).fold_weight_norm()
    ev_one = emotivoice_inputs(config, 1)
    res = RESULTS.setdefault("profile", {})
    lines = []
    for name, load, inputs in (
        ("baker", lambda be: be.load(pack), one),
        ("emotivoice", lambda be: be.load_models(model.am, model.generator), ev_one),
    ):
        for graphs in (True, False):
            be = cuda_backend("fp16", graphs=graphs, **TRIM) if not DRY else cuda_backend(**TRIM)
            load(be)
            be.warmup()
            for _ in range(5):
                e2e(be, inputs)
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEV == "cuda" else [])
            with prof(activities=acts) as p:
                for _ in range(5):
                    e2e(be, inputs)
            sync()
            events = p.key_averages()
            key = "self_device_time_total"
            try:
                text = events.table(sort_by=key, row_limit=25)
            except Exception:
                key = "self_cpu_time_total"
                text = events.table(sort_by=key, row_limit=25)
            dev_total = sum(getattr(e, "self_device_time_total", 0) for e in events) / 5 / 1e3
            res[f"{name}_graphs{graphs}"] = {"device_ms_per_e2e": dev_total}
            lines += [f"==== {name} fp16 graphs={graphs}: device time per e2e {dev_total:.2f} ms", text]
            be = None
            gc.collect()
    (OUT / "profile.txt").write_text("\n".join(lines))
    print(json.dumps(res, indent=1))
    save("profile")


# --- torch.compile trial on the vocoders -----------------------------------------------------------


def restride_convs(module: torch.nn.Module) -> torch.nn.Module:
    """Store each 1-D conv weight channels-last ([out, k, in] in memory) so cuDNN can skip layout transposes."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            m.weight.data = m.weight.data.permute(0, 2, 1).contiguous().permute(0, 2, 1)
    return module


def compile_trial() -> None:
    from voxserve.backends.cuda_graphs import cuda_capture
    from voxserve.models.emotivoice import Config
    from voxserve.packs.emotivoice.layout import random_model

    pack, _, _ = baker_inputs()
    res = RESULTS.setdefault("compile", {})
    vocs = {
        "mbmelgan": (pack.build_stage("vocoder"), 80),
        "hifigan": (random_model(Config(), seed=0).fold_weight_norm().generator, 80),
    }
    pool = torch.cuda.graph_pool_handle()
    for name, (voc, n_mels) in vocs.items():
        voc = copy.deepcopy(voc).to(DEV, torch.float16).eval()
        x = torch.randn(1, 896, n_mels, device=DEV, dtype=torch.float16)
        r = res.setdefault(name, {})
        for variant in ("eager", "eager_cl", "compile_default"):
            try:
                if variant == "eager":
                    fn = voc
                elif variant == "eager_cl":
                    fn = restride_convs(copy.deepcopy(voc))
                elif variant == "compile_default":
                    fn = torch.compile(voc, dynamic=False)
                else:
                    fn = torch.compile(voc, mode="max-autotune-no-cudagraphs", dynamic=False)
                out = torch.empty(1, 896 * voc.hop_length, device=DEV)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    fn(x)
                    replay = cuda_capture(torch.device(DEV), pool)(
                        lambda fn=fn, out=out, x=x: out.copy_(fn(x))
                    )
                r[variant + "_setup_s"] = time.perf_counter() - t0
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                times = []
                for _ in range(50):
                    start.record()
                    replay()
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end))
                r[variant + "_replay_ms"] = statistics.median(times)
                if variant == "eager":
                    ref = out.clone()
                else:
                    r[variant + "_corr"] = corr(out, ref)
            except Exception as e:
                r[variant + "_error"] = f"{type(e).__name__}: {e}"[:500]
            print(name, variant, json.dumps(r), flush=True)
            save("compile")


def main() -> None:
    global OUT, DEV, DRY
    ap = argparse.ArgumentParser()
    ap.add_argument("section", choices=["bench", "bench-ev", "final", "profile", "compile"])
    ap.add_argument("--out", default=".")
    ap.add_argument("--dry", action="store_true")
    a = ap.parse_args()
    OUT, DRY = Path(a.out), a.dry
    DEV = "cpu" if DRY else "cuda"
    OUT.mkdir(parents=True, exist_ok=True)
    sections = {
        "bench": bench,
        "bench-ev": lambda: bench_emotivoice(RESULTS.setdefault("bench", {})),
        "final": final,
        "profile": profile,
        "compile": compile_trial,
    }
    sections[a.section]()


if __name__ == "__main__":
    sys.exit(main())
