"""A training run inside a wall-clock budget: train, log, checkpoint now and then, evaluate, save.

The loop keeps enough time in reserve for one more step, the evaluation and the final
checkpoint (estimated from the slowest recent steps and the last save), so a run given M
minutes ends inside M minutes on any device. Log lines carry mean losses and throughput
(mel frames per second of step time) every ``log_every`` steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

LIGHT_FILE = "light.safetensors"
"""The light checkpoint a run leaves beside the exact one (see ``Trainer.save_light``)."""

if TYPE_CHECKING:
    from voxserve.train.trainer import Trainer


def run(t: Trainer, minutes: float, out: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Train until ``minutes`` are nearly up, then evaluate and checkpoint into ``out_dir``.

    Checkpoints every ``checkpoint_minutes`` too. Returns a summary (steps, throughput, losses).
    """
    start = time.perf_counter()
    deadline = start + minutes * 60.0
    save_cost, last_save = 1.0, start
    margin = max(2.0, 0.01 * minutes * 60.0)
    step_times: list[float] = []
    window: dict[str, float] = {}
    window_frames, window_start, window_steps = 0.0, time.perf_counter(), 0
    first_step, run_frames = t.step, 0.0
    log(
        f"start step {t.step}, epoch {t.pos.epoch} batch {t.pos.batch}; "
        f"{sum(p.numel() for p in t.model.parameters())} model + "
        f"{sum(p.numel() for p in t.aligner.parameters())} aligner parameters on {t.device}"
    )
    while True:
        # Room for one more step, the evaluation (forward passes only) and the final checkpoint.
        slowest = max(step_times[-20:], default=0.0)
        reserve = (2 + t.train.eval_batches) * slowest + 2 * save_cost + margin
        if time.perf_counter() + reserve > deadline:
            break
        t0 = time.perf_counter()
        row = t.train_step()
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        dt = time.perf_counter() - t0
        step_times.append(dt)
        t.trained_seconds += dt
        for k, v in row.items():
            window[k] = window.get(k, 0.0) + v
        window_frames += row["frames"]
        run_frames += row["frames"]
        window_steps += 1
        if t.step % t.train.log_every == 0:
            elapsed = time.perf_counter() - window_start
            means = {k: v / window_steps for k, v in window.items() if k not in ("frames",)}
            entry = {"step": float(t.step), "frames_per_s": window_frames / max(elapsed, 1e-9)} | means
            t.history.append({k: round(v, 5) for k, v in entry.items()})
            log(_format(entry))
            window, window_frames, window_start, window_steps = {}, 0.0, time.perf_counter(), 0
        if time.perf_counter() - last_save > t.train.checkpoint_minutes * 60.0:
            t1 = time.perf_counter()
            t.save(out)
            save_cost, last_save = time.perf_counter() - t1, time.perf_counter()
    evaluation = t.evaluate()
    if evaluation:
        t.history.append(
            {"step": float(t.step), "eval": 1.0} | {k: round(v, 5) for k, v in evaluation.items()}
        )
        log("eval " + _format(evaluation))
    files = t.save(out)
    t.save_light(out / LIGHT_FILE)
    wall = time.perf_counter() - start
    steps = t.step - first_step
    summary = {
        "steps_this_run": steps,
        "step": t.step,
        "epoch": t.pos.epoch,
        "wall_seconds": round(wall, 1),
        "trained_seconds_total": round(t.trained_seconds, 1),
        "frames_per_second": round(run_frames / max(sum(step_times), 1e-9), 1),
        "mean_step_ms": round(1e3 * float(np.mean(step_times)), 2) if step_times else None,
        "eval": evaluation,
        "checkpoint": [p.name for p in files],
    }
    log(f"done: {summary}")
    return summary


def _format(entry: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in entry.items())
