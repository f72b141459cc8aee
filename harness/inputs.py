"""Make the one input set every runner reads (float32 LE + manifest), and check it before use."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from harness.config import InputSpec
from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_json


@dataclass(frozen=True)
class InputFiles:
    data: Path
    manifest: Path
    count: int
    sample_size: int


EXACT_INT = 2**24  # float32 holds every integer up to this magnitude exactly


def generate(spec: InputSpec, sample_size: int) -> np.ndarray:
    """Seeded, so the same spec gives the same bytes on any machine with this numpy.

    "integers" draws whole numbers in [low, high] (both included), so sums of them, such as the op
    chain's additions, are exact in float32 whatever order or fusion a runtime uses.
    """
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    shape = (spec.count, sample_size)
    if spec.distribution == "uniform":
        return rng.uniform(spec.low, spec.high, size=shape).astype("<f4")
    if spec.distribution == "integers":
        low, high = math.ceil(spec.low), math.floor(spec.high)
        if low > high:
            raise UserError(f"inputs: no integer lies in [{spec.low}, {spec.high}]: widen low and high for 'integers'")
        if max(abs(low), abs(high)) > EXACT_INT:
            raise UserError(f"inputs: 'integers' beyond ±2^24 are not exact in float32: keep low and high within "
                            f"±{EXACT_INT}")
        return rng.integers(low, high, size=shape, endpoint=True).astype("<f4")
    raise UserError(f"inputs.distribution: unknown '{spec.distribution}': use uniform or integers")


def make_inputs(spec: InputSpec, sample_size: int, cache_root: Path) -> InputFiles:
    """Write inputs.bin and manifest.json once per distinct spec; reuse them afterwards."""
    key = spec_hash({"spec": dataclasses.asdict(spec), "sample_size": sample_size, "numpy": np.__version__})
    d = cache_root / "inputs" / key
    files = InputFiles(d / "inputs.bin", d / "manifest.json", spec.count, sample_size)
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / ".lock")):
        if not files.manifest.exists():
            generate(spec, sample_size).tofile(files.data)
            write_json(files.manifest, {
                "file": files.data.name,
                "shape": [spec.count, sample_size],
                "dtype": "float32",
                "byte_order": "little",
                **dataclasses.asdict(spec),
                "sha256": sha256_file(files.data),
            })
    check_inputs(files.manifest)
    return files


def check_inputs(manifest_path: Path) -> np.ndarray:
    """Refuse a truncated, altered or non-finite input file with a message saying how to fix it."""
    fix = f"delete {manifest_path.parent} and rerun to regenerate it"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"input manifest {manifest_path} unreadable ({exc}): {fix}") from None
    data_path = manifest_path.parent / manifest["file"]
    count, size = manifest["shape"]
    if not data_path.exists():
        raise UserError(f"input file {data_path} is missing: {fix}")
    expected = count * size * 4
    actual = data_path.stat().st_size
    if actual != expected:
        raise UserError(f"input file {data_path} has {actual} bytes, manifest says {expected} (truncated?): {fix}")
    if sha256_file(data_path) != manifest["sha256"]:
        raise UserError(f"input file {data_path} does not match its manifest's sha256 (altered or corrupt): {fix}")
    x = np.fromfile(data_path, dtype="<f4").reshape(count, size)
    if not np.isfinite(x).all():
        raise UserError(f"input file {data_path} contains NaN or inf: {fix}")
    return x
