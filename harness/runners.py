"""The registry of runners: one frozen entry per variant, the single place that says what exists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.java_build import RUNNER_SOURCE, RUNNER_TEMPLATES

ALL_KINDS = ("mlp", "mlp_branch", "op_chain", "conv_bn_relu")
MLP_KINDS = ("mlp", "mlp_branch")
# Static int8 ConvBnReLU (inputs in [-1, 1], outputs 0-1.26): fbgemm's largest error measured was 0.014
# over the calibration images and 0.0125 over 8 others; 0.1 leaves a wide margin and still fails a wrong
# weight or layer (errors of the output's own size).
INT8_CONV_TOLERANCE = (0.1, 0.05)
# qnnpack's default observer (HistogramObserver) sets an output scale that clips the largest outputs: up
# to 0.277 (calibration) and 0.183 (other images) off, on 11 of 3.9 M values; mean error 0.0007.
INT8_QNNPACK_TOLERANCE = (0.3, 0.05)


@dataclass(frozen=True)
class Runner:
    """One way of calling the model: a language, a method, the templates that make it, its defaults."""

    id: str
    language: str
    method: str
    toolchain: str  # "python", "cmake" or "java": what must be installed to build it
    templates: tuple[tuple[str, str], ...]  # (template path under the repo, rendered file name)
    kind: str  # passed to the templates: which variant of the language's runner
    grad_mode: str  # the default grad mode (the seed's setting)
    block: int = 1  # calls per clock read; >1 only where a clock read costs over 1 % of a call
    uses_torch: bool = True
    seed_seconds: float | None = None  # BRIEF.md 000: seconds for 1M calls, for the report's seed column
    options: tuple[tuple[str, object], ...] = ()  # extra template values for this variant
    needs: tuple[str, ...] = ()  # further model exports it loads from the model folder (harness/exports.py)
    tolerance: tuple[float, float] | None = None  # (atol, rtol) for its outputs; None: verify.ATOL, verify.RTOL
    model_file: str = "model.ts.pt"  # the file (in the model folder) it loads: the job's `model_file`
    model_kinds: tuple[str, ...] = ALL_KINDS  # the model kinds it can run (docs/runner-contract.md)
    base: str | None = None  # a variant: runs the build of this runner, with its own model file and options
    job_options: tuple[tuple[str, object], ...] = ()  # the job's `options` (docs/runner-contract.md)

    @property
    def build_id(self) -> str:
        return self.base or self.id


_PY = (("python/runner_common.py", "runner_common.py"), ("docs/schemas/job.schema.json", "job.schema.json"))
_PY_MODEL = ("python/model.py.j2", "model.py")
_JAVA = RUNNER_TEMPLATES
_CPP = (  # the job schema is compiled into every C++ runner (cpp/CMakeLists.txt.j2), which checks each job against it
    ("cpp/CMakeLists.txt.j2", "CMakeLists.txt"), ("cpp/runner_common.hpp", "runner_common.hpp"),
    ("docs/schemas/job.schema.json", "job.schema.json"),
)
_CPP_TORCH = (*_CPP, ("cpp/torch_common.hpp", "torch_common.hpp"))  # the libtorch runners' shared part

_BASE: tuple[Runner, ...] = (
    Runner(
        "python-eager", "Python", "eager nn.Module, load_state_dict, model(x) per sample",
        "python", (*_PY, _PY_MODEL, ("python/eager.py.j2", "runner.py")), "eager", "default", seed_seconds=124.0,
        model_file="model.state.pt",
    ),
    Runner(
        "python-torchscript", "Python", "traced TorchScript, torch.jit.load, model(x) per sample",
        "python", (*_PY, ("python/torchscript.py.j2", "runner.py")), "torchscript", "default",
        seed_seconds=54.0, job_options=(("dump_graph", True),),
    ),
    Runner(
        "java-torchscript", "Java", "pytorch_java_only Module.forward, Tensor.fromBlob(float[]) per call",
        "java", (*_JAVA, ("java/runner/FromBlob.java.j2", RUNNER_SOURCE)), "fromblob", "inference",
        seed_seconds=35.0,
    ),
    Runner(
        "java-torchscript-reuse", "Java", "pytorch_java_only Module.forward, one direct buffer refilled per call",
        "java", (*_JAVA, ("java/runner/ReuseBuffer.java.j2", RUNNER_SOURCE)), "reuse", "inference",
    ),
    Runner(
        "cpp-torchscript", "C++", "torch::jit::load, from_blob per call, forward",
        "cmake", (*_CPP_TORCH, ("cpp/torchscript.cpp.j2", "main.cpp")), "torchscript", "default",
        seed_seconds=44.0,
    ),
    Runner(
        "cpp-api", "C++", "torch::nn::Module generated from the layer spec, InferenceMode",
        "cmake", (*_CPP_TORCH, ("cpp/api.cpp.j2", "main.cpp")), "api", "inference", seed_seconds=9.0,
        model_file="weights.bin", model_kinds=("mlp",),
    ),
    Runner(
        "cpp-raw", "C++", "plain loops over the same weights, no libtorch (the floor)",
        "cmake", (*_CPP, ("cpp/raw.cpp.j2", "main.cpp")), "raw", "n/a", block=1000, uses_torch=False,
        model_file="weights.bin", model_kinds=("mlp",),
    ),
    Runner(
        "python-torchscript-scripted", "Python", "scripted TorchScript (torch.jit.script), torch.jit.load",
        "python", (*_PY, ("python/scripted.py.j2", "runner.py")), "scripted", "default",
        needs=("model.scripted.pt",), model_file="model.scripted.pt", job_options=(("dump_graph", True),),
    ),
    Runner(
        "python-torchscript-frozen", "Python", "scripted + jit.freeze + optimize_for_inference, torch.jit.load",
        "python", (*_PY, ("python/frozen.py.j2", "runner.py")), "frozen", "default", needs=("model.frozen.pt",),
        model_file="model.frozen.pt", job_options=(("dump_graph", True),),
    ),
    Runner(
        "python-lite", "Python", "lite interpreter: scripted model as .ptl, _load_for_lite_interpreter",
        "python", (*_PY, ("python/lite.py.j2", "runner.py")), "lite", "default", needs=("model.scripted.ptl",),
        model_file="model.scripted.ptl",
    ),
    Runner(
        "python-compile", "Python", "torch.compile (inductor) of the eager module, compiled in the first call",
        "python", (*_PY, _PY_MODEL, ("python/compile.py.j2", "runner.py")), "compile", "default",
        model_file="model.state.pt",
    ),
    Runner(
        "python-quant-dynamic", "Python", "quantize_dynamic: int8 Linear weights, built at load, sample as [1, n]",
        "python", (*_PY, _PY_MODEL, ("python/quant_dynamic.py.j2", "runner.py")), "quant-dynamic", "default",
        # int8 weights and per-call int8 activations: on MyNN over 200,000 inputs (outputs up to |20|)
        # the largest error measured was 0.235, ~1 % of the output range, and it does not shrink with
        # |ref| (near-zero outputs err as much). atol 0.5 leaves 2x margin for other seeds and specs;
        # a wrong layer or weight still errs by whole units and fails.
        tolerance=(0.5, 0.02), model_file="model.state.pt", model_kinds=MLP_KINDS,
    ),
    Runner(
        "python-onnxruntime", "Python", "ONNX export, onnxruntime.InferenceSession.run on numpy, no torch",
        "python", (*_PY, ("python/onnxruntime.py.j2", "runner.py")), "onnxruntime", "n/a", uses_torch=False,
        needs=("model.onnx",), model_file="model.onnx", model_kinds=("mlp",),
    ),
)


def _variant(base: str, rid: str, method: str, **changes: object) -> Runner:
    """A runner that reuses `base`'s build with another model file or options (no new source to compile)."""
    b = next(r for r in _BASE if r.id == base)
    return dataclasses.replace(b, id=rid, method=method, base=base, seed_seconds=None, **changes)


_CONV = ("conv_bn_relu",)
_VARIANTS: tuple[Runner, ...] = (
    # seed 002: the TorchScript CPU fuser on (off by default on CPU)
    _variant("python-torchscript", "python-torchscript-nnc",
             "traced TorchScript, CPU fuser (NNC) switched on (without LLVM its groups run on NNC's interpreter)",
             job_options=(("cpu_fuser", True), ("dump_graph", True))),
    # seed 003: the mobile recipe on ConvBnReLU, from Python and C++
    _variant("python-torchscript", "python-torchscript-fused", "fuse_modules(conv, bn, relu), traced",
             needs=("model.fused.pt",), model_file="model.fused.pt", model_kinds=_CONV),
    _variant("python-torchscript", "python-torchscript-int8", "static int8 (fbgemm): fused, calibrated, converted",
             needs=("model.int8.pt",), model_file="model.int8.pt", model_kinds=_CONV,
             job_options=(("qengine", "fbgemm"),), tolerance=INT8_CONV_TOLERANCE),
    _variant("python-torchscript", "python-torchscript-int8-qnnpack", "static int8 (qnnpack engine)",
             needs=("model.int8-qnnpack.pt",), model_file="model.int8-qnnpack.pt", model_kinds=_CONV,
             job_options=(("qengine", "qnnpack"),), tolerance=INT8_QNNPACK_TOLERANCE),
    _variant("python-torchscript", "python-torchscript-cl", "channels_last model, input converted per call",
             needs=("model.cl.pt",), model_file="model.cl.pt", model_kinds=_CONV,
             job_options=(("channels_last", True),)),
    _variant("python-torchscript", "python-torchscript-mobile", "optimize_for_mobile (scripted)",
             needs=("model.mobile.pt",), model_file="model.mobile.pt", model_kinds=_CONV, job_options=()),
    _variant("python-lite", "python-lite-flatbuffer", "lite interpreter, FlatBuffer .ptl",
             needs=("model.flatbuffer.ptl",), model_file="model.flatbuffer.ptl"),
    _variant("cpp-torchscript", "cpp-torchscript-fused", "fuse_modules(conv, bn, relu), traced, from C++",
             needs=("model.fused.pt",), model_file="model.fused.pt", model_kinds=_CONV),
    _variant("cpp-torchscript", "cpp-torchscript-int8", "static int8 (fbgemm), from C++",
             needs=("model.int8.pt",), model_file="model.int8.pt", model_kinds=_CONV,
             job_options=(("qengine", "fbgemm"),), tolerance=INT8_CONV_TOLERANCE),
    _variant("cpp-torchscript", "cpp-torchscript-cl", "channels_last model, input converted per call, from C++",
             needs=("model.cl.pt",), model_file="model.cl.pt", model_kinds=_CONV,
             job_options=(("channels_last", True),)),
    # the batch's layout: samples as columns (W·Xᵀ + b), so each matrix product has the batch as its wide side
    _variant("python-torchscript", "python-torchscript-columns", "traced NetColumns: W·Xᵀ + b, samples as columns",
             needs=("model.columns.pt",), model_file="model.columns.pt", model_kinds=("mlp",), job_options=()),
    _variant("java-torchscript-reuse", "java-torchscript-reuse-columns",
             "one direct buffer refilled per call, traced NetColumns (samples as columns)",
             needs=("model.columns.pt",), model_file="model.columns.pt", model_kinds=("mlp",)),
    _variant("cpp-torchscript", "cpp-torchscript-columns", "traced NetColumns (samples as columns), from C++",
             needs=("model.columns.pt",), model_file="model.columns.pt", model_kinds=("mlp",)),
    _variant("cpp-api", "cpp-api-columns", "the generated module computing W·Xᵀ + b, samples as columns",
             job_options=(("layout", "columns"),)),
    # seed 001: libtorch tips in C++
    _variant("cpp-api", "cpp-api-vstack", "batch built from one from_blob per sample joined by torch::vstack",
             job_options=(("input_build", "vstack"),)),
    _variant("cpp-api", "cpp-api-mask", "boolean-mask indexing x.index({\"...\", mask}) in every call",
             job_options=(("select", "mask"),)),
    _variant("cpp-api", "cpp-api-index", "the mask converted once to indices, x.index_select(-1, idx) per call",
             job_options=(("select", "index"),)),
)

RUNNERS: dict[str, Runner] = {r.id: r for r in (*_BASE, *_VARIANTS)}

GRAD_MODES = ("default", "no_grad", "inference")
