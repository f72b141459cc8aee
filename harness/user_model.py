"""A user's model (kinds torchscript, pt2, factory): checked, loaded without running code the user did not
ask for, and put in a model folder beside the exports its runners load.

A TorchScript file and a .pt2 file are data: TorchScript code is compiled by TorchScript, an
ExportedProgram is JSON plus tensors, an AOTInductor package is compiled code the user made to be run.
A file that is a pickled `nn.Module` (`torch.save(model)`) would run Python code when loaded, so it is
refused with how to export it instead. A factory (`FILE.py:FUNCTION`) is the user's own Python, run by
design: the README says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_json
from harness.inputs import generate_tensor
from harness.model_spec import ModelSpec
from harness.models import atomic_path

EXPORT_INSTEAD = (
    "export it instead: torch.jit.save(torch.jit.trace(model, example), 'model.pt'), "
    "torch.export.save(torch.export.export(model, example), 'model.pt2'), or give a factory FILE.py:FUNCTION"
)
# the file a source is kept as in the model folder, per what it is
SOURCE_NAMES = {"torchscript": "model.ts.pt", "exported": "model.b1.exported.pt2", "aoti": "model.b1.pt2"}


def classify(path: Path) -> str:
    """What a model file is: "torchscript", "exported" (an ExportedProgram) or "aoti" (a package).

    Read as a zip listing only; nothing in it is loaded here. A pickle is refused: loading one runs code.
    """
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise UserError(f"model file {path} cannot be read ({exc.strerror}): check the path") from None
    if head[:1] == b"\x80":
        raise UserError(f"model file {path} is a pickle (legacy torch.save): loading it would run code: "
                        + EXPORT_INSTEAD)
    if not zipfile.is_zipfile(path):
        raise UserError(f"model file {path} is neither a TorchScript file nor a .pt2 archive: " + EXPORT_INSTEAD)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if any("/data/aotinductor/" in n for n in names):
        return "aoti"
    if any(n.endswith("/models/model.json") for n in names):
        return "exported"
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        raise UserError(f"model file {path} was written by torch.save (a pickled module or state dict): loading "
                        "it would unpickle Python objects: " + EXPORT_INSTEAD)
    raise UserError(f"model file {path} is a zip archive but not a TorchScript file or a .pt2: " + EXPORT_INSTEAD)


def split_factory(text: str) -> tuple[Path, str]:
    file, _, function = text.rpartition(":")
    return Path(file), function


def factory_module_name(file: Path) -> str:
    """The name the factory is imported under: an ASCII identifier whatever the file is called, because
    TorchScript writes it into qualified names (`__torch__.NAME.Class`) that its loaders parse as tokens."""
    digest = hashlib.sha256(str(file.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"user_factory_{digest}"


def load_factory(text: str, seed: int) -> tuple[torch.nn.Module, Any]:
    """Run the user's factory (seeded): its module in eval mode and its example inputs, if it returns them."""
    file, function = split_factory(text)
    spec = importlib.util.spec_from_file_location(factory_module_name(file), file)
    if spec is None or spec.loader is None:
        raise UserError(f"factory {file} cannot be imported: give a Python file")
    module = importlib.util.module_from_spec(spec)
    torch.manual_seed(seed)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: its own error, in one line
        raise UserError(f"factory {file} failed on import: {type(exc).__name__}: {exc}") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise UserError(f"factory {file} has no function '{function}': name the function that returns the model")
    try:
        made = build()
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"factory {file}:{function}() failed: {type(exc).__name__}: {exc}") from None
    net, examples = made if isinstance(made, tuple) else (made, None)
    if not isinstance(net, torch.nn.Module):
        raise UserError(f"factory {file}:{function}() returned {type(net).__name__}, not a torch.nn.Module "
                        "(or a tuple of one and its example inputs)")
    return net.eval(), examples


def example_inputs(model: ModelSpec) -> tuple[torch.Tensor, ...]:
    """The first sample of every input tensor, exactly as the inputs file holds it: traces and exports use it."""
    return tuple(torch.from_numpy(generate_tensor(t, 1, f"inputs.tensors[{k}]")[0].copy())
                 for k, t in enumerate(model.tensors))


def flatten(y: Any, where: str = "the model") -> list[torch.Tensor]:
    """A call's result in pytree order (docs/runner-contract.md): tensor, tuple/list items, dict values."""
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, (tuple, list)):
        return [t for item in y for t in flatten(item, where)]
    if isinstance(y, dict):
        return [t for item in y.values() for t in flatten(item, where)]
    raise UserError(f"{where} returned {type(y).__name__}: the harness verifies tensors, or tuples, lists and "
                    "dicts of them")


def as_row(y: Any) -> np.ndarray:
    """One call's outputs as the runners write them: every tensor float32, flattened, joined."""
    parts = [t.detach().reshape(-1).to(torch.float32).numpy() for t in flatten(y)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<f4")


def source_kind(model: ModelSpec) -> str:
    """factory, torchscript, exported or aoti: what the model folder's source is."""
    return "factory" if model.kind == "factory" else classify(Path(model.path))


def folder(model: ModelSpec, cache_root: Path) -> Path:
    """The model folder: one per distinct source file, inputs and torch (a changed file gets a new one)."""
    file = split_factory(model.path)[0] if model.kind == "factory" else Path(model.path)
    key = spec_hash({"kind": model.kind, "path": model.path, "sha256": sha256_file(file),
                     "tensors": [t.__dict__ for t in model.tensors], "seed": model.training.seed,
                     "torch": torch.__version__})
    return cache_root / "models" / f"user-{key}"


def load(model: ModelSpec, d: Path) -> Callable[..., Any]:
    """The model as the reference runs it: the factory's module with the saved weights, or the file itself."""
    kind = source_kind(model)
    if kind == "factory":
        net, _ = load_factory(model.path, model.training.seed)
        net.load_state_dict(torch.load(d / "model.state.pt", weights_only=True))  # tensors only, never code
        return net.eval()
    path = d / SOURCE_NAMES[kind]
    try:
        if kind == "torchscript":
            return torch.jit.load(str(path)).eval()
        if kind == "exported":
            return torch.export.load(str(path)).module()
        return torch._inductor.aoti_load_package(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: its loader's words
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"model file {model.path} cannot be loaded as {kind}: {type(exc).__name__}: {first}: "
                        "check that it is the file you meant") from None


def own_message(exc: BaseException) -> str:
    """What went wrong, as "Type: message": a TorchScript interpreter error says it on its last line, under its
    own traceback (and names the type there); other errors say it on their first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if "Traceback of TorchScript" in str(exc) and lines:
        return lines[-1]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def prepare(model: ModelSpec, cache_root: Path) -> tuple[Path, dict[str, Any]]:
    """The model folder with the source's file in it (a copy, or the factory's seeded state dict) and its record.

    The record (model.json) says what the source is and how many values each output has, found by one call
    on the first input sample, which also shows at once a model that does not take the given inputs.
    """
    kind = source_kind(model)
    d = folder(model, cache_root)
    d.mkdir(parents=True, exist_ok=True)
    meta_path = d / "model.json"
    with FileLock(str(d / ".lock")):
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if not meta.get("call_error") and all(  # call_error: a record of an older harness, which went on
                    (d / n).exists() and sha256_file(d / n) == h for n, h in meta["sha256"].items()):
                return d, meta
            print(f"warning: {d} differs from its record: preparing the model again", file=sys.stderr)
        if kind == "factory":
            net, _ = load_factory(model.path, model.training.seed)
            name = "model.state.pt"
            with atomic_path(d / name) as tmp:
                torch.save(net.state_dict(), tmp)
        else:
            name = SOURCE_NAMES[kind]
            with atomic_path(d / name) as tmp:
                shutil.copyfile(model.path, tmp)
        source = load(model, d)
        try:
            with torch.no_grad():
                outputs = [t.numel() for t in flatten(source(*example_inputs(model)))]
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's own error names the mismatch
            # Refused before any run: every runner would fail its first call, and no output could be verified.
            shapes = ", ".join(f"{t.dtype} {list(t.shape)}" for t in model.tensors)
            raise UserError(f"model {model.path} does not run on the given inputs ({shapes}): "
                            f"{own_message(exc)}: give the shapes and dtypes its forward "
                            "takes (--input-shape, --input-dtype, or [[inputs.tensors]] in a suite)") from None
        meta = {"source": kind, "path": model.path, "outputs": outputs, "torch": torch.__version__,
                "sample_shape": list(model.sample_shape), "output_shape": [sum(outputs)],
                "sha256": {name: sha256_file(d / name)}, "bytes": {name: (d / name).stat().st_size}}
        write_json(meta_path, meta)
    return d, meta


def reference_outputs(model: ModelSpec, d: Path, xs: list[np.ndarray], n: int) -> np.ndarray:
    """The Python reference for the first `n` calls: the source model on each call's tensors, float32 rows."""
    rows = np.full((n, model.output_size), np.nan, dtype="<f4")
    source = load(model, d)
    with torch.no_grad():
        for i in range(n):
            rows[i] = as_row(source(*(torch.from_numpy(x[i].copy()) for x in xs)))
    return rows
