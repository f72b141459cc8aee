"""The registry of runners: one frozen entry per variant, the single place that says what exists.

An entry names its one template; the files every runner of its toolchain shares come from
harness/toolchains.py, the model file it loads from the model folder (made by harness/exports.py when it
is not one of the model's own files), and the job's `options` it sets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.model_spec import BUILTIN_KINDS, DTYPES, MLP_KINDS, USER_KINDS, ModelSpec
from harness.toolchains import TOOLCHAINS

MODEL_OWN_FILES = ("model.ts.pt", "model.state.pt", "weights.bin")  # harness/models.py makes these for every model
# Static int8 ConvBnReLU (inputs in [-1, 1], outputs 0-1.26): fbgemm's largest error measured was 0.014
# over the calibration images and 0.0125 over 8 others; 0.1 leaves a wide margin and still fails a wrong
# weight or layer (errors of the output's own size).
INT8_CONV_TOLERANCE = (0.1, 0.05)
# qnnpack's default observer (HistogramObserver) sets an output scale that clips the largest outputs: up
# to 0.277 (calibration) and 0.183 (other images) off, on 11 of 3.9 M values; mean error 0.0007.
INT8_QNNPACK_TOLERANCE = (0.3, 0.05)
MODEL_MODULE = ("python/model.py.j2", "model.py")  # the suite's model as Python source (eager-based runners)
TORCH_COMMON = ("cpp/torch_common.hpp", "torch_common.hpp")  # what the libtorch C++ runners share


@dataclass(frozen=True, kw_only=True)
class Runner:
    """One way of calling the model: a language, a method, the template that makes it, its defaults."""

    id: str
    language: str
    method: str
    toolchain: str  # a key of harness/toolchains.py's TOOLCHAINS: what must be installed to build it
    template: str  # its own source, rendered to the toolchain's main file
    grad_mode: str  # the default grad mode (the seed's setting)
    extra_files: tuple[tuple[str, str], ...] = ()  # further shared files it is built with
    block: int = 1  # calls per clock read; >1 only where a clock read costs over 1 % of a call
    uses_torch: bool = True
    torchscript: bool = False  # loads TorchScript (deprecated in torch 2.13): the report says so at its rows
    seed_seconds: float | None = None  # BRIEF.md 000: seconds for 1M calls, for the report's seed column
    tolerance: tuple[float, float] | None = None  # (atol, rtol) for its outputs; None: verify.ATOL, verify.RTOL
    # the file (in the model folder) it loads, the job's `model_file`; "{batch}" in it stands for the call's batch
    # size, for exports made for one exact input shape (an AOTInductor package per batch size)
    model_file: str = "model.ts.pt"
    model_kinds: tuple[str, ...] = BUILTIN_KINDS  # the model kinds it can run (docs/runner-contract.md)
    dtypes: tuple[str, ...] = DTYPES  # the input dtypes its runtime can make tensors of (a user's model)
    base: str | None = None  # a variant: runs the build of this runner, with its own model file and options
    options: tuple[tuple[str, Any], ...] = ()  # the job's `options` (docs/runner-contract.md)
    # a Java runner that needs a newer JDK than the runners' 17: built (for that release) and run on one at least
    # this new, the one on PATH if it is, else the newest installed; none here: its rows are SKIPPED saying so
    min_jdk: int | None = None

    @property
    def build_id(self) -> str:
        return self.base or self.id

    @property
    def templates(self) -> tuple[tuple[str, str], ...]:
        """(file under the repo, name in the build) of everything its source folder is rendered from."""
        chain = TOOLCHAINS[self.toolchain]
        return (*chain.common, *self.extra_files, (self.template, chain.main))

    def model_file_for(self, batch: int) -> str:
        """The model file of a call of `batch` samples."""
        return self.model_file.replace("{batch}", str(batch))

    def needs(self, batch: int, user: bool = False) -> tuple[str, ...]:
        """The export it loads beyond the model's own files at this batch size (harness/exports.py makes it).

        A user's model has no own files but its source: every file is made (or refused) as an export.
        """
        name = self.model_file_for(batch)
        return () if name in MODEL_OWN_FILES and not user else (name,)

    def cannot_run(self, model: ModelSpec) -> str | None:
        """Why this runner cannot run a user's model (its row is SKIPPED with this), or None."""
        if not model.is_user:
            return None
        if model.kind not in self.model_kinds:
            if self.model_file == "weights.bin":
                return ("it computes the model from a layer spec ([model] layers), which a user's model does not "
                        "have")
            if self.model_file == "model.state.pt" and "factory" in self.model_kinds:
                return "it needs the model's Python class, which a model file does not have: give a factory"
            return f"it runs the model kinds {', '.join(self.model_kinds)} only"
        for k, t in enumerate(model.tensors):
            if t.dtype not in self.dtypes:
                return (f"input {k} is {t.dtype}, and this runtime makes tensors of {', '.join(self.dtypes)} only"
                        + (" (org.pytorch.Tensor has no bool dtype)" if self.toolchain == "java" else ""))
        return None


_ANY = (*BUILTIN_KINDS, *USER_KINDS)  # runs any model its export can be made from (else SKIPPED with why)
_FACTORY = (*BUILTIN_KINDS, "factory")  # needs the model's Python class: a factory gives one, a file does not
_JAVA_DTYPES = tuple(d for d in DTYPES if d != "bool")  # org.pytorch.Tensor.fromBlob has no bool

_BASE: tuple[Runner, ...] = (
    Runner(id="python-eager", language="Python", method="eager nn.Module, load_state_dict, model(x) per sample",
           toolchain="python", template="python/eager.py.j2", extra_files=(MODEL_MODULE,), grad_mode="default",
           seed_seconds=124.0, model_file="model.state.pt", model_kinds=_FACTORY),
    Runner(id="python-torchscript", language="Python", method="traced TorchScript, torch.jit.load, model(x) per sample",
           torchscript=True,
           toolchain="python", template="python/torchscript.py.j2", grad_mode="default", seed_seconds=54.0,
           options=(("dump_graph", True),), model_kinds=_ANY),
    Runner(id="java-torchscript", language="Java",
           method="pytorch_java_only Module.forward, Tensor.fromBlob(float[]) per call",
           torchscript=True,
           toolchain="java", template="java/runner/FromBlob.java.j2", grad_mode="inference", seed_seconds=35.0,
           model_kinds=_ANY, dtypes=_JAVA_DTYPES),
    Runner(id="java-torchscript-reuse", language="Java",
           method="pytorch_java_only Module.forward, one direct buffer refilled per call",
           toolchain="java", template="java/runner/ReuseBuffer.java.j2", torchscript=True, grad_mode="inference",
           model_kinds=_ANY, dtypes=_JAVA_DTYPES),
    Runner(id="cpp-torchscript", language="C++", method="torch::jit::load, from_blob per call, forward",
           torchscript=True,
           toolchain="cmake", template="cpp/torchscript.cpp.j2", extra_files=(TORCH_COMMON,), grad_mode="default",
           seed_seconds=44.0, model_kinds=_ANY),
    Runner(id="cpp-api", language="C++", method="torch::nn::Module generated from the layer spec, InferenceMode",
           toolchain="cmake", template="cpp/api.cpp.j2", extra_files=(TORCH_COMMON,), grad_mode="inference",
           seed_seconds=9.0, model_file="weights.bin", model_kinds=("mlp",)),
    Runner(id="cpp-raw", language="C++", method="plain loops over the same weights, no libtorch (the floor)",
           toolchain="cmake", template="cpp/raw.cpp.j2", grad_mode="n/a", block=1000, uses_torch=False,
           model_file="weights.bin", model_kinds=("mlp",)),
    Runner(id="python-torchscript-scripted", language="Python",
           method="scripted TorchScript (torch.jit.script), torch.jit.load",
           toolchain="python", template="python/scripted.py.j2", torchscript=True, grad_mode="default",
           model_file="model.scripted.pt", options=(("dump_graph", True),), model_kinds=_ANY),
    Runner(id="python-torchscript-frozen", language="Python",
           method="scripted + jit.freeze + optimize_for_inference, torch.jit.load",
           torchscript=True,
           toolchain="python", template="python/frozen.py.j2", grad_mode="default", model_file="model.frozen.pt",
           options=(("dump_graph", True),), model_kinds=_ANY),
    Runner(id="python-lite", language="Python",
           method="lite interpreter: scripted model as .ptl, _load_for_lite_interpreter",
           torchscript=True,
           toolchain="python", template="python/lite.py.j2", grad_mode="default", model_file="model.scripted.ptl",
           model_kinds=_ANY),
    Runner(id="python-compile", language="Python",
           method="torch.compile (inductor) of the eager module, compiled in the first call",
           toolchain="python", template="python/compile.py.j2", extra_files=(MODEL_MODULE,), grad_mode="default",
           model_file="model.state.pt", model_kinds=_FACTORY),
    # int8 weights and per-call int8 activations: on MyNN over 200,000 inputs (outputs up to |20|) the
    # largest error measured was 0.235, ~1 % of the output range, and it does not shrink with |ref|
    # (near-zero outputs err as much). atol 0.5 leaves 2x margin for other seeds and specs; a wrong layer
    # or weight still errs by whole units and fails.
    Runner(id="python-quant-dynamic", language="Python",
           method="quantize_dynamic: int8 Linear weights, built at load, sample as [1, n]",
           toolchain="python", template="python/quant_dynamic.py.j2", extra_files=(MODEL_MODULE,),
           grad_mode="default", tolerance=(0.5, 0.02), model_file="model.state.pt", model_kinds=MLP_KINDS),
    Runner(id="python-onnxruntime", language="Python",
           method="ONNX export, onnxruntime.InferenceSession.run on numpy, no torch",
           toolchain="python", template="python/onnxruntime.py.j2", grad_mode="n/a", uses_torch=False,
           model_file="model.onnx", model_kinds=("mlp", *USER_KINDS)),
    # torch.export + AOTInductor: what PyTorch offers now in place of TorchScript. Each package is made for
    # the call's exact input shape (harness/exports.py), one per batch size; the -dynamic variants load one
    # made with a dynamic batch dimension.
    Runner(id="python-export", language="Python",
           method="torch.export ExportedProgram (exact shape), torch.export.load(...).module(), model(x) per sample",
           toolchain="python", template="python/export.py.j2", grad_mode="default",
           model_file="model.b{batch}.exported.pt2", model_kinds=_ANY),
    Runner(id="python-aoti", language="Python",
           method="AOTInductor package (exact shape), torch._inductor.aoti_load_package, package(x) per sample",
           toolchain="python", template="python/aoti.py.j2", grad_mode="default", model_file="model.b{batch}.pt2",
           model_kinds=_ANY),
    Runner(id="cpp-aoti", language="C++",
           method="AOTInductor package (exact shape), AOTIModelPackageLoader::run, from_blob per call, InferenceMode",
           toolchain="cmake", template="cpp/aoti.cpp.j2", extra_files=(TORCH_COMMON,), grad_mode="inference",
           # ~1.5 µs a call: one clock read (~25 ns) would be 1.7 %
           model_file="model.b{batch}.pt2", block=10, model_kinds=_ANY),
    # AOTInductor's minimal ArrayRef interface: a package compiled with aot_inductor.use_minimal_arrayref_interface
    # (and allow_stack_allocation), called through the model .so's own C entry point instead of the loader
    Runner(id="cpp-aoti-minimal", language="C++",
           method="AOTInductor package compiled with use_minimal_arrayref_interface (exact shape): its model .so "
                  "extracted from the .pt2 with libtorch's zip reader and dlopen'ed, AOTInductorModelCreateV2, then "
                  "AOTInductorModelRunMinimalArrayrefInterfaceV2 per call on AOTInductorArrayRefTensor descriptors "
                  "(no tensor handles; extern \"C\" in the generated .so, not a documented public API)",
           toolchain="cmake", template="cpp/aoti_minimal.cpp.j2", extra_files=(TORCH_COMMON,), grad_mode="inference",
           # well under cpp-aoti's ~1.5 µs a call: one clock read (~25 ns) would be several %
           model_file="model.minimal.b{batch}.pt2", block=100, model_kinds=_ANY),
    # cpp-aoti-minimal's package and entry point from Python: one call into a C extension of its own per call
    Runner(id="python-aoti-minimal", language="Python",
           method="AOTInductor package compiled with use_minimal_arrayref_interface (exact shape) through the C "
                  "extension python/aoti_minimal_ext.c (compiled with cc at build time): its model .so extracted "
                  "from the .pt2 with zipfile and dlopen'ed, AOTInductorModelCreateV2 once; per call one extension "
                  "call, model.run(slot), which calls AOTInductorModelRunMinimalArrayrefInterfaceV2 on the slot's "
                  "AOTInductorArrayRefTensor descriptors (made once over the inputs' rows, buffer protocol) and "
                  "copies the outputs into the slot's float32 row, returning its torch view; the GIL held "
                  "(extern \"C\" in the generated .so, not a documented public API)",
           toolchain="python-ext", template="python/aoti_minimal.py.j2",
           extra_files=(("python/aoti_minimal_ext.c", "aoti_minimal_ext.c"),), grad_mode="inference",
           # ~0.1 µs a call: one clock read from Python (~60 ns) would be over half of it
           model_file="model.minimal.b{batch}.pt2", block=100, model_kinds=_ANY),
    # Java beyond TorchScript (issue 13): ONNX Runtime's own Java API, and AOTInductor through the bridge
    Runner(id="java-onnxruntime", language="Java",
           method="ONNX Runtime's Java API, OrtSession.run on one direct buffer refilled per call, "
                  "output pinned, no libtorch",
           toolchain="java", template="java/runner/OnnxRuntime.java.j2", grad_mode="n/a", uses_torch=False,
           model_file="model.onnx", model_kinds=("mlp", *USER_KINDS)),
    Runner(id="java-aoti", language="Java",
           method="AOTInductor package through the bridge's AotiModel: AOTIModelPackageLoader::run, "
                  "one direct buffer refilled per call",
           toolchain="java", template="java/runner/Aoti.java.j2", grad_mode="inference",
           extra_files=(("java/bridge/java/bridge/AotiModel.java", "src/main/java/bridge/AotiModel.java"),),
           # exported for the row's exact input shape (harness/exports.py); ~1.5 µs a call: one clock read
           # (~25 ns) would be over 1 %
           model_file="model.b{batch}.pt2", block=10, model_kinds=_ANY),
    # the same package through the Foreign Function & Memory API (java.lang.foreign, final in JDK 22): downcalls
    # into the package's model .so and libtorch's C shim, no JNI code of ours; InferenceMode has no C entry point
    Runner(id="java-aoti-ffm", language="Java",
           method="AOTInductor package through FFM downcalls (JDK 22+), each Linker.Option.critical(false): its model "
                  ".so extracted and opened, AOTInductorModelContainerCreateWithDevice once; per call the input "
                  "copied into a native segment bound once, then aoti_torch_new_tensor_handle per input, "
                  "AOTInductorModelContainerRun, aoti_torch_get_data_ptr and aoti_torch_delete_tensor_object per "
                  "output",
           toolchain="java", template="java/runner/AotiFfm.java.j2", grad_mode="no_grad",
           # ~1.5 µs a call, as java-aoti: one clock read (~25 ns) would be over 1 %
           model_file="model.b{batch}.pt2", block=10, model_kinds=_ANY, min_jdk=22),
    # cpp-aoti-minimal's package and entry point from Java, through FFM: one downcall per call, no tensor handles
    Runner(id="java-aoti-minimal-ffm", language="Java",
           method="AOTInductor package compiled with use_minimal_arrayref_interface (exact shape) through FFM "
                  "(JDK 22+): its model .so extracted from the .pt2 with java.util.zip and dlopen'ed, "
                  "AOTInductorModelCreateV2 once; per call the input copied into a native segment, then one "
                  "downcall, AOTInductorModelRunMinimalArrayrefInterfaceV2, linked Linker.Option.critical(false) "
                  "(no heap segment: the descriptors hold native pointers), on AOTInductorArrayRefTensor "
                  "descriptors laid out once in native memory, the output floats read from the .so's buffer "
                  "(extern \"C\" in the generated .so, not a documented public API)",
           toolchain="java", template="java/runner/AotiMinimalFfm.java.j2", grad_mode="no_grad",
           # cpp-aoti-minimal's block: well under a µs a call, one clock read (~25 ns) would be several %
           model_file="model.minimal.b{batch}.pt2", block=100, model_kinds=_ANY, min_jdk=22),
)


def _variant(*, base: str, id: str, method: str, **changes: Any) -> Runner:  # noqa: A002 - the entry's field
    """A runner that reuses `base`'s build with another model file or options (no new source to compile)."""
    b = next(r for r in _BASE if r.id == base)
    return dataclasses.replace(b, id=id, method=method, base=base, seed_seconds=None, **changes)


_CONV = ("conv_bn_relu",)
_VARIANTS: tuple[Runner, ...] = (
    # seed 002: the TorchScript CPU fuser on (off by default on CPU)
    _variant(base="python-torchscript", id="python-torchscript-nnc",
             method="traced TorchScript, CPU fuser (NNC) switched on "
                    "(without LLVM its groups run on NNC's interpreter)",
             options=(("cpu_fuser", True), ("dump_graph", True))),
    # seed 003: the mobile recipe on ConvBnReLU, from Python and C++
    _variant(base="python-torchscript", id="python-torchscript-fused",
             method="fuse_modules(conv, bn, relu), traced",
             model_file="model.fused.pt", model_kinds=_CONV),
    _variant(base="python-torchscript", id="python-torchscript-int8",
             method="static int8 (fbgemm): fused, calibrated, converted",
             model_file="model.int8.pt", model_kinds=_CONV,
             options=(("qengine", "fbgemm"),), tolerance=INT8_CONV_TOLERANCE),
    _variant(base="python-torchscript", id="python-torchscript-int8-qnnpack",
             method="static int8 (qnnpack engine)",
             model_file="model.int8-qnnpack.pt", model_kinds=_CONV,
             options=(("qengine", "qnnpack"),), tolerance=INT8_QNNPACK_TOLERANCE),
    _variant(base="python-torchscript", id="python-torchscript-cl",
             method="channels_last model, input converted per call",
             model_file="model.cl.pt", model_kinds=(*_CONV, "factory"),
             options=(("channels_last", True),)),
    _variant(base="python-torchscript", id="python-torchscript-mobile",
             method="optimize_for_mobile (scripted)",
             model_file="model.mobile.pt", model_kinds=_CONV),
    _variant(base="python-lite", id="python-lite-flatbuffer",
             method="lite interpreter, FlatBuffer .ptl",
             model_file="model.flatbuffer.ptl"),
    # the bridge's cost: C++ TorchScript under Java's grad mode, so the two differ only in the crossing
    _variant(base="cpp-torchscript", id="cpp-torchscript-inference",
             method="torch::jit::load, from_blob per call, forward, under InferenceMode (as the Java bridge)",
             grad_mode="inference"),
    _variant(base="cpp-torchscript", id="cpp-torchscript-fused",
             method="fuse_modules(conv, bn, relu), traced, from C++",
             model_file="model.fused.pt", model_kinds=_CONV),
    _variant(base="cpp-torchscript", id="cpp-torchscript-int8",
             method="static int8 (fbgemm), from C++",
             model_file="model.int8.pt", model_kinds=_CONV,
             options=(("qengine", "fbgemm"),), tolerance=INT8_CONV_TOLERANCE),
    _variant(base="cpp-torchscript", id="cpp-torchscript-cl",
             method="channels_last model, input converted per call, from C++",
             model_file="model.cl.pt", model_kinds=(*_CONV, "factory"),
             options=(("channels_last", True),)),
    # the batch's layout: samples as columns (W·Xᵀ + b), so each matrix product has the batch as its wide side
    _variant(base="python-torchscript", id="python-torchscript-columns",
             method="traced NetColumns: W·Xᵀ + b, samples as columns",
             model_file="model.columns.pt", model_kinds=("mlp",)),
    _variant(base="java-torchscript-reuse", id="java-torchscript-reuse-cl",
             method="channels_last model, one direct buffer behind Tensor.fromBlob(..., CHANNELS_LAST) "
                    "refilled from NCHW to NHWC per call",
             model_file="model.cl.pt", model_kinds=(*_CONV, "factory"),
             options=(("channels_last", True),)),
    # TorchScript's graph optimizer on in the bridge, as C++ and Python run it: the official bridge turns it off
    # around every call (JITCallGuard), which leaves forward about 1 µs slower on MyNN
    _variant(base="java-torchscript-reuse", id="java-torchscript-optimized",
             method="pytorch_java_only Module.forward, one direct buffer refilled per call, TorchScript's graph "
                    "optimizer on (the official bridge turns it off per call)",
             options=(("graph_optimizer", True),)),
    _variant(base="java-torchscript-reuse", id="java-torchscript-reuse-columns",
             method="one direct buffer refilled per call, traced NetColumns (samples as columns)",
             model_file="model.columns.pt", model_kinds=("mlp",)),
    _variant(base="cpp-torchscript", id="cpp-torchscript-columns",
             method="traced NetColumns (samples as columns), from C++",
             model_file="model.columns.pt", model_kinds=("mlp",)),
    _variant(base="cpp-aoti", id="cpp-aoti-columns",
             method="AOTInductor package of NetColumns (samples as columns, exact shape), from C++",
             model_file="model.columns.b{batch}.pt2", model_kinds=("mlp",)),
    _variant(base="cpp-api", id="cpp-api-columns",
             method="the generated module computing W·Xᵀ + b, samples as columns",
             options=(("layout", "columns"),)),
    _variant(base="python-aoti", id="python-aoti-loader",
             method="the same package's loader: package.loader.run([x])[0] per sample (not a documented public API)",
             # ~5 µs a call: one clock read from Python (~60 ns) would be over 1 %
             block=10, options=(("aoti_call", "run"),)),
    _variant(base="python-aoti", id="python-aoti-single",
             method="the loader's run([x])[0] on a package loaded with run_single_threaded=True "
                    "(a public argument; the call is not a documented public API)",
             block=10, options=(("aoti_call", "run"), ("aoti_single_threaded", True))),
    _variant(base="python-aoti", id="python-aoti-boxed",
             method="the loader's boxed_run([x])[0], which takes the input list over (not a documented public API)",
             block=10, options=(("aoti_call", "boxed"), ("aoti_single_threaded", True))),
    _variant(base="python-aoti", id="python-aoti-dynamic",
             method="AOTInductor package with a dynamic batch dimension, package(x) per sample as [batch, n]",
             model_file="model.dynamic.pt2", options=(("batch_dim", True),)),
    _variant(base="cpp-aoti", id="cpp-aoti-dynamic",
             method="AOTInductor package with a dynamic batch dimension, AOTIModelPackageLoader::run, as [batch, n]",
             model_file="model.dynamic.pt2", options=(("batch_dim", True),)),
    # seed 001: libtorch tips in C++
    _variant(base="cpp-api", id="cpp-api-vstack",
             method="batch built from one from_blob per sample joined by torch::vstack",
             options=(("input_build", "vstack"),)),
    _variant(base="cpp-api", id="cpp-api-mask",
             method="boolean-mask indexing x.index({\"...\", mask}) in every call",
             options=(("select", "mask"),)),
    _variant(base="cpp-api", id="cpp-api-index",
             method="the mask converted once to indices, x.index_select(-1, idx) per call",
             options=(("select", "index"),)),
)

RUNNERS: dict[str, Runner] = {r.id: r for r in (*_BASE, *_VARIANTS)}

GRAD_MODES = ("default", "no_grad", "inference")
