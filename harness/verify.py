"""Compare every runner's outputs with the Python reference, element by element."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# float32 arithmetic in a different order (MKL sgemm vs plain loops, FMA or not) moves the last
# bits: for outputs of magnitude ~20 that is ~2e-6. The tolerance allows that and nothing more.
ATOL = 1e-5
RTOL = 1e-5
# A user's model (unless its suite's [verify] says otherwise): a deep network sums thousands of products
# per output, and kernels that order them differently (AOTInductor's, ONNX Runtime's) move float32 outputs
# by ~1e-6 of their sum of magnitudes; 1e-4 allows that and still fails a wrong weight or a wrong input.
USER_ATOL = 1e-4
USER_RTOL = 1e-4


@dataclass(frozen=True)
class Check:
    ok: bool
    max_abs_err: float
    message: str = ""


def check_outputs(path: Path, reference: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> Check:
    """|out - ref| <= atol + rtol * |ref| for every element, and the shape must match exactly.

    A runner that computes something else on purpose (int8 weights) passes its own, looser tolerance.
    """
    if not path.exists():
        return Check(False, float("nan"), f"{path.name} missing")
    return check_values(np.fromfile(path, dtype="<f4"), reference, atol, rtol)


def check_values(out: np.ndarray, reference: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> Check:
    """check_outputs on values already read (float32, flat)."""
    if out.size != reference.size:
        return Check(False, float("nan"), f"{out.size} output values, expected {reference.size}")
    out = out.reshape(reference.shape)
    if not np.isfinite(out).all():
        return Check(False, float("nan"), "outputs contain NaN or inf")
    err = np.abs(out.astype(np.float64) - reference.astype(np.float64))
    max_err = float(err.max()) if err.size else 0.0
    bad = err > atol + rtol * np.abs(reference.astype(np.float64))
    if bad.any():
        first = int(np.argmax(bad.any(axis=1) if bad.ndim > 1 else bad))
        return Check(False, max_err, f"{int(bad.sum())} of {bad.size} outputs differ from the reference "
                                     f"(first at sample {first}, largest difference {max_err:.3g})")
    return Check(True, max_err)
