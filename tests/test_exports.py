"""Further exports hold the same weights as the eager model, are made once, and say why when they cannot be."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import exports
from harness.files import sha256_file
from harness.model_spec import ModelSpec, Training
from harness.models import ModelFiles, train_and_export
from harness.runners import RUNNERS
from harness.suite import InputSpec

SPEC = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=50))
BRANCH = ModelSpec("B", (2, 8, 8, 1), kind="mlp_branch", training=Training(steps=50))
CHAIN = ModelSpec("C", kind="op_chain", length=1000, size=3)
CONV = ModelSpec("V", kind="conv_bn_relu", image=(32, 32))
KINDS = {s.kind: s for s in (SPEC, BRANCH, CHAIN, CONV)}
ALL_KINDS = ("model.scripted.pt", "model.scripted.ptl", "model.flatbuffer.ptl")
# static int8 against fp32 over inputs uniform in [-10, 10] (largest |error| measured at 224×224: fbgemm 0.14,
# qnnpack 2.7 where its histogram observer clips the rare largest outputs); atol, rtol
INT8_TOLERANCE = {"model.int8.pt": (0.3, 0.0), "model.int8-qnnpack.pt": (3.5, 0.0)}


def _calibration(spec: ModelSpec, k: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-10, 10, (k, spec.sample_size)).astype(np.float32)


def _made(spec: ModelSpec, tmp_path: Path, *names: str) -> ModelFiles:
    files = train_and_export(spec, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(names, spec, files, _calibration(spec))
    assert reason is None, reason
    return files


def _per_sample(run: Callable[[torch.Tensor], torch.Tensor], spec: ModelSpec, xs: torch.Tensor) -> torch.Tensor:
    """One call per sample, shaped as the runners shape it ([n] for MLP kinds and the chain, [1, C, H, W])."""
    with torch.no_grad():
        return torch.stack([run(x.reshape(spec.input_shape(1))).reshape(spec.output_shape) for x in xs])


def load_export(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Each export loaded the way its runner loads it."""
    if path.suffix == ".pt":
        return torch.jit.load(str(path))
    if path.suffix == ".ptl":
        from torch.jit.mobile import _load_for_lite_interpreter

        return _load_for_lite_interpreter(str(path))
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(None, {"x": x.reshape(-1, x.shape[-1]).numpy()})[0])
    raise AssertionError(f"no loader for {path.name}: add one here")


@pytest.mark.parametrize(
    ("kind", "name"),
    [(k, n) for k in ("mlp", "mlp_branch") for n in (*ALL_KINDS, "model.frozen.pt", "model.onnx")]
    + [("mlp", "model.columns.pt")]
    + [("conv_bn_relu", n) for n in (*ALL_KINDS, "model.fused.pt", "model.cl.pt")],
)
def test_export_matches_the_eager_model(tmp_path: Path, kind: str, name: str) -> None:
    """Made once, then agreeing with eager per sample (mlp_branch: on both sides of its branch)."""
    spec = KINDS[kind]
    files = _made(spec, tmp_path, name)
    mtime = (files.dir / name).stat().st_mtime_ns
    assert exports.ensure_exports((name,), spec, files, _calibration(spec)) is None
    assert (files.dir / name).stat().st_mtime_ns == mtime
    xs = torch.from_numpy(_calibration(spec, 40 if kind == "conv_bn_relu" else 200, seed=3))
    if kind == "mlp_branch":
        assert 0 < int((xs.sum(1) > 0).sum()) < len(xs)
    run = load_export(files.dir / name)
    if name == "model.cl.pt":
        run0, run = run, lambda x: run0(x.contiguous(memory_format=torch.channels_last))
    want = _per_sample(exports.eager_model(spec, files), spec, xs)
    got = _per_sample(run, spec, xs)
    scale = float(want.max() - want.min())
    if name in ("model.cl.pt", "model.fused.pt"):
        # NHWC kernels may sum in another order (bit-equal at 224×224 here, not at 32×32); fused: BN folded in
        torch.testing.assert_close(got, want, atol=1e-5 * scale, rtol=0)
    else:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_onnx_takes_any_batch(tmp_path: Path) -> None:
    files = _made(SPEC, tmp_path, "model.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(files.dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["n", SPEC.layers[0]]
    xs = _calibration(SPEC, 37)
    with torch.no_grad():
        want = exports.eager_model(SPEC, files)(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(session.run(None, {"x": xs})[0], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 4096])
def test_columns_layout_is_the_same_function_at_any_batch(tmp_path: Path, batch: int) -> None:
    """Traced at the seed's [2], NetColumns still takes [batch, 2] and gives [batch, 1], row-major."""
    files = _made(SPEC, tmp_path, "model.columns.pt")
    columns = torch.jit.load(str(files.dir / "model.columns.pt"))
    assert "aten::addmm" in str(columns.graph) and "aten::linear" not in str(columns.graph)
    xs = torch.from_numpy(_calibration(SPEC, batch, seed=5))
    with torch.no_grad():
        got = columns(xs)
        want = exports.eager_model(SPEC, files)(xs)
    assert got.shape == (batch, 1) and got.is_contiguous()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_op_chain_script_keeps_the_loop_and_trace_unrolls_it(tmp_path: Path) -> None:
    """Seed 002: scripting keeps prim::Loop, tracing records 1000 adds; on integers all agree exactly."""
    files = _made(CHAIN, tmp_path, "model.scripted.pt", "model.frozen.pt", "model.scripted.ptl")
    traced = torch.jit.load(str(files.torchscript))
    scripted = torch.jit.load(str(files.dir / "model.scripted.pt"))
    assert "prim::Loop" in str(scripted.graph) and "prim::Loop" not in str(traced.graph)
    assert str(traced.graph).count("aten::add") == CHAIN.length
    xs = torch.from_numpy(np.random.default_rng(4).integers(-1000, 1000, (50, CHAIN.size)).astype(np.float32))
    want = _per_sample(exports.eager_model(CHAIN, files), CHAIN, xs)
    assert torch.equal(want, xs + CHAIN.length)
    for name in ("model.ts.pt", "model.scripted.pt", "model.frozen.pt", "model.scripted.ptl"):
        assert torch.equal(_per_sample(load_export(files.dir / name), CHAIN, xs), want), name


def test_scripted_branch_keeps_the_if(tmp_path: Path) -> None:
    files = _made(BRANCH, tmp_path, "model.scripted.pt")
    assert "prim::If" in str(torch.jit.load(str(files.dir / "model.scripted.pt")).graph)
    assert "prim::If" not in str(torch.jit.load(str(files.torchscript)).graph)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(INT8_TOLERANCE))
def test_static_int8_is_within_its_tolerance(tmp_path: Path, name: str) -> None:
    engine = "fbgemm" if name == "model.int8.pt" else "qnnpack"
    if engine not in torch.backends.quantized.supported_engines:
        files = train_and_export(CONV, InputSpec(count=10), tmp_path)
        reason = exports.ensure_exports((name,), CONV, files, _calibration(CONV))
        assert reason is not None and f"no quantized engine {engine}" in reason
        return
    files = _made(CONV, tmp_path, name)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine  # as the runner's qengine option does
    try:
        xs = torch.from_numpy(_calibration(CONV, 16, seed=5))
        got = _per_sample(load_export(files.dir / name), CONV, xs)
        graph = str(torch.jit.load(str(files.dir / name)).inlined_graph)
    finally:
        torch.backends.quantized.engine = previous
    want = _per_sample(exports.eager_model(CONV, files), CONV, xs)
    atol, rtol = INT8_TOLERANCE[name]
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)
    assert (got - want).abs().max() > 1e-4  # it is int8: the default tolerance would not hold
    assert "quantized::conv2d_relu" in graph


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_int8_is_made_again_for_other_calibration_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same model, another suite's inputs: static int8 observes those, not the first suite's (quietly: no damage)."""
    name = "model.int8.pt"
    files = _made(CONV, tmp_path, name)
    first = (files.dir / name).read_bytes()
    assert exports.ensure_exports((name,), CONV, files, _calibration(CONV)) is None
    assert (files.dir / name).read_bytes() == first  # same samples: kept
    other = _calibration(CONV, seed=9) * 0.1  # a narrower input range: other observed scales
    assert exports.ensure_exports((name,), CONV, files, other) is None
    assert (files.dir / name).read_bytes() != first
    assert exports.ensure_exports(("model.fused.pt",), CONV, files, other) is None
    mtime = (files.dir / "model.fused.pt").stat().st_mtime_ns
    assert exports.ensure_exports(("model.fused.pt",), CONV, files, _calibration(CONV)) is None
    assert (files.dir / "model.fused.pt").stat().st_mtime_ns == mtime  # no calibration in it: kept
    assert "warning:" not in capsys.readouterr().err


def test_channels_last_output_is_nhwc(tmp_path: Path) -> None:
    """The output comes back channels-last too: a runner copying raw memory must make it contiguous (NCHW) first."""
    files = _made(CONV, tmp_path, "model.cl.pt")
    x = torch.ones(CONV.input_shape(1)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = torch.jit.load(str(files.dir / "model.cl.pt"))(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()


def test_frozen_export_has_constants_only(tmp_path: Path) -> None:
    files = _made(SPEC, tmp_path, "model.frozen.pt")
    frozen = torch.jit.load(str(files.dir / "model.frozen.pt"))
    assert list(frozen.parameters()) == []  # weights folded into the graph
    assert "prim::GetAttr" not in str(frozen.graph)


def test_flatbuffer_is_another_format(tmp_path: Path) -> None:
    files = _made(CONV, tmp_path, "model.flatbuffer.ptl", "model.scripted.ptl")
    assert (files.dir / "model.flatbuffer.ptl").read_bytes()[4:8] == b"PTMF"  # FlatBuffer file identifier
    assert (files.dir / "model.scripted.ptl").read_bytes()[:2] == b"PK"  # the zip archive


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


@pytest.mark.parametrize(
    ("spec", "name", "reason"),
    [
        (SPEC, "model.fused.pt", "only for conv_bn_relu, not model kind mlp"),
        (SPEC, "model.int8.pt", "only for conv_bn_relu, not model kind mlp"),
        (CHAIN, "model.cl.pt", "only for conv_bn_relu or factory, not model kind op_chain"),
        (CONV, "model.onnx",
         "only for mlp or mlp_branch or factory or torchscript or pt2, not model kind conv_bn_relu"),
        (BRANCH, "model.columns.pt", "only for mlp, not model kind mlp_branch"),
    ],
)
def test_exports_for_another_kind_are_reasons(tmp_path: Path, spec: ModelSpec, name: str, reason: str) -> None:
    files = train_and_export(spec, InputSpec(count=10), tmp_path)
    got = exports.ensure_exports((name,), spec, files, _calibration(spec))
    assert got == f"cannot export {name}: this export is {reason}"
    assert not (files.dir / name).exists() and not list(files.dir.glob(".*.tmp"))


@pytest.mark.parametrize("spec", [SPEC, CONV])
def test_mobile_export_says_when_there_is_no_xnnpack(tmp_path: Path, spec: ModelSpec) -> None:
    import torch.backends.xnnpack

    files = train_and_export(spec, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(("model.mobile.pt",), spec, files, _calibration(spec))
    if torch.backends.xnnpack.enabled:
        assert reason is None
        torch.testing.assert_close(*(_per_sample(f, spec, torch.from_numpy(_calibration(spec))) for f in (
            load_export(files.dir / "model.mobile.pt"), exports.eager_model(spec, files))), atol=1e-5, rtol=1e-5)
    else:
        assert reason == ("cannot export model.mobile.pt: this torch build has no XNNPACK (torch.backends.xnnpack"
                          ".enabled is False): optimize_for_mobile cannot apply its XNNPACK rewrites")


def test_frozen_conv_says_why_it_cannot_be_saved(tmp_path: Path) -> None:
    """optimize_for_inference's MKLDNN constants do not load back (pytorch#81085): a reason, not a broken file."""
    files = train_and_export(CONV, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(("model.frozen.pt",), CONV, files, _calibration(CONV))
    if reason is None:  # a build without MKLDNN keeps plain constants
        torch.jit.load(str(files.dir / "model.frozen.pt"))
    else:
        assert "MKLDNN constants" in reason and not (files.dir / "model.frozen.pt").exists()


def test_unavailable_export_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object) -> None:
        raise exports.ExportUnavailable("this torch build lacks XNNPACK")

    monkeypatch.setitem(exports.EXPORTERS, "model.mobile.ptl", no)
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(("model.mobile.ptl",), SPEC, files, _calibration(SPEC))
    assert reason == "cannot export model.mobile.ptl: this torch build lacks XNNPACK"
    assert not (files.dir / "model.mobile.ptl").exists()


def _rewrite_record(files: ModelFiles, name: str, **changes: object) -> None:
    record = exports.record_path(files, name)
    record.write_text(json.dumps(json.loads(record.read_text()) | changes))


def _flip_byte(p: Path) -> None:
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))


# damage → (what to do to the export's folder, which file the warning names, what it says)
EXPORT_DAMAGES = {
    "altered": (lambda d: _flip_byte(d / "model.scripted.pt"), "model.scripted.pt",
                r"does not match its recorded sha256 \(altered or corrupt\)"),
    "truncated": (lambda d: (d / "model.scripted.pt").write_bytes((d / "model.scripted.pt").read_bytes()[:-10]),
                  "model.scripted.pt", r"has \d+ bytes, its record says \d+ \(truncated\?\)"),
    "missing": (lambda d: (d / "model.scripted.pt").unlink(), "model.scripted.pt", r"is missing"),
    "unreadable record": (lambda d: (d / ".model.scripted.pt.json").write_text("[1]"), ".model.scripted.pt.json",
                          r"is unreadable \(TypeError"),
}


@pytest.mark.parametrize("damage", sorted(EXPORT_DAMAGES))
def test_damaged_export_is_made_again(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """Derived, so remade with one warning line naming the bad file; then it matches its record and eager again."""
    name = "model.scripted.pt"
    files = _made(SPEC, tmp_path, name)
    capsys.readouterr()
    act, bad, pattern = EXPORT_DAMAGES[damage]
    act(files.dir)
    damaged = (files.dir / name).read_bytes() if (files.dir / name).exists() else b""
    assert exports.ensure_exports((name,), SPEC, files, _calibration(SPEC)) is None
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"warning: {re.escape(str(files.dir / bad))} {pattern}.*: making it again", lines[0]), lines
    assert exports.check_export(files, name) is None
    assert (files.dir / name).read_bytes() != damaged
    xs = torch.from_numpy(_calibration(SPEC, 50, seed=3))
    torch.testing.assert_close(_per_sample(load_export(files.dir / name), SPEC, xs),
                               _per_sample(exports.eager_model(SPEC, files), SPEC, xs), atol=1e-5, rtol=1e-5)
    mtime = (files.dir / name).stat().st_mtime_ns
    assert exports.ensure_exports((name,), SPEC, files, _calibration(SPEC)) is None  # healed: kept, quietly
    assert (files.dir / name).stat().st_mtime_ns == mtime and capsys.readouterr().err == ""


@pytest.mark.parametrize("stale", ["no record", "other weights"])
def test_export_without_a_matching_record_is_made_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          stale: str) -> None:
    """Not damage: made by an older harness (no record) or from other weights (the model was retrained)."""
    name = "model.scripted.pt"
    files = _made(SPEC, tmp_path, name)
    if stale == "no record":
        exports.record_path(files, name).unlink()
    else:
        _rewrite_record(files, name, state_sha256="0" * 64)
    mtime = (files.dir / name).stat().st_mtime_ns
    capsys.readouterr()
    assert exports.ensure_exports((name,), SPEC, files, _calibration(SPEC)) is None
    assert (files.dir / name).stat().st_mtime_ns != mtime and capsys.readouterr().err == ""
    assert exports.check_export(files, name) is None
    assert json.loads(exports.record_path(files, name).read_text())["state_sha256"] == sha256_file(files.state_dict)
