"""One seeded input file for all runners, regenerated with one warning line when it is damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.errors import UserError
from harness.inputs import check_inputs, generate, inputs_problem, make_inputs
from harness.suite import InputSpec

SPEC = InputSpec(count=1000, low=-10.0, high=10.0, seed=7)


def test_inputs_are_seeded_and_described(tmp_path: Path) -> None:
    a = make_inputs(SPEC, 2, tmp_path / "a")
    b = make_inputs(SPEC, 2, tmp_path / "b")
    assert a.data.read_bytes() == b.data.read_bytes()
    manifest = json.loads(a.manifest.read_text())
    assert manifest["shape"] == [1000, 2] and manifest["dtype"] == "float32" and manifest["byte_order"] == "little"
    x = check_inputs(a.manifest)
    assert x.dtype == np.float32 and x.min() >= -10 and x.max() <= 10
    assert a.data.stat().st_size == 1000 * 2 * 4


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-4])


def _alter(p: Path) -> None:
    p.write_bytes(b"\x00" + p.read_bytes()[1:])


def _nan(p: Path) -> None:
    """A NaN with a manifest that vouches for it: only the finiteness check can catch it."""
    x = np.fromfile(p, dtype="<f4")
    x[5] = np.nan
    x.tofile(p)
    manifest_path = p.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def _manifest_shape(p: Path) -> None:
    manifest_path = p.parent / "manifest.json"
    manifest_path.write_text(manifest_path.read_text().replace("1000", "999", 1))


DAMAGES = {
    "truncated": (_truncate, "inputs.bin", r"has 7996 bytes, manifest says 8000 \(truncated\?\)"),
    "altered": (_alter, "inputs.bin", r"does not match its manifest's sha256 \(altered or corrupt\)"),
    "missing": (Path.unlink, "inputs.bin", r"is missing"),
    "NaN": (_nan, "inputs.bin", r"contains NaN or inf"),
    "unreadable manifest": (lambda p: (p.parent / "manifest.json").write_text("{"), "manifest.json",
                            r"is unreadable \(JSONDecodeError"),
    "missing manifest": (lambda p: (p.parent / "manifest.json").unlink(), "manifest.json", r"is missing"),
    "altered manifest": (_manifest_shape, "manifest.json", r"does not describe these inputs \(altered\?\)"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_inputs_are_regenerated(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """Derived from the seed: rebuilt with the same bytes, and one warning line naming the bad file."""
    files = make_inputs(SPEC, 2, tmp_path)
    original, manifest = files.data.read_bytes(), files.manifest.read_text()
    capsys.readouterr()
    act, bad, pattern = DAMAGES[damage]
    act(files.data)
    assert inputs_problem(files.manifest) is not None
    assert make_inputs(SPEC, 2, tmp_path) == files
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"warning: {re.escape(str(files.data.parent / bad))} {pattern}.*: regenerating it", lines[0])
    assert files.data.read_bytes() == original and files.manifest.read_text() == manifest
    assert inputs_problem(files.manifest) is None and check_inputs(files.manifest).tobytes() == original
    assert not list(files.data.parent.glob(".*.tmp"))


def test_intact_inputs_are_reused_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = make_inputs(SPEC, 2, tmp_path)
    mtimes = [p.stat().st_mtime_ns for p in (files.data, files.manifest)]
    assert make_inputs(SPEC, 2, tmp_path) == files
    assert [p.stat().st_mtime_ns for p in (files.data, files.manifest)] == mtimes
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("damage", ["truncated", "altered", "missing", "NaN"])
def test_final_check_refuses_naming_the_file(tmp_path: Path, damage: str) -> None:
    """check_inputs does not heal: after make_inputs, a problem means the regenerated file did not hold."""
    files = make_inputs(SPEC, 2, tmp_path)
    act, _, pattern = DAMAGES[damage]
    act(files.data)
    with pytest.raises(UserError, match=rf"^input {re.escape(str(files.data))} {pattern}.*: rerun to regenerate"):
        check_inputs(files.manifest)


def test_uniform_bytes_are_unchanged() -> None:
    """Cached inputs and earlier results depend on these exact bytes."""
    digest = hashlib.sha256(generate(SPEC, 2).tobytes()).hexdigest()
    assert digest == "0495ec1fdba7507d24d8b989814d4d46965a629bee75a9ea17ee2d914a595c14"


def test_integers_are_whole_numbers_in_the_closed_range(tmp_path: Path) -> None:
    spec = InputSpec(count=2000, distribution="integers", low=-3.0, high=3.0, seed=7)
    x = check_inputs(make_inputs(spec, 2, tmp_path).manifest)
    assert x.dtype == np.float32 and np.array_equal(x, np.round(x))
    assert set(np.unique(x)) == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}  # both ends included
    assert np.array_equal(generate(spec, 2), x)  # seeded
    assert not np.array_equal(generate(dataclasses.replace(spec, seed=8), 2), x)
    assert np.array_equal(np.float32(1000.0) + x, (1000 + x.astype(np.int64)).astype(np.float32))  # exact sums


def test_integers_round_inwards_and_refuse_an_empty_range() -> None:
    x = generate(InputSpec(count=500, distribution="integers", low=-1.5, high=1.5), 4)
    assert set(np.unique(x)) == {-1.0, 0.0, 1.0}
    with pytest.raises(UserError, match="no integer lies in"):
        generate(InputSpec(count=5, distribution="integers", low=0.2, high=0.8), 2)
    with pytest.raises(UserError, match="not exact in float32"):
        generate(InputSpec(count=5, distribution="integers", low=0, high=2.0**25), 2)


def test_several_tensors_of_several_dtypes_are_laid_out_and_heal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.inputs import check_tensor_inputs, make_tensor_inputs, tensor_offsets
    from harness.model_spec import TensorSpec

    tensors = (TensorSpec((1, 3), "float32"), TensorSpec((1, 2), "int64", "integers", 0, 9),
               TensorSpec((1, 5), "bool", "integers", 0, 1), TensorSpec((2,), "float64", "normal", 0.0, 1.0))
    files = make_tensor_inputs(tensors, 5, tmp_path)
    offsets, size = tensor_offsets(tensors, 5)
    assert offsets == [0, 64, 144, 176] and size == 256 and files.data.stat().st_size == size
    xs = check_tensor_inputs(files.manifest)
    assert [x.dtype.name for x in xs] == ["float32", "int64", "bool", "float64"]
    assert [x.shape for x in xs] == [(5, 1, 3), (5, 1, 2), (5, 1, 5), (5, 2)]
    assert xs[1].min() >= 0 and xs[1].max() <= 9
    before = files.data.read_bytes()
    files.data.write_bytes(before[:100])  # truncated: regenerated with one warning naming the file
    make_tensor_inputs(tensors, 5, tmp_path)
    assert files.data.read_bytes() == before and str(files.data) in capsys.readouterr().err


def test_a_bool_input_skips_the_java_torchscript_runners_saying_why() -> None:
    from harness.model_spec import ModelSpec, TensorSpec
    from harness.runners import RUNNERS

    model = ModelSpec(name="m", kind="torchscript", path="/m.pt",
                      tensors=(TensorSpec((1, 4)), TensorSpec((1, 4), "bool", "integers", 0, 1)))
    assert "org.pytorch.Tensor has no bool dtype" in RUNNERS["java-torchscript"].cannot_run(model)
    assert RUNNERS["java-aoti"].cannot_run(model) is None
    assert "layer spec" in RUNNERS["cpp-raw"].cannot_run(model)
    assert RUNNERS["cpp-api"].cannot_run(ModelSpec(name="m", layers=(2, 1))) is None  # a built-in model


def test_a_refusal_asks_for_a_factory_only_where_a_factory_would_run() -> None:
    from harness.model_spec import ModelSpec, TensorSpec
    from harness.runners import RUNNERS

    file_model = ModelSpec(name="m", kind="torchscript", path="/m.pt", tensors=(TensorSpec((1, 4)),))
    factory = ModelSpec(name="m", kind="factory", path="/f.py:build", tensors=(TensorSpec((1, 4)),))
    assert "give a factory" in RUNNERS["python-eager"].cannot_run(file_model)
    assert RUNNERS["python-eager"].cannot_run(factory) is None
    for model in (file_model, factory):  # quantize_dynamic runs the built-in MLPs only: a factory would not help
        reason = RUNNERS["python-quant-dynamic"].cannot_run(model)
        assert reason and "factory" not in reason and "mlp" in reason
