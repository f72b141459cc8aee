"""Further exports of the model that some runners load (scripted, frozen, fused, int8, ONNX, .pt2, …).

Each export is made once, from the same state dict as every other form, beside the model's other
files, with a record of its sha256 (.NAME.json) so a damaged one is made again. An export this torch
build cannot make is reported as the reason its runners are skipped. torch.export and AOTInductor
specialise on the input's shape, so their files are made per batch size (`model.b{batch}.pt2`) and the
record keeps how long the export and the compile took.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from harness.files import sha256_file, write_json
from harness.model_spec import ModelSpec
from harness.models import (
    ModelFiles,
    atomic_path,
    file_problem,
    load_eager,
    load_net_class,
    trace,
    trace_example,
)


class ExportUnavailable(Exception):
    """This torch build cannot make the export (for example a backend it was built without)."""


# writes the export; may return how long its stages took ({"export": s, "compile": s}) for the record
Exporter = Callable[[torch.nn.Module, ModelSpec, Path, np.ndarray], dict[str, float] | None]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence deprecation notices ("consider ExecuTorch", …): measuring these paths is the point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "Please use quant_min and quant_max", UserWarning)
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
        yield


@contextmanager
def _torch_logs_quiet() -> Iterator[None]:
    """torch.export prints the graph and logs warnings when it refuses a model; the refusal is the message."""
    loggers = [logging.getLogger(n) for n in ("torch", *logging.root.manager.loggerDict) if n.startswith("torch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _only(model: ModelSpec, *kinds: str) -> None:
    if model.kind not in kinds:
        raise ExportUnavailable(f"this export is only for {' or '.join(kinds)}, not model kind {model.kind}")


def _save_traced(net: torch.nn.Module, model: ModelSpec, path: Path, example: object = None) -> None:
    """Traced exactly as model.ts.pt is, so only the transformation differs."""
    traced, _ = trace(net, trace_example(model) if example is None else example, strict=not model.is_user)
    traced.save(str(path))


def _script(net: torch.nn.Module, model: ModelSpec) -> torch.jit.ScriptModule:
    """torch.jit.script, which compiles Python source: an ExportedProgram's module is generated code that it
    cannot compile (it fails deep in torch/export/_unlift.py), so say so instead."""
    if model.kind == "pt2":
        raise ExportUnavailable("torch.jit.script compiles Python source, and the module an ExportedProgram "
                                "unflattens to is generated code it cannot compile: python-torchscript runs the "
                                "program traced, or give a factory FILE.py:FUNCTION")
    return torch.jit.script(net)


def _scripted(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    _script(net, model).save(str(path))


def _frozen(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """Scripted, frozen (parameters become constants) and optimize_for_inference'd: BRIEF.md's fastest Python form.

    For a convolution, optimize_for_inference swaps in MKLDNN weight constants that TorchScript saves but
    cannot load back (pytorch/pytorch#81085); saving a merely frozen model instead would mislabel the row.
    """
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(_script(net, model).eval()))
    if "prim::ConstantMKLDNNTensor" in str(frozen.graph):
        raise ExportUnavailable(
            "optimize_for_inference turned the weights into MKLDNN constants, which a saved TorchScript file "
            "cannot load back in this torch build (pytorch/pytorch#81085)"
        )
    frozen.save(str(path))


def _lite(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """The scripted module for the lite (mobile) interpreter: same model as model.scripted.pt, another format."""
    _save_lite(_script(net, model), path, flatbuffer=False)


def _flatbuffer(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """The lite-interpreter file in FlatBuffer format (BRIEF 003 tip 6: faster loads), checked to load back."""
    _save_lite(_script(net, model), path, flatbuffer=True)
    try:
        from torch.jit.mobile import _load_for_lite_interpreter

        with _quiet():
            _load_for_lite_interpreter(str(path))
    except (ImportError, RuntimeError) as exc:
        raise ExportUnavailable(f"this torch build cannot load a FlatBuffer lite-interpreter file: {exc}") from None


def _save_lite(scripted: torch.jit.ScriptModule, path: Path, flatbuffer: bool) -> None:
    save = getattr(scripted, "_save_for_lite_interpreter", None)
    if save is None:
        raise ExportUnavailable("this torch build has no lite interpreter (_save_for_lite_interpreter)")
    with _quiet():
        try:
            save(str(path), _use_flatbuffer=flatbuffer)
        except (RuntimeError, TypeError) as exc:
            what = "in FlatBuffer format" if flatbuffer else "for the lite interpreter"
            raise ExportUnavailable(f"this torch build cannot save {what}: {exc}") from None


def _fused(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """Conv+BN+ReLU folded into one module (BRIEF 003 step 1), traced like model.ts.pt."""
    _only(model, "conv_bn_relu")
    with _quiet():
        fused = torch.ao.quantization.fuse_modules(net.eval(), [["conv", "bn", "relu"]])
    _save_traced(fused, model, path)


def quantize_static(net: torch.nn.Module, model: ModelSpec, calibration: np.ndarray, engine: str) -> torch.nn.Module:
    """Post-training static int8 (BRIEF 003 step 2): fuse, observe the calibration samples, convert."""
    _only(model, "conv_bn_relu")
    supported = torch.backends.quantized.supported_engines
    if engine not in supported:
        raise ExportUnavailable(f"this torch build has no quantized engine {engine} (it has {', '.join(supported)})")
    if calibration.shape[0] == 0:
        raise ValueError("static quantization needs at least one calibration sample")
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        with _quiet():
            fused = torch.ao.quantization.fuse_modules(net.eval(), [["conv", "bn", "relu"]])
            fused.qconfig = torch.ao.quantization.get_default_qconfig(engine)
            prepared = torch.ao.quantization.prepare(fused)
            with torch.no_grad():
                prepared(torch.from_numpy(np.ascontiguousarray(calibration)).reshape(-1, *model.sample_shape))
            return torch.ao.quantization.convert(prepared)
    finally:
        torch.backends.quantized.engine = previous


def _int8(engine: str) -> Exporter:
    def export(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
        quantized = quantize_static(net, model, calibration, engine)
        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine  # the packed weights are the engine's own format
        try:
            with _quiet():
                _save_traced(quantized, model, path)
        finally:
            torch.backends.quantized.engine = previous

    export.__doc__ = f"Static int8 with the {engine} engine, traced; its runner sets the same engine before loading."
    return export


def _channels_last(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """Weights and the trace example in channels-last (NHWC) memory format (BRIEF 003 step 4)."""
    _only(model, "conv_bn_relu", "factory")
    if len(model.input_shape(1)) != 4:
        raise ExportUnavailable(f"channels_last needs a 4-D first input (N, C, H, W), not {list(model.input_shape(1))}")
    net = net.to(memory_format=torch.channels_last)
    examples = trace_example(model)
    if isinstance(examples, tuple):
        examples = (examples[0].contiguous(memory_format=torch.channels_last), *examples[1:])
    else:
        examples = examples.contiguous(memory_format=torch.channels_last)
    _save_traced(net, model, path, examples)


def _mobile(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """optimize_for_mobile (BRIEF 003 step 3). Without XNNPACK it fails with an internal assert, so say why first."""
    import torch.backends.xnnpack
    from torch.utils.mobile_optimizer import optimize_for_mobile

    if not torch.backends.xnnpack.enabled:
        raise ExportUnavailable(
            "this torch build has no XNNPACK (torch.backends.xnnpack.enabled is False): "
            "optimize_for_mobile cannot apply its XNNPACK rewrites"
        )
    try:
        with _quiet():
            optimized = optimize_for_mobile(_script(net, model))
    except RuntimeError as exc:
        raise ExportUnavailable(f"optimize_for_mobile failed in this torch build: {str(exc).splitlines()[0]}") from None
    optimized.save(str(path))


def _columns(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """NetColumns with the same state dict, traced like model.ts.pt."""
    _save_traced(_columns_net(net, model), model, path)


def _onnx(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """ONNX with input [N, n] (any batch); the TorchScript-based exporter, which needs no onnxscript.

    mlp_branch is exported scripted, so the ONNX graph keeps its If instead of the example's branch.
    """
    _only(model, "mlp", "mlp_branch", "factory", "torchscript", "pt2")
    try:
        import onnx
    except ImportError:
        raise ExportUnavailable("the onnx package is not installed: pip install onnx") from None
    with _quiet():
        if model.is_user:  # the given shapes exactly, one named input per tensor
            examples = trace_example(model)
            if model.kind == "pt2":  # an ExportedProgram's module refuses train(), which the exporter calls
                net, _ = trace(net, tuple(examples), strict=False)
            torch.onnx.export(net, tuple(examples), str(path), input_names=[f"x{k}" for k in range(len(examples))],
                              dynamo=False)
        else:
            module = torch.jit.script(net) if model.kind == "mlp_branch" else net
            torch.onnx.export(
                module, (torch.zeros(1, model.layers[0]),), str(path), input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False,
            )
    onnx.checker.check_model(str(path))


def _exported(net: torch.nn.Module, model: ModelSpec, batch: int, dynamic: bool,
              folder: Path) -> tuple[object, float]:
    """torch.export.export on an example of the call's exact shape, or with the batch dimension dynamic.

    Its refusal (data-dependent control flow raises GuardOnDataDependentSymNode, say) is the export's own
    message in the runner's SKIPPED row: torch.export refuses what a trace would record wrong. A user's
    ExportedProgram is used as it is: the module it unflattens to cannot be exported again (its eval()
    raises), and the program is what the user asked to have compiled.
    """
    if model.is_user and not dynamic:
        from harness import user_model

        if user_model.source_kind(model) == "exported":
            t0 = time.perf_counter()
            program = torch.export.load(str(folder / user_model.SOURCE_NAMES["exported"]))
            return program, time.perf_counter() - t0
    if model.is_user:
        if dynamic:
            raise ExportUnavailable("a user's model is exported for its given input shapes only, not a dynamic batch")
        examples = trace_example(model)
    else:
        shape = model.input_shape(2) if dynamic else model.input_shape(batch)  # 2: a dynamic dim's example ≠ 1
        examples = (torch.rand(shape, generator=torch.Generator().manual_seed(0)),)
    dims = ({0: torch.export.Dim("batch", min=1, max=1 << 20)},) if dynamic else None
    t0 = time.perf_counter()
    try:
        with _quiet(), _torch_logs_quiet():
            program = torch.export.export(net.eval(), tuple(examples), dynamic_shapes=dims)
    except Exception as exc:  # noqa: BLE001 - torch.export raises many types; its own words are the reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportUnavailable(f"torch.export.export refused the model: {type(exc).__name__}: {first}") from None
    return program, time.perf_counter() - t0


@contextmanager
def _as_pt2(path: Path) -> Iterator[Path]:
    """A temporary name ending in .pt2, which torch.export.save and AOTInductor insist on, copied to `path`."""
    with tempfile.TemporaryDirectory() as where:
        pt2 = Path(where) / "model.pt2"
        yield pt2
        shutil.copyfile(pt2, path)


def _program(batch: int) -> Exporter:
    def export(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> dict[str, float]:
        program, seconds = _exported(net, model, batch, dynamic=False, folder=path.parent)
        with _as_pt2(path) as pt2:
            torch.export.save(program, str(pt2))
        return {"export": seconds}

    export.__doc__ = f"The ExportedProgram for input shape of batch {batch} (torch.export.save), for Python."
    return export


def _columns_net(net: torch.nn.Module, model: ModelSpec) -> torch.nn.Module:
    """NetColumns (samples as columns, W·Xᵀ + b) with the eager module's state dict."""
    _only(model, "mlp")
    with tempfile.TemporaryDirectory() as where:
        columns = load_net_class(model, Path(where), columns=True)()
    columns.load_state_dict(net.state_dict())
    return columns.eval()


# The minimal ArrayRef interface (cpp-aoti-minimal): the .so also exports AOTInductorModelRunMinimalArrayrefInterfaceV2,
# which takes raw descriptors instead of tensor handles; stack allocation keeps its temporaries off the heap, and
# inductor turns it off by itself for a buffer that cannot live on the stack.
MINIMAL_ARRAYREF: dict[str, bool] = {"aot_inductor.use_minimal_arrayref_interface": True,
                                     "aot_inductor.allow_stack_allocation": True}
MINIMAL_ENTRY = b"AOTInductorModelRunMinimalArrayrefInterfaceV2"  # the symbol cpp-aoti-minimal calls


@contextmanager
def _array_ref_wrapper() -> Iterator[None]:
    """Inductor picks its CPU C++ wrapper class once per process, when it first registers its backends, from
    allow_stack_allocation at that moment (torch 2.13): in a process that compiled any other package first, the
    minimal config was silently ignored (a plain package). So the ArrayRef wrapper is put in place for this compile
    only, after registering under the default config, so the packages made before or after keep the plain one."""
    try:
        from torch._inductor.codegen import common
        from torch._inductor.codegen.cpp_wrapper_cpu_array_ref import CppWrapperCpuArrayRef

        common.init_backend_registration()
        saved = common.device_codegens["cpu"]
        swapped = dataclasses.replace(saved, cpp_wrapper_codegen=CppWrapperCpuArrayRef)
    except (ImportError, AttributeError, KeyError, TypeError) as exc:
        raise ExportUnavailable(f"this torch build's inductor has no ArrayRef C++ wrapper to select: {exc!r}") from None
    common.device_codegens["cpu"] = swapped
    try:
        yield
    finally:
        common.device_codegens["cpu"] = saved


def _has_minimal_entry(pt2: Path) -> bool:
    """Whether the package's model .so exports the minimal interface's entry point (its name is in the .so)."""
    with zipfile.ZipFile(pt2) as z:
        return any(n.endswith(".so") and MINIMAL_ENTRY in z.read(n) for n in z.namelist())


def _aoti(batch: int | None, columns: bool = False, minimal: bool = False) -> Exporter:
    def export(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> dict[str, float]:
        net = _columns_net(net, model) if columns else net
        program, seconds = _exported(net, model, batch or 1, dynamic=batch is None, folder=path.parent)
        t0 = time.perf_counter()
        # compile_threads=1: no worker pool left behind in the harness
        config = {"compile_threads": 1, **(MINIMAL_ARRAYREF if minimal else {})}
        wrapper = _array_ref_wrapper() if minimal else contextlib.nullcontext()
        with _as_pt2(path) as pt2, wrapper, torch._inductor.config.patch(config), _quiet():
            torch._inductor.aoti_compile_and_package(program, package_path=str(pt2))
            if minimal and not _has_minimal_entry(pt2):
                raise ExportUnavailable(f"the compiled package's model .so has no {MINIMAL_ENTRY.decode()}: this "
                                        "torch build ignored aot_inductor.use_minimal_arrayref_interface")
        return {"export": seconds, "compile": time.perf_counter() - t0}

    shape = "a dynamic batch dimension" if batch is None else f"the input shape of batch {batch}"
    of = "NetColumns (samples as columns)" if columns else "the model"
    if minimal:
        export.__doc__ = (f"torch.export + AOTInductor package (.pt2) of {of} for {shape} with the minimal ArrayRef "
                          "interface (use_minimal_arrayref_interface, allow_stack_allocation), for cpp-aoti-minimal.")
    else:
        export.__doc__ = (f"torch.export + AOTInductor package (.pt2) of {of} for {shape}, loaded from C++, Python "
                          "and Java.")
    return export


def _traced(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    """A user's model traced on its first inputs (the built-in kinds' model.ts.pt is made with the model)."""
    _save_traced(net, model, path)


def _state(net: torch.nn.Module, model: ModelSpec, path: Path, calibration: np.ndarray) -> None:
    raise ExportUnavailable("it needs the model's Python class, which a model file does not have: give a "
                            "factory FILE.py:FUNCTION that builds it")


# file name (relative to the model folder) → function writing it from the eager module in eval mode
EXPORTERS: dict[str, Exporter] = {
    "model.ts.pt": _traced,  # a user's model only: the built-in kinds make it with the model
    "model.state.pt": _state,  # a user's factory's state dict is made with the model
    "model.scripted.pt": _scripted,
    "model.frozen.pt": _frozen,
    "model.scripted.ptl": _lite,
    "model.flatbuffer.ptl": _flatbuffer,
    "model.onnx": _onnx,
    "model.fused.pt": _fused,
    "model.int8.pt": _int8("fbgemm"),
    "model.int8-qnnpack.pt": _int8("qnnpack"),
    "model.cl.pt": _channels_last,
    "model.mobile.pt": _mobile,
    "model.columns.pt": _columns,
    "model.dynamic.pt2": _aoti(None),
}
# exports made for one batch size: "{batch}" in the name (harness/runners.py's model_file) → exporter for it
PER_BATCH: dict[str, Callable[[int], Exporter]] = {
    "model.b{batch}.pt2": _aoti,
    "model.b{batch}.exported.pt2": _program,
    "model.columns.b{batch}.pt2": lambda batch: _aoti(batch, columns=True),
    "model.minimal.b{batch}.pt2": lambda batch: _aoti(batch, minimal=True),
}
_BATCH = re.compile(r"\.b([1-9][0-9]*)\.")


def exporter(name: str) -> Exporter:
    """The function that makes the export `name` (a KeyError for a name no exporter makes)."""
    if name in EXPORTERS:
        return EXPORTERS[name]
    found = _BATCH.search(name)
    if found is None:
        raise KeyError(name)
    return PER_BATCH[_BATCH.sub(".b{batch}.", name, count=1)](int(found.group(1)))


# exports whose content depends on the calibration samples: remade when a suite brings other samples
CALIBRATED = frozenset({"model.int8.pt", "model.int8-qnnpack.pt"})


def _warn(message: str) -> None:
    """One line on stderr: the cache healed itself, and the user should know which file was bad."""
    print(f"warning: {message}", file=sys.stderr)


def record_path(files: ModelFiles, name: str) -> Path:
    """The export's record beside it: its sha256 and size, and what it was made from."""
    return files.dir / f".{name}.json"


def eager_model(model: ModelSpec, files: ModelFiles) -> torch.nn.Module:
    """The module every export is made from: the eager one, or a user's model as its source gives it."""
    if not model.is_user:
        return load_eager(model, files)
    from harness import user_model

    if user_model.source_kind(model) == "aoti":
        raise ExportUnavailable("the model is an AOTInductor package, compiled code: only the AOTInductor runners "
                                "can load it, and nothing else can be made from it")
    return user_model.load(model, files.dir)


def _sources(files: ModelFiles, name: str, calibration: str) -> dict[str, str | None]:
    """What the export is made from: the state dict's bytes and, for static int8, the calibration samples."""
    made_from = files.source or files.state_dict
    return {"state_sha256": sha256_file(made_from), "calibration": calibration if name in CALIBRATED else None}


def facts(files: ModelFiles, names: list[str]) -> dict[str, dict[str, object]]:
    """What the run's report says of each export it used: size, when it was made, how long that took."""
    out: dict[str, dict[str, object]] = {}
    for name in names:
        try:
            kept = json.loads(record_path(files, name).read_text())
        except (OSError, ValueError):
            continue  # not made (its runner is skipped with the reason)
        out[name] = {"bytes": kept.get("bytes"), "made": kept.get("made"), "seconds": kept.get("seconds")}
    return out


def check_export(files: ModelFiles, name: str) -> str | None:
    """What is wrong with a made export against its record (missing, truncated, altered, unreadable record),
    naming the file, or None. Only reports: ensure_exports remakes it, as exports are derived."""
    record = record_path(files, name)
    try:
        kept = json.loads(record.read_text())
        return file_problem(files.dir / name, kept["sha256"], kept["bytes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{record} is unreadable ({exc!r})"


def _made_from(record: Path, sources: dict[str, str | None]) -> bool:
    """Whether the record says the export was made from these sources (an unreadable one says nothing)."""
    try:
        kept = json.loads(record.read_text())
        return all(kept.get(k) == v for k, v in sources.items())
    except (OSError, ValueError, AttributeError):
        return False


def ensure_exports(
    needs: tuple[str, ...], model: ModelSpec, files: ModelFiles, calibration: np.ndarray
) -> str | None:
    """Make the missing exports among `needs`; return None, or why one cannot be made here.

    `calibration` is float32 [k, sample_size], a few of the suite's inputs (static int8 observes them).
    An export made from other weights or calibration samples (another suite's inputs, same model) is made again,
    quietly; a truncated, altered or deleted one (checked against its record) too, with one warning line.
    """
    digest = hashlib.sha256(np.ascontiguousarray(calibration, dtype="<f4").tobytes()).hexdigest()
    for name in needs:
        path = files.dir / name
        if files.source is not None and path == files.source:
            continue  # a user's own file (or the factory's weights), vouched for by model.json
        record = record_path(files, name)
        with FileLock(str(files.dir / ".lock")):
            sources = _sources(files, name, digest)
            if record.exists():  # else never made, or its making was interrupted (the record is written last)
                problem = check_export(files, name)
                if problem is None and _made_from(record, sources):
                    continue
                if problem:
                    _warn(f"{problem}: making it again")
            record.unlink(missing_ok=True)  # no record ever vouches for a file made from other sources
            try:
                with atomic_path(path) as tmp:
                    seconds = exporter(name)(eager_model(model, files), model, tmp, calibration)
            except ExportUnavailable as exc:
                return f"cannot export {name}: {exc}"
            except Exception as exc:
                if not model.is_user:
                    raise  # a built-in model that does not export is the harness's bug
                first = (str(exc).strip().splitlines() or [""])[0]  # a user's model: the exporter's own words
                return f"cannot export {name}: {type(exc).__name__}: {first}"[:400]
            write_json(record, {"sha256": sha256_file(path), "bytes": path.stat().st_size, **sources,
                                "seconds": seconds, "made": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return None
