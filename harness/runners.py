"""The registry of runners: one frozen entry per variant, the single place that says what exists."""

from __future__ import annotations

from dataclasses import dataclass

from harness.java_build import JAVA_ARTIFACTS, RUNNER_TEMPLATES


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


_PY = (("python/runner_common.py", "runner_common.py"),)
_PY_MODEL = ("python/model.py.j2", "model.py")
_JAVA = RUNNER_TEMPLATES
_CPP = (("cpp/CMakeLists.txt.j2", "CMakeLists.txt"), ("cpp/runner_common.hpp", "runner_common.hpp"))

RUNNERS: dict[str, Runner] = {
    r.id: r
    for r in (
        Runner(
            "python-eager", "Python", "eager nn.Module, load_state_dict, model(x) per sample",
            "python", (*_PY, _PY_MODEL, ("python/eager.py.j2", "runner.py")), "eager", "default", seed_seconds=124.0,
        ),
        Runner(
            "python-torchscript", "Python", "traced TorchScript, torch.jit.load, model(x) per sample",
            "python", (*_PY, ("python/torchscript.py.j2", "runner.py")), "torchscript", "default",
            seed_seconds=54.0,
        ),
        Runner(
            "java-torchscript", "Java", "pytorch_java_only Module.forward, Tensor.fromBlob(float[]) per call",
            "java", _JAVA, "fromblob", "inference", seed_seconds=35.0,
            options=(("reuse_buffer", False), ("java_artifacts", JAVA_ARTIFACTS)),
        ),
        Runner(
            "java-torchscript-reuse", "Java", "pytorch_java_only Module.forward, one direct buffer refilled per call",
            "java", _JAVA, "reuse", "inference",
            options=(("reuse_buffer", True), ("java_artifacts", JAVA_ARTIFACTS)),
        ),
        Runner(
            "cpp-torchscript", "C++", "torch::jit::load, from_blob per call, forward",
            "cmake", (*_CPP, ("cpp/torchscript.cpp.j2", "main.cpp")), "torchscript", "default",
            seed_seconds=44.0,
        ),
        Runner(
            "cpp-api", "C++", "torch::nn::Module generated from the layer spec, InferenceMode",
            "cmake", (*_CPP, ("cpp/api.cpp.j2", "main.cpp")), "api", "inference", seed_seconds=9.0,
        ),
        Runner(
            "cpp-raw", "C++", "plain loops over the same weights, no libtorch (the floor)",
            "cmake", (*_CPP, ("cpp/raw.cpp.j2", "main.cpp")), "raw", "n/a", block=1000, uses_torch=False,
        ),
        Runner(
            "python-torchscript-scripted", "Python", "scripted TorchScript (torch.jit.script), torch.jit.load",
            "python", (*_PY, ("python/scripted.py.j2", "runner.py")), "scripted", "default",
            needs=("model.scripted.pt",),
        ),
        Runner(
            "python-torchscript-frozen", "Python", "scripted + jit.freeze + optimize_for_inference, torch.jit.load",
            "python", (*_PY, ("python/frozen.py.j2", "runner.py")), "frozen", "default", needs=("model.frozen.pt",),
        ),
        Runner(
            "python-lite", "Python", "lite interpreter: scripted model as .ptl, _load_for_lite_interpreter",
            "python", (*_PY, ("python/lite.py.j2", "runner.py")), "lite", "default", needs=("model.scripted.ptl",),
        ),
        Runner(
            "python-compile", "Python", "torch.compile (inductor) of the eager module, compiled in the first call",
            "python", (*_PY, _PY_MODEL, ("python/compile.py.j2", "runner.py")), "compile", "default",
        ),
        Runner(
            "python-quant-dynamic", "Python", "quantize_dynamic: int8 Linear weights, built at load, sample as [1, n]",
            "python", (*_PY, _PY_MODEL, ("python/quant_dynamic.py.j2", "runner.py")), "quant-dynamic", "default",
            # int8 weights and per-call int8 activations: on MyNN over 200,000 inputs (outputs up to |20|)
            # the largest error measured was 0.235, ~1 % of the output range, and it does not shrink with
            # |ref| (near-zero outputs err as much). atol 0.5 leaves 2x margin for other seeds and specs;
            # a wrong layer or weight still errs by whole units and fails.
            tolerance=(0.5, 0.02),
        ),
        Runner(
            "python-onnxruntime", "Python", "ONNX export, onnxruntime.InferenceSession.run on numpy, no torch",
            "python", (*_PY, ("python/onnxruntime.py.j2", "runner.py")), "onnxruntime", "n/a", uses_torch=False,
            needs=("model.onnx",),
        ),
    )
}

GRAD_MODES = ("default", "no_grad", "inference")
