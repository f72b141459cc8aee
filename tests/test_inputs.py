"""One seeded input file for all runners, and a clear refusal when it is damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from harness.config import InputSpec
from harness.errors import UserError
from harness.inputs import check_inputs, generate, make_inputs

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


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-4]), r"has 7996 bytes, manifest says 8000 \(truncated\?\)"),
        (lambda p: p.write_bytes(b"\x00" + p.read_bytes()[1:]), r"does not match its manifest's sha256"),
        (lambda p: p.unlink(), r"is missing"),
    ],
)
def test_damaged_inputs_are_refused(tmp_path: Path, damage, pattern: str) -> None:
    files = make_inputs(SPEC, 2, tmp_path)
    damage(files.data)
    with pytest.raises(UserError, match=pattern) as info:
        check_inputs(files.manifest)
    assert "delete" in str(info.value) and "regenerate" in str(info.value)


def test_nan_inputs_are_refused(tmp_path: Path) -> None:
    files = make_inputs(SPEC, 2, tmp_path)
    x = np.fromfile(files.data, dtype="<f4")
    x[5] = np.nan
    x.tofile(files.data)
    manifest = json.loads(files.manifest.read_text())
    manifest["sha256"] = __import__("hashlib").sha256(files.data.read_bytes()).hexdigest()
    files.manifest.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="NaN or inf"):
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
