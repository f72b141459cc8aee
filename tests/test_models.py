"""The model is trained reproducibly and every export holds the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config import InputSpec, ModelSpec, Training
from harness.errors import UserError
from harness.models import load_net_class, raw_weights, reference_outputs, train_and_export

SPEC = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=300))
INPUTS = InputSpec(count=10)


def _numpy_forward(weights: np.ndarray, layers: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    off = 0
    for k in range(len(layers) - 1):
        n_in, n_out = layers[k], layers[k + 1]
        w = weights[off : off + n_in * n_out].reshape(n_out, n_in)
        off += n_in * n_out
        b = weights[off : off + n_out]
        off += n_out
        x = x @ w.T + b
        if k < len(layers) - 2:
            x = np.maximum(x, 0)
    assert off == weights.size
    return x


def test_exports_agree(tmp_path: Path) -> None:
    files = train_and_export(SPEC, INPUTS, tmp_path)
    x = np.random.default_rng(0).uniform(-10, 10, (50, 2)).astype(np.float32)
    ref = reference_outputs(SPEC, files, x)
    traced = torch.jit.load(str(files.torchscript))
    with torch.no_grad():
        ts = np.stack([traced(torch.from_numpy(row)).numpy() for row in x])
    raw = _numpy_forward(np.fromfile(files.weights, dtype="<f4"), SPEC.layers, x.astype(np.float64))
    np.testing.assert_allclose(ts, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(raw, ref, rtol=1e-5, atol=1e-5)


def test_training_is_seeded_and_cached(tmp_path: Path) -> None:
    a = train_and_export(SPEC, INPUTS, tmp_path / "a")
    b = train_and_export(SPEC, INPUTS, tmp_path / "b")
    assert a.weights.read_bytes() == b.weights.read_bytes()
    meta = json.loads(a.meta.read_text())
    assert meta["final_loss"] < 5.0  # 300 steps already fit |x1| + x2 far better than a constant (var ≈ 58)
    mtime = a.meta.stat().st_mtime_ns
    assert train_and_export(SPEC, INPUTS, tmp_path / "a").meta.stat().st_mtime_ns == mtime


def test_learns_the_seed_function(tmp_path: Path) -> None:
    spec = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=4000))
    files = train_and_export(spec, INPUTS, tmp_path)
    x = np.random.default_rng(1).uniform(-10, 10, (2000, 2)).astype(np.float32)
    y = reference_outputs(spec, files, x)[:, 0]
    assert np.sqrt(np.mean((y - (np.abs(x[:, 0]) + x[:, 1])) ** 2)) < 0.5


def test_raw_weight_layout() -> None:
    net = load_net_class(ModelSpec("W", (3, 4, 2)), Path(__import__("tempfile").mkdtemp()))()
    w = raw_weights(net)
    assert w.size == 3 * 4 + 4 + 4 * 2 + 2
    assert np.array_equal(w[:12], net.fc0.weight.detach().numpy().ravel())


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_altered_model_files_are_refused(tmp_path: Path, damage: str) -> None:
    files = train_and_export(SPEC, INPUTS, tmp_path)
    if damage == "truncate":
        files.weights.write_bytes(files.weights.read_bytes()[:-4])
    else:
        files.torchscript.unlink()
    pattern = r"(does not match its recorded sha256 \(altered or corrupt\)|is missing): delete .* to retrain"
    with pytest.raises(UserError, match=pattern):
        train_and_export(SPEC, INPUTS, tmp_path)
