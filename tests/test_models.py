"""The model is trained reproducibly, every kind renders and runs, and every export holds the same weights."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import UserError
from harness.model_spec import ModelSpec, Training
from harness.models import (
    check_model_files,
    load_eager,
    load_net_class,
    raw_weights,
    reference_outputs,
    require_intact,
    train_and_export,
)
from harness.suite import InputSpec

SPEC = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=300))
INPUTS = InputSpec(count=10)
KINDS = {
    "mlp": ModelSpec("M", (2, 8, 8, 1), training=Training(steps=50)),
    "mlp_branch": ModelSpec("B", (2, 8, 8, 1), kind="mlp_branch", training=Training(steps=50)),
    "op_chain": ModelSpec("C", kind="op_chain", length=1000, size=3),
    "conv_bn_relu": ModelSpec("V", kind="conv_bn_relu", image=(32, 32)),
}
# the seed's model.py: the default suite's cached model depends on this exact text
SEED_MODEL_PY = '''"""MyNN: the model of this suite, rendered from its layer spec 2-8-8-1."""

import torch


class Net(torch.nn.Module):
    """Linear layers 2-8-8-1 with relu between them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc0 = torch.nn.Linear(2, 8)
        self.fc1 = torch.nn.Linear(8, 8)
        self.fc2 = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc0(x))
        x = torch.relu(self.fc1(x))
        return self.fc2(x)
'''


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


def _samples(spec: ModelSpec, n: int, seed: int, integers: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(-10, 10, (n, spec.sample_size), endpoint=True).astype(np.float32)
    return rng.uniform(-10, 10, (n, spec.sample_size)).astype(np.float32)


def test_mlp_model_py_is_unchanged(tmp_path: Path) -> None:
    load_net_class(ModelSpec("MyNN", (2, 8, 8, 1)), tmp_path)
    assert (tmp_path / "model.py").read_text() == SEED_MODEL_PY


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_and_runs(tmp_path: Path, kind: str) -> None:
    spec = KINDS[kind]
    net = load_net_class(spec, tmp_path)().eval()
    with torch.no_grad():
        one = net(torch.ones(spec.input_shape(1)))
        four = net(torch.ones(spec.input_shape(4)))
    assert tuple(one.shape) == (spec.output_shape if len(spec.input_shape(1)) == len(spec.sample_shape)
                                else (1, *spec.output_shape))
    assert tuple(four.shape) == (4, *spec.output_shape)


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


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_model_record_and_traced_file(tmp_path: Path, kind: str) -> None:
    """model.json names exactly the files written; the trace agrees with eager (mlp_branch: see below)."""
    spec = KINDS[kind]
    files = train_and_export(spec, INPUTS, tmp_path)
    meta = json.loads(files.meta.read_text())
    written = {"model.ts.pt", "model.state.pt"} | ({"weights.bin"} if spec.is_mlp else set())
    assert set(meta["sha256"]) == written
    assert files.weights.exists() == spec.is_mlp
    assert meta["sample_shape"] == list(spec.sample_shape) and meta["output_shape"] == list(spec.output_shape)
    assert (meta["trace_warnings"] != []) == (kind == "mlp_branch")
    x = _samples(spec, 6, 5, integers=kind == "op_chain")
    if kind == "mlp_branch":
        x = np.abs(x)  # sum > 0: the branch the trace recorded
    ref = reference_outputs(spec, files, x)
    assert ref.shape == (6, spec.output_size) and ref.dtype == np.float32
    traced = torch.jit.load(str(files.torchscript))
    with torch.no_grad():
        got = np.stack([traced(torch.from_numpy(r).reshape(spec.input_shape(1))).reshape(-1).numpy() for r in x])
    if kind == "op_chain":
        assert np.array_equal(got, ref) and np.array_equal(ref, x + spec.length)  # integers: exact in any order
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_traced_branch_keeps_only_its_examples_branch(tmp_path: Path) -> None:
    """Seed 002's pitfall: right wherever sum(x) > 0, like the example (ones), silently negated elsewhere."""
    spec = KINDS["mlp_branch"]
    files = train_and_export(spec, INPUTS, tmp_path)
    warned = json.loads(files.meta.read_text())["trace_warnings"]
    assert any("Converting a tensor to a Python boolean" in w for w in warned)
    x = _samples(spec, 200, 6)
    positive = x.sum(axis=1) > 0
    assert 50 < positive.sum() < 150
    ref = reference_outputs(spec, files, x)
    traced = torch.jit.load(str(files.torchscript))
    with torch.no_grad():
        got = np.stack([traced(torch.from_numpy(r)).numpy() for r in x])
    np.testing.assert_allclose(got[positive], ref[positive], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[~positive], -ref[~positive], rtol=1e-6, atol=1e-6)
    assert np.abs(got[~positive] - ref[~positive]).min() > 0  # it really disagrees there


def test_branch_reference_is_per_sample(tmp_path: Path) -> None:
    """A batch would take one branch for all its samples, so the reference runs each sample alone."""
    spec = KINDS["mlp_branch"]
    files = train_and_export(spec, INPUTS, tmp_path)
    x = _samples(spec, 100, 7)
    net = load_eager(spec, files)
    with torch.no_grad():
        alone = np.stack([net(torch.from_numpy(r)).numpy() for r in x])
        batched = net(torch.from_numpy(x)).numpy()
    ref = reference_outputs(spec, files, x)
    assert np.array_equal(ref, alone)
    assert not np.allclose(ref, batched)


def test_conv_reference_in_chunks_matches_each_sample(tmp_path: Path) -> None:
    spec = KINDS["conv_bn_relu"]
    files = train_and_export(spec, INPUTS, tmp_path)
    x = _samples(spec, 19, 8)  # more than two chunks
    net = load_eager(spec, files)
    with torch.no_grad():
        alone = np.stack([net(torch.from_numpy(r).reshape(spec.input_shape(1))).reshape(-1).numpy() for r in x])
    np.testing.assert_allclose(reference_outputs(spec, files, x), alone, rtol=1e-6, atol=1e-6)


def test_conv_batch_norm_is_not_the_identity(tmp_path: Path) -> None:
    spec = KINDS["conv_bn_relu"]
    files = train_and_export(spec, INPUTS, tmp_path)
    bn = load_eager(spec, files).bn
    assert not bn.training
    for t, default in ((bn.running_mean, 0.0), (bn.running_var, 1.0), (bn.weight, 1.0), (bn.bias, 0.0)):
        assert (t - default).abs().min() > 1e-3
    again = load_eager(spec, train_and_export(spec, INPUTS, tmp_path / "again")).state_dict()
    assert all(torch.equal(t, again[k]) for k, t in load_eager(spec, files).state_dict().items())  # seeded


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
    net = load_net_class(ModelSpec("W", (3, 4, 2)), Path(tempfile.mkdtemp()))()
    w = raw_weights(net)
    assert w.size == 3 * 4 + 4 + 4 * 2 + 2
    assert np.array_equal(w[:12], net.fc0.weight.detach().numpy().ravel())


def _flip_last_byte(p: Path) -> None:
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))


# damage → (what to do to which file, what the warning says about it)
DAMAGES = {
    "altered model.ts.pt": (_flip_last_byte, "model.ts.pt",
                            r"does not match its recorded sha256 \(altered or corrupt\)"),
    "missing weights.bin": (Path.unlink, "weights.bin", r"is missing"),
    "truncated weights.bin": (lambda p: p.write_bytes(p.read_bytes()[:-4]), "weights.bin",
                              r"has 416 bytes, its record says 420 \(truncated\?\)"),
    "unreadable model.json": (lambda p: p.write_text('{"sha256": '), "model.json", r"is unreadable \(JSONDecodeError"),
    "missing model.json": (Path.unlink, "model.json", r"is missing"),
    "model.json without sha256": (lambda p: p.write_text("{}"), "model.json", r"is unreadable \(KeyError"),
}


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.jit.load(str(path))(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_model_files_are_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """Derived from the seeds: retrained with one warning line naming the bad file, the same weights again."""
    files = train_and_export(SPEC, INPUTS, tmp_path)
    original = {p.name: p.read_bytes() for p in (files.state_dict, files.weights)}
    x = np.random.default_rng(2).uniform(-10, 10, (20, 2)).astype(np.float32)
    traced = _outputs(files.torchscript, x)
    capsys.readouterr()
    act, name, pattern = DAMAGES[damage]
    act(files.dir / name)
    assert train_and_export(SPEC, INPUTS, tmp_path) == files
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    bad = re.escape(str(files.dir / name))
    assert re.fullmatch(rf"warning: {bad} {pattern}.*: retraining the model and exporting it again", lines[0])
    assert check_model_files(files) is None  # every file matches the new record
    assert {p.name: p.read_bytes() for p in (files.state_dict, files.weights)} == original  # seeded
    np.testing.assert_array_equal(_outputs(files.torchscript, x), traced)
    assert json.loads(files.meta.read_text())["final_loss"] > 0
    assert train_and_export(SPEC, INPUTS, tmp_path) == files and capsys.readouterr().err == ""  # healed for good


def test_user_supplied_model_is_refused_not_rebuilt(tmp_path: Path) -> None:
    """A file the user points to is never rebuilt: the problem is an error naming it, and the file stays."""
    files = train_and_export(SPEC, INPUTS, tmp_path)
    require_intact(files)  # intact: no error
    original = files.torchscript.read_bytes()
    _flip_last_byte(files.torchscript)
    damaged = files.torchscript.read_bytes()
    never = ": a user-supplied model is never rebuilt"
    altered = rf"^{re.escape(str(files.torchscript))} does not match its recorded sha256 .*{never}"
    with pytest.raises(UserError, match=altered):
        require_intact(files)
    assert files.torchscript.read_bytes() == damaged
    files.torchscript.write_bytes(original)
    files.weights.unlink()
    with pytest.raises(UserError, match=rf"^{re.escape(str(files.weights))} is missing{never}"):
        require_intact(files)
    assert not files.weights.exists()


def test_only_recorded_files_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No weights.bin for a conv model is fine; an altered state dict is still caught, and rebuilt."""
    spec = KINDS["conv_bn_relu"]
    files = train_and_export(spec, INPUTS, tmp_path)
    assert train_and_export(spec, INPUTS, tmp_path) == files
    original = files.state_dict.read_bytes()
    files.state_dict.write_bytes(original + b"\0")
    size = len(original)
    assert check_model_files(files) == f"{files.state_dict} has {size + 1} bytes, its record says {size} (altered?)"
    capsys.readouterr()
    train_and_export(spec, INPUTS, tmp_path)
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"warning: {files.state_dict} has {size + 1} bytes, its record says {size} (altered?): "
                    "retraining the model and exporting it again")
    assert files.state_dict.read_bytes() == original and not files.weights.exists()
