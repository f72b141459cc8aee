"""Standalone programs for the verified rows: each path as code a user can copy, and a check on its figure.

A program loads the row's model file, makes the inputs from the run's inputs file, calls the model as a user
would, writes its outputs and times the plain loop a user would write (none of the harness's job parsing,
output keepers, bare passes or timing files). It is rendered from the row's own job (values the job schema
has checked) into <run>/programs/<row>/, built (C++: CMake against the wheel's libtorch, cached by a hash
of its sources; Java: a Maven project, the same way), run in as many fresh processes as the row's repeats, and its
outputs are checked against the reference.
Each program process follows a fresh process of the row's own runner on the row's own job (its files in
<run>/programs/<row>/paired/<k>/, never under raw/): the rows ran minutes earlier, and a VM whose speed modes
last minutes would make a figure from then compare modes, not code. The program's µs per call beside the paired
row processes' mean per call (each the fastest of its processes: a VM with speed modes puts whole processes in
one or the other) is the fidelity table of the report, the main run's row figure shown beside them: an
independent check of the harness's own figure, which the bare pass inside the runner cannot be.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from harness import java_build, jdks, judged_with, stats, verify
from harness.build import Built, build_runner, for_choice
from harness.cmake import BuildError, cmake_build, tree_hash
from harness.collect import tolerance_of
from harness.files import write_atomic, write_json
from harness.model_spec import ModelSpec, TensorSpec, Training
from harness.paths import BUILD_DIR, ROOT
from harness.run import child_env, own_temp, run_process, timeout_for
from harness.runners import MODEL_MODULE, RUNNERS
from harness.suite import InputSpec, LoadSpec, RunnerChoice, RunSpec, Suite

AGREE_PCT = 5.0  # a program's µs per call within ±5 % of its row's mean (the paired processes') agrees
PAIRED = "paired"  # programs/<row>/paired/<k>/: the row's own runner, run again beside the program's process k
# the job's files its runner writes (docs/runner-contract.md): a paired process writes them in its own folder
JOB_OUTPUTS = ("outputs", "timings", "warmup_timings", "artifacts", "result")
TIMEOUT_S = 600
DTYPE_BYTES = {"float32": 4, "float64": 8, "int64": 8, "int32": 4, "bool": 1}
_FIGURE = re.compile(r"^([0-9.]+) µs per call$", re.MULTILINE)


@dataclass(frozen=True)
class Program:
    """How one path is written as a program: its templates, how it is built and run, what it honours."""

    files: tuple[tuple[str, str], ...]  # (template under the repo, or a file copied as it is; name in its folder)
    build: str  # "python" (run with this interpreter), "cmake" or "maven"
    options: frozenset[str] = frozenset()  # the job options it writes out; a row with others gets none
    # Java on the JNI bridge (java/bridge): pytorch_java_only in its pom, run with -Djava.library.path pointing at
    # the bridge and the bridge's PYTORCH_JNI_* settings (threads, grad mode) from the row's job
    bridge: bool = False
    runner: str = ""  # Maven: the runner whose own dependencies its pom lists (java_build.RUNNER_DEPENDENCIES)
    # model kinds whose file takes [batch, *sample_shape] where the job's call shape has no batch axis (the
    # built-in MLP's ONNX export, as the java-onnxruntime runner feeds it)
    batch_axis: frozenset[str] = frozenset()
    uses_torch: bool = True  # C++: built against the wheel's libtorch (the raw loop is not)
    # Java through java.lang.foreign: run with native access granted and -Dlibtorch naming the wheel's libtorch_cpu.so
    ffm: bool = False
    min_jdk: int | None = None  # Java: compiled for this release, and built and run on a JDK at least this new


FFM_PROPERTY = "libtorch"  # the FFM program's system property naming libtorch_cpu.so


_PY_AOTI = Program((("python/programs/aoti.py.j2", "program.py"),), "python",
                   frozenset({"aoti_call", "aoti_single_threaded"}))
_CPP = "cpp/programs/CMakeLists.txt.j2"
_POM = ("java/programs/pom.xml.j2", "pom.xml")
_JAVA_MAIN = "src/main/java/Main.java"  # the default package: the class a user pastes, run as `Main`
# The registry's base runner (a variant shares its base's program) → its program.
PROGRAMS: dict[str, Program] = {
    # the model's own class beside it (python/model.py.j2, the eager runners' model.py)
    "python-eager": Program((("python/programs/eager.py.j2", "program.py"), MODEL_MODULE), "python"),
    # dump_graph only writes the graph out for the report; the call is the same without it
    "python-torchscript": Program((("python/programs/torchscript.py.j2", "program.py"),), "python",
                                  frozenset({"dump_graph"})),
    "python-aoti": _PY_AOTI,
    # dump_graph (as python-torchscript's) only writes the graph out for the report
    "python-torchscript-scripted": Program((("python/programs/scripted.py.j2", "program.py"),), "python",
                                           frozenset({"dump_graph"})),
    "python-torchscript-frozen": Program((("python/programs/frozen.py.j2", "program.py"),), "python",
                                         frozenset({"dump_graph"})),
    # both .ptl formats (python-lite-flatbuffer's too): one loader reads them
    "python-lite": Program((("python/programs/lite.py.j2", "program.py"),), "python"),
    # a fresh inductor cache per process, removed at exit, as the runner's
    "python-compile": Program((("python/programs/compile.py.j2", "program.py"), MODEL_MODULE), "python"),
    "python-quant-dynamic": Program((("python/programs/quant_dynamic.py.j2", "program.py"), MODEL_MODULE), "python"),
    # onnxruntime on numpy, torch never imported, as the runner
    "python-onnxruntime": Program((("python/programs/onnxruntime.py.j2", "program.py"),), "python"),
    "python-export": Program((("python/programs/export.py.j2", "program.py"),), "python"),
    # the runner's own C extension beside the script, which builds it with setuptools
    "python-aoti-minimal": Program((("python/programs/aoti_minimal.py.j2", "program.py"),
                                    ("python/aoti_minimal_ext.c", "aoti_minimal_ext.c")), "python"),
    "cpp-torchscript": Program((("cpp/programs/torchscript.cpp.j2", "main.cpp"), (_CPP, "CMakeLists.txt")), "cmake"),
    # batch_dim (cpp-aoti-dynamic's package, with a dynamic batch dimension): its LAYOUT's shapes have the batch axis
    "cpp-aoti": Program((("cpp/programs/aoti.cpp.j2", "main.cpp"), (_CPP, "CMakeLists.txt")), "cmake",
                        frozenset({"batch_dim"})),
    "cpp-aoti-minimal": Program((("cpp/programs/aoti_minimal.cpp.j2", "main.cpp"), (_CPP, "CMakeLists.txt")),
                                "cmake"),
    # generated from the layer spec, as the runners are: the built-in MLP only (their registry's model_kinds)
    "cpp-api": Program((("cpp/programs/api.cpp.j2", "main.cpp"), (_CPP, "CMakeLists.txt")), "cmake"),
    "cpp-raw": Program((("cpp/programs/raw.cpp.j2", "main.cpp"), (_CPP, "CMakeLists.txt")), "cmake",
                       uses_torch=False),
    "java-torchscript": Program((("java/programs/FromBlob.java.j2", _JAVA_MAIN), _POM), "maven", bridge=True,
                                runner="java-torchscript"),
    # graph_optimizer (java-torchscript-optimized): the bridge's PYTORCH_JNI_GRAPH_OPTIMIZER, set by run.sh
    "java-torchscript-reuse": Program((("java/programs/ReuseBuffer.java.j2", _JAVA_MAIN), _POM), "maven",
                                      frozenset({"graph_optimizer"}), bridge=True, runner="java-torchscript-reuse"),
    # bridge.AotiModel is the bridge's own Java class: the program holds a copy, as the runner does
    "java-aoti": Program((("java/programs/Aoti.java.j2", _JAVA_MAIN), _POM, *RUNNERS["java-aoti"].extra_files),
                         "maven", bridge=True, runner="java-aoti"),
    "java-aoti-ffm": Program((("java/programs/AotiFfm.java.j2", _JAVA_MAIN), _POM), "maven", runner="java-aoti-ffm",
                             ffm=True, min_jdk=RUNNERS["java-aoti-ffm"].min_jdk),
    "java-aoti-minimal-ffm": Program((("java/programs/AotiMinimalFfm.java.j2", _JAVA_MAIN), _POM), "maven",
                                     runner="java-aoti-minimal-ffm", ffm=True,
                                     min_jdk=RUNNERS["java-aoti-minimal-ffm"].min_jdk),
    "java-onnxruntime": Program((("java/programs/OnnxRuntime.java.j2", _JAVA_MAIN), _POM), "maven",
                                runner="java-onnxruntime", batch_axis=frozenset({"mlp"})),
}


def program_for(row: dict[str, Any], job: dict[str, Any]) -> Program | None:
    """The row's program, or None when its runner has none or its job sets an option the program lacks."""
    runner = RUNNERS.get(str(row["runner_id"]))
    program = PROGRAMS.get(runner.build_id) if runner else None
    if program is None or not set(job["options"]) <= program.options:
        return None
    return program


def layout(job: dict[str, Any], program: Program | None = None) -> str:
    """A C++ or Java program's LAYOUT file: "calls warmup warmup_s samples batch threads interop_threads" (Java:
    then the floats of one call's outputs, which bridge.AotiModel's output buffer holds), then per input tensor
    "dtype bytes_per_sample offset dims..." (its source is the same for every model, so one build serves all).
    warmup_s is the row's (0 for a job written before it existed, whose warm-up was its count alone)."""
    first = [job["calls"], job["warmup_calls"], repr(float(job.get("warmup_s", 0.0))),
             *(job[k] for k in ("input_count", "batch", "threads", "interop_threads"))]
    java = program is not None and program.build == "maven"
    lines = [" ".join(map(str, first + ([job["batch"] * job["output_size"]] if java else [])))]
    # batch_dim (cpp-aoti-dynamic): the package has a dynamic batch dimension, fed as the runner feeds it
    dynamic = bool(job.get("options", {}).get("batch_dim"))
    batched = program is not None and (job["model_kind"] in program.batch_axis
                                       or (dynamic and "batch_dim" in program.options))
    lines += [" ".join(map(str, (t["dtype"], math.prod(t["sample_shape"]) * DTYPE_BYTES[t["dtype"]], t["offset"],
                                 *([job["batch"], *t["sample_shape"]] if batched else t["shape"]))))
              for t in job["input_tensors"]]
    return "\n".join(lines) + "\n"


def bridge_env(program: Program, job: dict[str, Any]) -> dict[str, str]:
    """The bridge's settings for the row's job (PYTORCH_JNI_*, read when it loads): none for other programs."""
    if not program.bridge:
        return {}
    return java_build.java_env(job["threads"], job["interop_threads"], job["grad_mode"],
                               bool(job["options"].get("graph_optimizer", False)))


def _java_run_sh(program: Program, job: dict[str, Any], bridge: Path, jdk: jdks.Jdk | None) -> str:
    """run.sh's lines after `cd`: the Maven build, then java on the jar with its classpath (and the bridge); on
    the row's own JDK when it has one."""
    files = shlex.join([job["model_file"], job["inputs"], "layout.txt"])
    lines = ([f"export JAVA_HOME={shlex.quote(str(jdk.home))}  # the row's JDK, {jdk.runtime_version}"] if jdk else [])
    lines.append("mvn -B -q package")
    flag = ""
    if program.bridge:
        lines += ["# the JNI bridge's folder (libpytorch_jni.so, libfbjni.so: java/bridge, built by the harness), the",
                  "# natives the org.pytorch jar loads: java.library.path",
                  f"BRIDGE=\"${{BRIDGE:-{bridge}}}\"",
                  "# the bridge's threads and grad mode, read when it loads (java/README.md)",
                  "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in bridge_env(program, job).items())]
        flag = '-Djava.library.path="$BRIDGE" '
    if program.ffm:
        lines += ["# the torch wheel's libtorch_cpu.so, which the program opens and calls through java.lang.foreign",
                  f"LIBTORCH=\"${{LIBTORCH:-{java_build.libtorch_cpu()}}}\""]
        flag = '--enable-native-access=ALL-UNNAMED -D' + FFM_PROPERTY + '="$LIBTORCH" '
    java = '"$JAVA_HOME/bin/java"' if jdk else "java"
    lines.append(f'{java} {flag}-cp "target/program.jar:$(cat target/classpath.txt)" Main {files}')
    return "".join(line + "\n" for line in lines)


def render(program: Program, row: str, job: dict[str, Any], dest: Path, bridge: Path | None = None,
           jdk: jdks.Jdk | None = None, model: dict[str, Any] | None = None) -> None:
    """The program's files for this row's job, its LAYOUT (C++, Java) and run.sh (the command that runs it) in dest;
    `bridge`: the folder of the JNI bridge's libraries that a Java program's run.sh points java.library.path at,
    `jdk`: the row's own JDK (a suite entry's `jdk`), which its run.sh builds and runs with; `model`: the run's
    model as suite.json holds it, for a program written from it (the eager module, the C++ API's and raw loop's
    layers)."""
    from harness.render import environment  # jinja2's environment, shared with the runners

    env = environment()
    tensors = [{**t, "sample_bytes": math.prod(t["sample_shape"]) * DTYPE_BYTES[t["dtype"]]}
               for t in job["input_tensors"]]
    ctx: dict[str, Any] = {
        "row": row, "job": job, "tensors": tensors, "name": program.runner, "bridge": program.bridge,
        "ffm": program.ffm, "uses_torch": program.uses_torch, "release": program.min_jdk or jdks.OLDEST,
        "java_artifacts": java_build.JAVA_ARTIFACTS,
        "dependencies": java_build.dependencies_for(RUNNERS[program.runner].template) if program.runner else []}
    if model is not None:  # as harness.render gives the runners their model.py
        ctx["model"] = model
        if model["kind"] == "factory":
            ctx["factory_file"], _, ctx["factory_function"] = model["path"].rpartition(":")
    for template, name in program.files:  # as harness.render does: a file without .j2 is copied as it is
        write_atomic(dest / name, env.get_template(template).render(ctx) if template.endswith(".j2")
                     else (ROOT / template).read_text())
    if program.build in ("cmake", "maven"):
        write_atomic(dest / "layout.txt", layout(job, program))
    if program.build == "maven":
        body = _java_run_sh(program, job, bridge or BUILD_DIR / "java-bridge" / "lib", jdk)
    elif program.build == "cmake":
        prefix = (' -DCMAKE_PREFIX_PATH="$(python -c \'import torch; print(torch.utils.cmake_prefix_path)\')"'
                  if program.uses_torch else "")
        body = (f"cmake -S . -B build{prefix}\ncmake --build build\n"
                + shlex.join(["./build/program", job["model_file"], job["inputs"], "layout.txt"]) + "\n")
    else:
        body = shlex.join(["python", "program.py", job["model_file"], job["inputs"]]) + "\n"
    what = "builds (Maven) and runs" if program.build == "maven" else "builds (C++) and runs"
    write_atomic(dest / "run.sh", f"#!/bin/sh\n# {what} this program on its row's files\n"
                 "set -e\ncd \"$(dirname \"$0\")\"\n" + body)


def build(program: Program, src: Path, build_root: Path, jdk: jdks.Jdk | None = None) -> list[str]:
    """The argv that runs the program, before its files; C++ and Java are built once per source (Java: and JDK,
    the row's or the one on PATH), in build_root/programs/."""
    if program.build == "python":
        return [sys.executable, str(src / "program.py")]
    if program.build == "maven":
        return _maven_build(program, src, build_root, jdk)
    sources = [src / name for _, name in program.files]
    out = build_root / "programs" / tree_hash(sources)
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / ".lock")):  # CMake's cache names its source folder: a copy of it, built once
        (out / "src").mkdir(exist_ok=True)
        for p in sources:
            shutil.copyfile(p, out / "src" / p.name)
        cmake_build(out / "src", out / "build", out / "build.log")
    return [str(out / "build" / "program")]


def _maven_build(program: Program, src: Path, build_root: Path, jdk: jdks.Jdk | None) -> list[str]:
    """A Java program's Maven project copied to build_root/programs/<hash of its sources>/src and packaged there
    once; the argv that runs it: java on its jar and classpath (with the bridge, which the run built, when it
    needs it)."""
    names = [name for _, name in program.files]
    java = str(jdk.java) if jdk else shutil.which("java") or "java"
    runtime = jdk.runtime_version if jdk else ""
    out = build_root / "programs" / tree_hash([src / n for n in names],
                                              extra=f"{java}|{runtime}|{shutil.which('mvn')}|{'|'.join(names)}")
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / ".lock")):
        for name in names:
            (out / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, out / "src" / name)
        jar = _maven_package(out / "src", out / "build.log", jdk)
    bridge = java_build.build_bridge(build_root, out) if program.bridge else None
    classpath = os.pathsep.join([str(jar), (jar.parent / "classpath.txt").read_text().strip()])
    library = [f"-Djava.library.path={bridge}"] if bridge else []
    ffm = java_build.ffm_jvm_options(FFM_PROPERTY) if program.ffm else ()
    return [java, *java_build.JVM_OPTIONS, *ffm, *library, "-cp", classpath, "Main"]


def _maven_package(project: Path, log: Path, jdk: jdks.Jdk | None) -> Path:
    """`mvn -B -q package` in the project, as harness.java_build builds the runners (Maven Central, no settings
    of its own), unless it has been; its jar (the runtime classpath beside it, target/classpath.txt)."""
    jar, stamp = project / "target" / "program.jar", project / "target" / ".built"
    if stamp.is_file() and jar.is_file():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BuildError("mvn not found on PATH: install Maven (apt-get install maven)")
    cmd = [mvn, "-B", "-q", "package"]
    try:
        p = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=java_build.MAVEN_TIMEOUT_S,
                           check=False, env=java_build.maven_env(jdk))
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"Maven build in {project} timed out after {java_build.MAVEN_TIMEOUT_S} s") from exc
    output = p.stdout + p.stderr
    log.write_text(f"$ (cd {project} && {shlex.join(cmd)})\n{output}")
    if p.returncode != 0:
        artifact = java_build.unresolved_artifact(output)
        raise BuildError(f"Maven could not resolve {artifact} (is it on Maven Central?): see {log}" if artifact
                         else f"Maven build in {project} failed (exit {p.returncode}): see {log}")
    if not jar.is_file() or not (jar.parent / "classpath.txt").is_file():
        raise BuildError(f"Maven build in {project} left no target/program.jar or target/classpath.txt: see {log}")
    stamp.write_text("")
    return jar


def run_one(program: Program, argv: list[str], src: Path, job: dict[str, Any], outputs: Path | None) -> float:
    """One fresh process: its printed µs per call (and its outputs file, when asked)."""
    files = [job["model_file"], job["inputs"],
             *([str(src / "layout.txt")] if program.build in ("cmake", "maven") else [])]
    with own_temp({**os.environ, **bridge_env(program, job)}) as env:
        p = subprocess.run([*argv, *files, *([str(outputs)] if outputs else [])], capture_output=True, text=True,
                           timeout=TIMEOUT_S, check=False, env=env)
    found = _FIGURE.search(p.stdout)
    if p.returncode != 0 or not found:
        last = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit status {p.returncode}: {last}")
    return float(found.group(1))


def mean_us(timings: Path, calls: int) -> float:
    """One process's mean per call, µs: its timed blocks' total (timings.bin) over its calls."""
    return float(np.fromfile(timings, dtype="<i8").sum()) / calls / 1000.0


def row_means_us(run_dir: Path, row: str, calls: int) -> list[float]:
    """The row's mean per call in each repeat, µs: its timed blocks' total over its calls."""
    means = []
    for rep in sorted(p for p in (run_dir / "raw" / row).glob("*") if p.is_dir() and p.name.isdigit()):
        timings = rep / "timings.bin"
        if (rep / "result.json").exists() and timings.exists():
            means.append(mean_us(timings, calls))
    return means


def _fields(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    """A record's values of the dataclass's own fields, its lists as the tuples the dataclass holds."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names}


def recorded_suite(run_dir: Path) -> Suite:
    """The run's suite read back from its suite.json (harness/pipeline.py's record of it: the suite's dataclasses,
    the model's output sizes found for a user's model, each row's calls and slots, which are derived again)."""
    d = json.loads((run_dir / "suite.json").read_text())
    m = d["model"]
    model = ModelSpec(**{**_fields(ModelSpec, m), "training": Training(**m.get("training", {})),
                         "tensors": tuple(TensorSpec(**_fields(TensorSpec, t)) for t in m.get("tensors", []))})
    return Suite(d["name"], d["description"], d["source"], model, InputSpec(**_fields(InputSpec, d["inputs"])),
                 RunSpec(**_fields(RunSpec, d["run"])),
                 tuple(RunnerChoice(**_fields(RunnerChoice, c)) for c in d["runners"]),
                 tuple(d.get("claims", ())), tuple(d["tolerance"]),
                 LoadSpec(**_fields(LoadSpec, d["load"])) if d.get("load") else None)


@dataclass(frozen=True)
class RowRunner:
    """The row's own runner as harness/run.py starts it: its build's argv and folder, the row's environment and time
    limit."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path | None
    timeout: float


def row_runner(suite: Suite, name: str, built: Built) -> RowRunner:
    """The row `name` of the suite, started as run_all starts it, on `built` (its runner's build: for_choice picks
    a JDK-named row's)."""
    choice = next(c for c in suite.runners if c.name == name)
    b = for_choice(built, choice)
    if b.status != "ok":
        raise BuildError(f"the row's runner cannot be run again: {b.status}: {b.reason}")
    return RowRunner(list(b.argv), child_env(choice.threads, b.env_for(suite, choice) if b.env_for else {}),
                     b.source_dir, timeout_for(suite, choice))


def paired_job(job: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The row's job with the files its runner writes in out_dir (the same names), everything else as it ran."""
    return {**job, **{k: str(out_dir / Path(job[k]).name) for k in JOB_OUTPUTS}}


def run_row(runner: RowRunner, job: dict[str, Any], out_dir: Path) -> float:
    """One fresh process of the row's runner on its job, its files in out_dir: its mean per call, µs, as
    row_means_us computes a repeat's. Its outputs (checked when the row verified, as large as the row's) are
    deleted."""
    out_dir.mkdir(parents=True)
    job = paired_job(job, out_dir)
    Path(job["artifacts"]).mkdir()
    write_json(out_dir / "job.json", job)
    o = run_process([*runner.argv, str(out_dir / "job.json")], runner.env, runner.cwd or out_dir, out_dir,
                    runner.timeout)
    Path(job["outputs"]).unlink(missing_ok=True)
    if o.status == "ok" and o.result.get("status", "ok") != "ok":
        o.status, o.message = "failed", f"its result says {o.result.get('status')}: {o.result.get('message', '')}"
    if o.status != "ok" or not Path(job["timings"]).is_file():
        raise RuntimeError(f"the row's runner beside it, {PAIRED}/{out_dir.name}: {o.status.upper()}: "
                           + (o.message or "no timings.bin"))
    return mean_us(Path(job["timings"]), job["calls"])


def compare(program_us: list[float], row_us: list[float]) -> dict[str, Any]:
    """The program's processes against the row's run beside them, like for like: within one speed mode.

    A VM with speed modes puts each process in one of two speeds at random (here up to 1.7× apart, the faster
    one in a fifth to a half of the processes), so the fastest process of each side compares modes whenever
    one side has no process in the faster one. The pooled figures split into two modes at stats.mode_cut (one
    process a side is enough here); the medians are compared within the mode holding the most processes of
    both sides (the smaller side's count decides; a tie, the faster mode). Without two modes, or when no
    mode holds both sides, the medians of all processes are compared.
    """
    prog, row = np.asarray(program_us, dtype=float), np.asarray(row_us, dtype=float)
    chosen, compared = (prog, row), f"all processes ({len(prog)} + {len(row)})"
    cut = stats.mode_cut(np.concatenate([prog, row]))
    if cut is not None:
        modes = [(name, prog[faster == (prog < cut)], row[faster == (row < cut)])
                 for name, faster in (("faster", True), ("slower", False))]
        both = [m for m in modes if m[1].size and m[2].size]
        if both:
            name, a, b = max(both, key=lambda m: min(m[1].size, m[2].size))  # max keeps the first (faster) on ties
            chosen, compared = (a, b), f"the {name} of two speed modes ({a.size} + {b.size} processes)"
    program, paired = (float(np.median(v)) for v in chosen)
    diff = 100.0 * (program / paired - 1.0) if paired > 0 else float("nan")
    return {"best_us": program, "paired_row_us": paired, "diff_pct": diff, "agrees": abs(diff) <= AGREE_PCT,
            "compared": compared}


def check(run_dir: Path, row: dict[str, Any], job: dict[str, Any], outputs: Path) -> verify.Check:
    """The program's outputs against the run's reference, over the samples the reference holds, at the tolerance
    the row was judged with."""
    suite = json.loads((run_dir / "suite.json").read_text())
    output_size = int(np.prod(suite["model"].get("output_shape") or suite["model"]["layers"][-1:]))
    reference = np.fromfile(run_dir / "raw" / "reference.bin", dtype="<f4").reshape(-1, output_size)
    record = judged_with.read(run_dir, [c["id"] for c in suite["runners"]])
    atol, rtol = tolerance_of(str(row["runner_id"]), record)
    if not outputs.exists():
        return verify.Check(False, float("nan"), "the program wrote no outputs")
    got = np.fromfile(outputs, dtype="<f4")
    expected = (job["input_count"] // job["batch"]) * job["batch"] * job["output_size"]
    if got.size != expected:
        return verify.Check(False, float("nan"), f"{got.size} output values, expected {expected}")
    n = min(reference.shape[0], got.size // output_size)
    return verify.check_values(got[: n * output_size], reference[:n], atol, rtol)


def make_all(run_dir: Path, df: pd.DataFrame, build_root: Path, processes: int,
             say: Callable[[str], None]) -> list[dict[str, Any]]:
    """A program for every verified row that has one: rendered, built, run in `processes` fresh processes (as many
    as the row had), each after a fresh process of the row's own runner on its job (paired/<k>/), checked;
    programs.json lists them."""
    records = []
    verified = df[df["status"].eq("ok") & df["outputs_ok"].astype(str).eq("True")]
    suite = json.loads((run_dir / "suite.json").read_text())
    recorded = recorded_suite(run_dir)
    choices = {c.name: c for c in recorded.runners}
    builds: dict[str, Built] = {}  # by build id, as the run built them (cached: nothing is rebuilt)
    # a row on a JDK of its own (a suite entry's `jdk`): its program is built and run with that JDK
    jdk_of = {str(e.get("name")): str(e["jdk"]) for e in suite["runners"] if e.get("jdk")}
    for row in verified.to_dict("records"):
        name = str(row["runner"])
        job_path = run_dir / "raw" / name / "0" / "job.json"
        if not job_path.exists() or name not in choices:
            continue
        job = json.loads(job_path.read_text())
        program = program_for(row, job)
        if program is None:
            continue
        src = run_dir / "programs" / name
        try:
            # a program that needs a newer JDK than PATH's gets the one its row's runner was given (min_jdk)
            jdk = (jdks.find(jdk_of[name]) if name in jdk_of
                   else jdks.at_least(program.min_jdk, f"the {name} program needs it") if program.min_jdk else None)
        except jdks.JdkNotFound:
            continue  # the row ran on it: a JDK removed since leaves the row without a program
        render(program, name, job, src, build_root / "java-bridge" / "lib", jdk, suite["model"])
        shutil.rmtree(src / PAIRED, ignore_errors=True)  # an earlier make_all's
        record: dict[str, Any] = {"row": name, "language": row["language"], "folder": f"programs/{name}",
                                  "main": program.files[0][1], "status": "ok", "message": "",
                                  "snippet": snippet(src / program.files[0][1]),
                                  "row_mean_us": min(row_means_us(run_dir, name, job["calls"]) or [float("nan")])}
        say(f"program {name} …")
        try:
            bid = RUNNERS[choices[name].id].build_id
            if bid not in builds:
                builds[bid] = build_runner(RUNNERS[bid], recorded.model, build_root)
            runner = row_runner(recorded, name, builds[bid])
            argv = build(program, src, build_root, jdk)
            figures, paired = [], []
            for k in range(processes):  # the row, then the program: each pair in the same minutes
                paired.append(run_row(runner, job, src / PAIRED / str(k)))
                figures.append(run_one(program, argv, src, job, src / "outputs.bin" if k == 0 else None))
        except (BuildError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            record.update(status="FAILED", message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            records.append(record)
            say(f"  program {name} [red]FAILED[/]: {record['message']}")
            continue
        checked = check(run_dir, row, job, src / "outputs.bin")
        (src / "outputs.bin").unlink(missing_ok=True)  # checked; as large as the row's own outputs
        record.update(us_per_call=figures, paired_row_us_per_call=paired, **compare(figures, paired),
                      outputs_ok=checked.ok, max_abs_err=checked.max_abs_err, message=checked.message)
        if not checked.ok:
            record["status"] = "WRONG"
        records.append(record)
        say(f"  program {name}: {record['best_us']:.3f} µs per call, row beside it {record['paired_row_us']:.3f} "
            f"({record['diff_pct']:+.1f} %; main run's row {record['row_mean_us']:.3f})"
            + ("" if checked.ok else f", outputs wrong: {checked.message}"))
    write_json(run_dir / "programs.json", records)
    return records


def snippet(main: Path) -> list[str]:
    """The program's own "How to call it" lines (its header's, indented under that line)."""
    lines = main.read_text().splitlines()
    if "How to call it:" not in "\n".join(lines):
        return []
    start = next(i for i, line in enumerate(lines) if line.strip(" /").startswith("How to call it:"))
    out = []
    for line in lines[start + 2:]:
        text = line[2:] if line.startswith("//") else line
        if not text.startswith("    "):
            break
        out.append(text[4:])
    return out


def read(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "programs.json"
    return json.loads(path.read_text()) if path.exists() else []


def fidelity_table(records: list[dict[str, Any]]) -> str:
    """Program against row: each program's µs per call beside the mean per call of its row's own runner run again in
    between its processes, medians within one speed mode (compare); the main run's row figure, minutes earlier,
    last. A record from before the modes were told apart compared the fastest process of each."""
    if not records:
        return ""
    lines = []
    for r in records:
        ok = r["status"] == "ok"
        paired = ok and "paired_row_us" in r  # a run from before the pairing compared with the main run only
        lines.append({
            "row": r["row"], "program": f"[{r['folder']}/{r['main']}]({r['folder']}/{r['main']})",
            "outputs": "match" if r.get("outputs_ok") else r["status"] + (f": {r['message']}" if r["message"] else ""),
            "program µs/call": f"{r['best_us']:.3f}" if ok else "—",
            "row µs/call beside it": f"{r['paired_row_us']:.3f}" if paired else "—",
            "compared over": r.get("compared", "the fastest process of each") if paired else "—",
            "program vs row": f"{r['diff_pct']:+.1f} %" if paired else "—",
            f"within ±{AGREE_PCT:g} %": ("yes" if r["agrees"] else "**no**") if paired else "—",
            "row µs/call in the main run (fastest repeat)": f"{r['row_mean_us']:.3f}",
        })
    return pd.DataFrame(lines).to_markdown(index=False, disable_numparse=True)
