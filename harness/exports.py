"""Further exports of the trained model that some runners load (scripted, frozen, ONNX, …).

Each export is made once, from the same state dict as every other form, beside the model's other
files. An export this torch build cannot make is reported as the reason its runners are skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock

from harness.config import ModelSpec
from harness.models import ModelFiles, load_net_class


class ExportUnavailable(Exception):
    """This torch build cannot make the export (for example a backend it was built without)."""


def _scripted(net: torch.nn.Module, model: ModelSpec, path: Path) -> None:
    torch.jit.script(net).save(str(path))


def _frozen(net: torch.nn.Module, model: ModelSpec, path: Path) -> None:
    """Scripted, frozen (parameters become constants) and optimize_for_inference'd: BRIEF.md's fastest Python form."""
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(net).eval()))
    frozen.save(str(path))


def _lite(net: torch.nn.Module, model: ModelSpec, path: Path) -> None:
    """The scripted module for the lite (mobile) interpreter: same model as model.scripted.pt, another format."""
    scripted = torch.jit.script(net)
    save = getattr(scripted, "_save_for_lite_interpreter", None)
    if save is None:
        raise ExportUnavailable("this torch build has no lite interpreter (_save_for_lite_interpreter)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "consider ExecuTorch": the point is to measure it
        try:
            save(str(path))
        except RuntimeError as exc:
            raise ExportUnavailable(f"this torch build cannot save for the lite interpreter: {exc}") from None


def _onnx(net: torch.nn.Module, model: ModelSpec, path: Path) -> None:
    """ONNX with the seed's input shape [n]; the TorchScript-based exporter, which needs no onnxscript."""
    try:
        import onnx
    except ImportError:
        raise ExportUnavailable("the onnx package is not installed: pip install onnx") from None
    example = torch.zeros(model.layers[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    onnx.checker.check_model(str(path))


# file name (relative to the model folder) → function writing it from the eager module in eval mode
EXPORTERS: dict[str, Callable[[torch.nn.Module, ModelSpec, Path], None]] = {
    "model.scripted.pt": _scripted,
    "model.frozen.pt": _frozen,
    "model.scripted.ptl": _lite,
    "model.onnx": _onnx,
}


def eager_model(model: ModelSpec, files: ModelFiles) -> torch.nn.Module:
    net = load_net_class(model, files.dir)()
    net.load_state_dict(torch.load(files.state_dict))
    return net.eval()


def ensure_exports(needs: tuple[str, ...], model: ModelSpec, files: ModelFiles) -> str | None:
    """Make the missing exports among `needs`; return None, or why one cannot be made here."""
    for name in needs:
        path = files.dir / name
        with FileLock(str(files.dir / ".lock")):
            if path.exists():
                continue
            tmp = path.with_name(f".{name}.tmp")
            try:
                EXPORTERS[name](eager_model(model, files), model, tmp)
            except ExportUnavailable as exc:
                tmp.unlink(missing_ok=True)
                return f"cannot export {name}: {exc}"
            tmp.replace(path)
    return None
