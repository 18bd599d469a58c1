"""Subnormal parameters are flushed before a network runs (they make CPU convolutions tens of times slower)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from btk.network_weights import flush_subnormals  # noqa: E402

TINY = torch.finfo(torch.float32).tiny


def subnormal_count(state) -> int:
    return sum(int(((t != 0) & (t.abs() < TINY)).sum()) for t in state.values() if t.is_floating_point())


def test_only_subnormal_values_become_zero():
    weights = torch.tensor([1e-39, -1e-40, TINY, -2.5, 0.0, 1e-30], dtype=torch.float32)
    steps = torch.tensor([3, 0, 7])
    flushed = flush_subnormals({"w": weights, "steps": steps})
    assert flushed["w"].tolist() == [0.0, 0.0, TINY, -2.5, 0.0, pytest.approx(1e-30)]
    assert flushed["steps"] is steps
    assert subnormal_count({"w": weights}) == 2, "the caller's tensors are left as they were"


def test_the_shipped_hdbet_weights_are_used_without_their_subnormals():
    from btk.preprocess.brain_extraction import weight_files

    state = torch.load(weight_files("fast")[0], map_location="cpu", weights_only=True)
    assert subnormal_count(state) > 1_000_000  # what made HD-BET's fast mode take minutes on CPU
    flushed = flush_subnormals(state)
    assert subnormal_count(flushed) == 0
    normal = {name: tensor.abs() >= TINY for name, tensor in state.items() if tensor.is_floating_point()}
    assert all(torch.equal(flushed[name][keep], state[name][keep]) for name, keep in normal.items())


def test_a_unet_checkpoint_with_subnormal_weights_loads_without_them(tmp_path):
    from btk.unet.checkpoints import load_model, save_checkpoint
    from btk.unet.model import ModelConfig, UNet3D

    model = UNet3D(ModelConfig(width=8))
    with torch.no_grad():
        next(model.parameters()).fill_(1e-39)
    save_checkpoint(tmp_path / "model.pt", model)
    assert subnormal_count(load_model(tmp_path / "model.pt").state_dict()) == 0
