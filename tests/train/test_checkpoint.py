"""Checkpoints as bounded parts: round trip, splitting, and clear errors for missing or broken parts."""

from __future__ import annotations

import pytest
import torch

from voxserve.errors import InvalidInput
from voxserve.train import checkpoint as ckpt


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "model.w": torch.randn(64, 64, generator=g),
        "model.step": torch.tensor(3.0),
        "rng.cpu": torch.get_rng_state(),
        "half": torch.randn(10, generator=g).half(),
    }


def test_round_trip_in_parts_of_bounded_size(tmp_path):
    tensors, meta = _tensors(), {"step": 7, "text": "普通", "nested": {"a": [1, 2]}}
    files = ckpt.save(tmp_path, tensors, meta, part_bytes=4096)
    assert len(files) > 3 and all(f.stat().st_size <= 4096 for f in files)
    loaded, loaded_meta = ckpt.load(tmp_path)
    assert loaded_meta == meta
    assert loaded.keys() == tensors.keys()
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)


def test_a_new_save_replaces_the_old_parts(tmp_path):
    ckpt.save(tmp_path, _tensors(), {"step": 1}, part_bytes=4096)
    ckpt.save(tmp_path, {"x": torch.zeros(2)}, {"step": 2}, part_bytes=4096)
    assert len(ckpt.part_files(tmp_path)) == 1
    assert ckpt.load(tmp_path)[1] == {"step": 2}


def test_missing_or_broken_parts_fail_clearly(tmp_path):
    with pytest.raises(InvalidInput, match="no checkpoint"):
        ckpt.load(tmp_path)
    files = ckpt.save(tmp_path, _tensors(), {"step": 1}, part_bytes=4096)
    files[1].unlink()
    with pytest.raises(InvalidInput, match="incomplete"):
        ckpt.load(tmp_path)
    ckpt.save(tmp_path, _tensors(), {"step": 1}, part_bytes=4096)
    last = ckpt.part_files(tmp_path)[-1]
    last.write_bytes(last.read_bytes()[:-10])
    with pytest.raises(InvalidInput, match="corrupt"):
        ckpt.load(tmp_path)


def test_optimizer_state_flattens_and_restores():
    p = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.sum().backward()
    opt.step()
    tensors, rest = ckpt.flatten_optimizer(opt.state_dict())
    opt2 = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    opt2.load_state_dict(ckpt.unflatten_optimizer(tensors, rest))
    a, b = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_single_file_round_trip_and_errors(tmp_path):
    path = ckpt.save_single(tmp_path / "light.safetensors", _tensors(), {"step": 4})
    tensors, meta = ckpt.load_single(path)
    assert meta == {"step": 4} and torch.equal(tensors["model.w"], _tensors()["model.w"])
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidInput, match="not a light training checkpoint"):
        ckpt.load_single(tmp_path / "junk.safetensors")
