"""Further exports hold the same weights as the traced model, and are made once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from harness import exports
from harness.config import InputSpec, ModelSpec, Training
from harness.models import train_and_export
from harness.runners import RUNNERS

SPEC = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=50))


@pytest.mark.parametrize("name", sorted(exports.EXPORTERS))
def test_export_matches_the_eager_model(tmp_path: Path, name: str) -> None:
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    assert exports.ensure_exports((name,), SPEC, files) is None
    mtime = (files.dir / name).stat().st_mtime_ns
    assert exports.ensure_exports((name,), SPEC, files) is None
    assert (files.dir / name).stat().st_mtime_ns == mtime
    xs = torch.empty(200, SPEC.layers[0]).uniform_(-10, 10, generator=torch.Generator().manual_seed(3))
    run = load_export(files.dir / name)
    with torch.no_grad():
        want = exports.eager_model(SPEC, files)(xs)
        got = torch.stack([run(x) for x in xs])  # one sample of shape [n] per call, as the runners call it
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def load_export(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Each export loaded the way its runner loads it, as a function of one sample."""
    if path.suffix == ".pt":
        return torch.jit.load(str(path))
    if path.suffix == ".ptl":
        from torch.jit.mobile import _load_for_lite_interpreter

        return _load_for_lite_interpreter(str(path))
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape == [SPEC.layers[0]]  # the seed's shape, one sample
        return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    raise AssertionError(f"no loader for {path.name}: add one here")


def test_frozen_export_has_constants_only(tmp_path: Path) -> None:
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    assert exports.ensure_exports(("model.frozen.pt",), SPEC, files) is None
    frozen = torch.jit.load(str(files.dir / "model.frozen.pt"))
    assert list(frozen.parameters()) == []  # weights folded into the graph
    assert "prim::GetAttr" not in str(frozen.graph)


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated", "ignore:torch.quantize_per_tensor")
def test_dynamic_int8_is_within_its_tolerance(tmp_path: Path) -> None:
    """What python-quant-dynamic builds at load, against the float model, over the seed's input range."""
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    net = exports.eager_model(SPEC, files)
    q = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
    xs = torch.empty(500, SPEC.layers[0]).uniform_(-10, 10, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = net(xs)
        got = torch.stack([q(x.unsqueeze(0))[0] for x in xs])
    atol, rtol = RUNNERS["python-quant-dynamic"].tolerance or (0.0, 0.0)
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)
    assert (got - want).abs().max() > 1e-5  # int8 does differ: the default tolerance would fail it


def test_unavailable_export_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object) -> None:
        raise exports.ExportUnavailable("this torch build lacks XNNPACK")

    monkeypatch.setitem(exports.EXPORTERS, "model.mobile.ptl", no)
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(("model.mobile.ptl",), SPEC, files)
    assert reason == "cannot export model.mobile.ptl: this torch build lacks XNNPACK"
    assert not (files.dir / "model.mobile.ptl").exists()
