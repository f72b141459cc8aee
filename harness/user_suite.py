"""`invoke all --model PATH --input-shape 1,3,224,224`: the suite for a user's model, made from the command
line and checked like a suite file (the same schema), written as TOML into the run folder to repeat it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import tomli_w

from harness.errors import UserError
from harness.model_spec import DTYPES
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import parse_suite

SHAPE = re.compile(r"^[1-9][0-9]{0,6}(,[1-9][0-9]{0,6}){0,7}$")
TARGET_SECONDS = 1.0  # timed calls per process: about this long (and the bare pass as long again)
MIN_CALLS, MAX_CALLS = 100, 100_000
REPEATS = 3
# the runners a layer spec needs are listed too: their SKIPPED rows say why they cannot run a user's model
SPEC_RUNNERS = ("cpp-api", "cpp-raw")
VARIANTS = ("python-aoti-loader", "cpp-torchscript-inference")  # the variants worth a row for any model


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' → (1, 3, 224, 224); anything else is a one-line error naming it."""
    if not SHAPE.match(text.replace(" ", "")):
        raise UserError(f"--input-shape '{text}' is not a shape: give positive integers separated by commas, "
                        "e.g. --input-shape 1,3,224,224")
    return tuple(int(n) for n in text.replace(" ", "").split(","))


def kind_of(path: str) -> str:
    """factory for FILE.py:FUNCTION, else what the file is (refusing a pickle before anything loads it)."""
    if re.search(r"\.py:[A-Za-z_][A-Za-z0-9_]*$", path):
        return "factory"
    from harness.user_model import classify

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"--model {path}: no such file: give a TorchScript file, a .pt2 or FILE.py:FUNCTION")
    return "torchscript" if classify(file.resolve()) == "torchscript" else "pt2"


def runner_ids(kind: str, shapes: list[tuple[int, ...]]) -> list[str]:
    """Every base runner that can run this kind of model, the variants worth a row, and the spec runners."""
    ids = [rid for rid, r in RUNNERS.items() if r.base is None and kind in r.model_kinds]
    if kind == "factory" and len(shapes[0]) == 4:
        ids += ["python-torchscript-cl", "cpp-torchscript-cl", "java-torchscript-reuse-cl"]  # channels_last
    return [*ids, *VARIANTS, *SPEC_RUNNERS]


def suite_data(path: str, shapes: list[str], dtypes: list[str], calls: int | None = None) -> dict[str, Any]:
    """The suite as a suite file would give it; calls default to about TARGET_SECONDS per process."""
    if not shapes:
        raise UserError("--model needs --input-shape (one per input, in order), e.g. --input-shape 1,3,224,224")
    if len(dtypes) > len(shapes):
        raise UserError(f"{len(dtypes)} --input-dtype for {len(shapes)} --input-shape: give one dtype per shape "
                        "(or none: float32)")
    for d in dtypes:
        if d not in DTYPES:
            raise UserError(f"--input-dtype '{d}' is not one of {', '.join(DTYPES)}")
    parsed = [parse_shape(s) for s in shapes]
    kind = kind_of(path)
    file = path if kind != "factory" else path.rsplit(":", 1)[0]
    resolved = str(Path(file).expanduser().resolve()) + ("" if kind != "factory" else ":" + path.rsplit(":", 1)[1])
    tensors = []
    for k, shape in enumerate(parsed):
        dtype = dtypes[k] if k < len(dtypes) else "float32"
        t: dict[str, Any] = {"shape": list(shape), "dtype": dtype}
        if dtype == "bool":
            t.update(distribution="integers", low=0, high=1)
        elif dtype in ("int64", "int32"):
            t.update(distribution="integers", low=0, high=9)  # small ids: an embedding of any size takes them
        else:
            t.update(distribution="uniform", low=0.0, high=1.0)
        tensors.append(t)
    name = re.sub(r"[^A-Za-z0-9_-]", "-", Path(file).stem)[:40] or "model"
    return {
        "name": name if name[0].isalpha() else f"m-{name}",
        "description": f"{path} with inputs {', '.join(shapes)}, from the command line",
        "model": {"name": name if name[0].isalpha() else f"m-{name}", "kind": kind, "path": resolved},
        "inputs": {"tensors": tensors},
        "run": {"calls": calls or MIN_CALLS, "warmup_calls": 20, "repeats": REPEATS},
        "runners": [{"id": rid} for rid in runner_ids(kind, parsed)],
    }


def calls_for_one_second(suite: Suite, cache_root: Path) -> int:
    """Timed calls for about TARGET_SECONDS, from a few calls of the source model in this process.

    The model is prepared in the cache the run then uses, so this costs a few calls, not a second preparation.
    """
    import torch

    from harness import user_model

    d, _ = user_model.prepare(suite.model, cache_root)
    model = user_model.load(suite.model, d)
    xs = user_model.example_inputs(suite.model)
    with torch.no_grad():
        model(*xs)
        t0 = time.perf_counter()
        for _ in range(5):
            model(*xs)
        per_call = (time.perf_counter() - t0) / 5
    calls = int(TARGET_SECONDS / max(per_call, 1e-7))
    return max(MIN_CALLS, min(MAX_CALLS, calls // 100 * 100))


def make(path: str, shapes: list[str], dtypes: list[str], calls: int | None, cache_root: Path) -> tuple[Suite, str]:
    """The checked suite and its TOML text (what `--suite` takes to repeat the run)."""
    data = suite_data(path, shapes, dtypes, calls)
    suite = parse_suite(data, "the command line")
    if calls is None:
        data["run"]["calls"] = calls_for_one_second(suite, cache_root)
        suite = parse_suite(data, "the command line")
    return suite, tomli_w.dumps(data)
