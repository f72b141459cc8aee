"""Make the one input set every runner reads (float32 LE + manifest), and check it before use."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_atomic, write_json
from harness.suite import InputSpec


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


def _warn(message: str) -> None:
    """One line on stderr: the cache healed itself, and the user should know which file was bad."""
    print(f"warning: {message}", file=sys.stderr)


def make_inputs(spec: InputSpec, sample_size: int, cache_root: Path) -> InputFiles:
    """Write inputs.bin and manifest.json once per distinct spec; reuse them afterwards.

    They are derived from the seed, so a damaged or missing one is regenerated (one warning line), not refused.
    """
    key = spec_hash({"spec": dataclasses.asdict(spec), "sample_size": sample_size, "numpy": np.__version__})
    d = cache_root / "inputs" / key
    files = InputFiles(d / "inputs.bin", d / "manifest.json", spec.count, sample_size)
    d.mkdir(parents=True, exist_ok=True)
    record = {"file": files.data.name, "shape": [spec.count, sample_size], "dtype": "float32",
              "byte_order": "little", **dataclasses.asdict(spec)}
    with FileLock(str(d / ".lock")):
        if files.manifest.exists() or files.data.exists():  # neither: never made, so nothing to warn about
            problem = _inspect(files.manifest, record)[1]
            if problem is None:
                return files
            _warn(f"{problem}: regenerating it")
        write_atomic(files.data, generate(spec, sample_size).tobytes())
        write_json(files.manifest, {**record, "sha256": sha256_file(files.data)})  # last: it vouches for the data
    return files


def _inspect(manifest_path: Path, record: dict | None = None) -> tuple[np.ndarray | None, str | None]:
    """The inputs, or what is wrong with them: unreadable manifest, missing, truncated, altered, NaN or inf.

    `record`: what the manifest must say besides its sha256 (make_inputs knows the spec; a final check does not).
    """
    try:
        manifest = json.loads(manifest_path.read_text())
        data_path = manifest_path.parent / manifest["file"]
        count, size = manifest["shape"]
        digest = manifest["sha256"]
    except FileNotFoundError:
        return None, f"{manifest_path} is missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{manifest_path} is unreadable ({exc!r})"
    if record is not None and {k: manifest.get(k) for k in record} != record:
        return None, f"{manifest_path} does not describe these inputs (altered?)"
    if not data_path.exists():
        return None, f"{data_path} is missing"
    expected = count * size * 4
    actual = data_path.stat().st_size
    if actual != expected:
        why = "truncated" if actual < expected else "altered"
        return None, f"{data_path} has {actual} bytes, manifest says {expected} ({why}?)"
    if sha256_file(data_path) != digest:
        return None, f"{data_path} does not match its manifest's sha256 (altered or corrupt)"
    x = np.fromfile(data_path, dtype="<f4").reshape(count, size)
    if not np.isfinite(x).all():
        return None, f"{data_path} contains NaN or inf"
    return x, None


def inputs_problem(manifest_path: Path) -> str | None:
    """What is wrong with the inputs (naming the file), or None. Only reports: the caller heals or refuses."""
    return _inspect(manifest_path)[1]


def check_inputs(manifest_path: Path) -> np.ndarray:
    """The checked inputs; any problem is a UserError naming the file.

    The refusing side, for a final check: make_inputs has already regenerated a damaged cache, so a problem
    here means the regenerated file did not hold (a full or failing disk, or another process at work).
    """
    x, problem = _inspect(manifest_path)
    if x is None:
        raise UserError(f"input {problem}: rerun to regenerate it; if this persists, check free disk space")
    return x
