"""Make the one input set every runner reads (float32 LE + manifest), and check it before use."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_atomic, write_json
from harness.model_spec import TensorSpec
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


def _checked_manifest(manifest_path: Path, record: dict | None,
                      size_of: Callable[[dict[str, Any]], int]) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest, once its data file is there, of the size it says (`size_of`) and its sha256; else the problem.

    `record`: what the manifest must say besides its sha256 (make_inputs knows the spec; a final check does not).
    """
    try:
        manifest = json.loads(manifest_path.read_text())
        data_path = manifest_path.parent / manifest["file"]
        expected, digest = size_of(manifest), manifest["sha256"]
    except FileNotFoundError:
        return None, f"{manifest_path} is missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{manifest_path} is unreadable ({exc!r})"
    if record is not None and {k: manifest.get(k) for k in record} != record:
        return None, f"{manifest_path} does not describe these inputs (altered?)"
    if not data_path.exists():
        return None, f"{data_path} is missing"
    actual = data_path.stat().st_size
    if actual != expected:
        why = "truncated" if actual < expected else "altered"
        return None, f"{data_path} has {actual} bytes, manifest says {expected} ({why}?)"
    if sha256_file(data_path) != digest:
        return None, f"{data_path} does not match its manifest's sha256 (altered or corrupt)"
    return manifest, None


def _inspect(manifest_path: Path, record: dict | None = None) -> tuple[np.ndarray | None, str | None]:
    """The inputs, or what is wrong with them: unreadable manifest, missing, truncated, altered, NaN or inf."""
    manifest, problem = _checked_manifest(manifest_path, record, lambda m: m["shape"][0] * m["shape"][1] * 4)
    if manifest is None:
        return None, problem
    data_path = manifest_path.parent / manifest["file"]
    x = np.fromfile(data_path, dtype="<f4").reshape(*manifest["shape"])
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


# A user's model: several input tensors of several dtypes (docs/runner-contract.md, "Several inputs, any dtype")
NUMPY_DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4", "bool": "|b1"}
INT_LIMITS = {"int32": 2**31 - 1, "int64": 2**53}  # int64 within what a float64 bound states exactly


def tensor_offsets(tensors: tuple[TensorSpec, ...], count: int) -> tuple[list[int], int]:
    """Each tensor's first byte in inputs.bin, and the file's size: 8-aligned starts, no padding at the end."""
    offsets, end = [], 0
    for t in tensors:
        start = end + (-end % 8)
        offsets.append(start)
        end = start + count * math.prod(t.shape) * np.dtype(NUMPY_DTYPES[t.dtype]).itemsize
    return offsets, end


def generate_tensor(t: TensorSpec, count: int, where: str) -> np.ndarray:
    """`count` samples of one tensor, seeded: [count, *shape] in its dtype. `where` names it in errors."""
    rng = np.random.Generator(np.random.PCG64(t.seed))
    shape = (count, *t.shape)
    if t.dtype == "bool" or t.dtype in INT_LIMITS:
        if t.distribution != "integers":
            raise UserError(f"{where}: a {t.dtype} tensor cannot be drawn '{t.distribution}': use distribution = "
                            "\"integers\" with low and high")
        low, high = math.ceil(t.low), math.floor(t.high)
        limit = 1 if t.dtype == "bool" else INT_LIMITS[t.dtype]
        if low > high or low < (0 if t.dtype == "bool" else -limit) or high > limit:
            raise UserError(f"{where}: integers in [{t.low}, {t.high}] do not fit a {t.dtype} tensor: "
                            + ("use low = 0, high = 1" if t.dtype == "bool" else f"keep them within ±{limit}"))
        return rng.integers(low, high, size=shape, endpoint=True).astype(NUMPY_DTYPES[t.dtype])
    if t.distribution == "uniform":
        values = rng.uniform(t.low, t.high, size=shape)
    elif t.distribution == "normal":
        values = rng.normal(t.low, t.high, size=shape)
    else:
        values = rng.integers(math.ceil(t.low), math.floor(t.high), size=shape, endpoint=True)
    return values.astype(NUMPY_DTYPES[t.dtype])


def make_tensor_inputs(tensors: tuple[TensorSpec, ...], count: int, cache_root: Path) -> InputFiles:
    """inputs.bin (tensor after tensor) and its manifest, once per distinct description; healed like make_inputs."""
    key = spec_hash({"tensors": [dataclasses.asdict(t) for t in tensors], "count": count, "numpy": np.__version__})
    d = cache_root / "inputs" / key
    files = InputFiles(d / "inputs.bin", d / "manifest.json", count, math.prod(tensors[0].shape))
    d.mkdir(parents=True, exist_ok=True)
    offsets, size = tensor_offsets(tensors, count)
    record = {"file": files.data.name, "count": count, "byte_order": "little", "bytes": size,
              "tensors": [{**dataclasses.asdict(t), "shape": list(t.shape), "offset": o}
                          for t, o in zip(tensors, offsets, strict=True)]}
    with FileLock(str(d / ".lock")):
        if files.manifest.exists() or files.data.exists():
            problem = _inspect_tensors(files.manifest, record)[1]
            if problem is None:
                return files
            _warn(f"{problem}: regenerating it")
        blob = bytearray(size)
        for k, (t, o) in enumerate(zip(tensors, offsets, strict=True)):
            data = generate_tensor(t, count, f"inputs.tensors[{k}]").tobytes()
            blob[o:o + len(data)] = data
        write_atomic(files.data, bytes(blob))
        write_json(files.manifest, {**record, "sha256": sha256_file(files.data)})
    return files


def _inspect_tensors(manifest_path: Path, record: dict | None = None) -> tuple[list[np.ndarray] | None, str | None]:
    """The input tensors, or what is wrong with them (as _inspect, for a manifest of several tensors)."""
    manifest, problem = _checked_manifest(manifest_path, record, lambda m: m["bytes"])
    if manifest is None:
        return None, problem
    blob = (manifest_path.parent / manifest["file"]).read_bytes()
    out = []
    for t in manifest["tensors"]:
        dtype = np.dtype(NUMPY_DTYPES[t["dtype"]])
        count = manifest["count"]
        n = count * math.prod(t["shape"])
        out.append(np.frombuffer(blob, dtype=dtype, count=n, offset=t["offset"]).reshape(count, *t["shape"]))
    return out, None


def check_tensor_inputs(manifest_path: Path) -> list[np.ndarray]:
    """The checked input tensors of a user's model; a problem is a UserError naming the file."""
    xs, problem = _inspect_tensors(manifest_path)
    if xs is None:
        raise UserError(f"input {problem}: rerun to regenerate it; if this persists, check free disk space")
    return xs
