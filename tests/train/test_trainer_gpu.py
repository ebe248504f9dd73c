"""Training on CUDA (bf16 autocast, fused AdamW, data on the device): run on the GPU machine.

``python3 -m pytest -q -m gpu tests/train/test_trainer_gpu.py`` there (PYTHONPATH=src).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxserve.models.clone import TINY, Config
from voxserve.train.corpus.format import write_tiny_corpus
from voxserve.train.data import load_corpus
from voxserve.train.trainer import TrainConfig, Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
TRAIN = TrainConfig(frames_per_batch=600, max_batch=8, warmup_steps=5, lr=3e-3, bin_loss_start=10)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus")
    write_tiny_corpus(path, n=32)
    return load_corpus(path, device="cuda")


def test_trains_on_cuda_and_resumes(data, tmp_path):
    t = Trainer.create(data, TINY, TRAIN, device="cuda")
    rows = [t.train_step() for _ in range(30)]
    acoustic = [r["mel"] + r["duration"] + r["pitch"] + r["energy"] for r in rows]
    assert np.isfinite(acoustic).all() and np.mean(acoustic[-5:]) < 0.6 * np.mean(acoustic[:5])
    t.save(tmp_path)
    expected = t.train_step()["total"]
    r = Trainer.resume(tmp_path, data, device="cuda")
    assert r.step == 30 and r.train_step()["total"] == pytest.approx(expected, rel=1e-2)


def test_base_size_step_fits_and_reports_throughput(data, tmp_path):
    t = Trainer.create(data, Config(), TrainConfig(frames_per_batch=32000, max_batch=64), device="cuda")
    summary = t.run(0.3, tmp_path)
    assert summary["steps_this_run"] > 0 and summary["frames_per_second"] > 0
    assert torch.cuda.max_memory_allocated() < 40 * 2**30
