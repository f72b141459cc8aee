"""Build the Java side: the JNI bridge (java/bridge) and the Maven runner projects, and say how to run them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from harness.cmake import BuildError, cmake_build, tree_hash
from harness.files import write_atomic
from harness.jdks import Jdk

REPO = Path(__file__).resolve().parent.parent
BRIDGE_SOURCE = REPO / "java" / "bridge"

POM = "pom.xml"
SOURCES = "src"  # everything the jar is built from besides the pom (its hash keys the jar)
RUNNER_SOURCE = "src/main/java/bench/Runner.java"  # each runner's own variant: its Model
MAIN_CLASS = "bench.Runner"
# (path under the repository, file inside a runner project): what every Java runner's project holds
# besides its Runner.java (rendered from its variant's template, java/runner/<Variant>.java.j2, as its
# registry entry lists). The job schema is copied from docs/schemas, its only copy, into the jar's
# resources (bench.Job reads it from there).
RUNNER_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("java/runner/pom.xml.j2", POM),
    ("java/runner/BenchRuntime.java", "src/main/java/bench/BenchRuntime.java"),
    ("java/runner/Job.java", "src/main/java/bench/Job.java"),
    ("docs/schemas/job.schema.json", "src/main/resources/job.schema.json"),
)
# the versions the pom template takes as `java_artifacts` (harness.render passes them; Maven Central
# serves no newer pytorch_java_only than 1.13.1; its NativePeer interface is the one the bridge implements;
# slf4j-nop silences the validator's logging, of the SLF4J 2.0 line its slf4j-api is)
JAVA_ARTIFACTS: dict[str, str] = {
    "pytorch_java_only": "1.13.1",
    "json_schema_validator": "3.0.9",
    "slf4j_nop": "2.0.20",
}
# Maven artifacts only some runners get, by their variant's template: (groupId, artifactId, version). The
# pom lists them and the manifest records their versions, like JAVA_ARTIFACTS'. ONNX Runtime's jar carries
# its Linux natives (1.23.2 is the version resolved here).
RUNNER_DEPENDENCIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "java/runner/OnnxRuntime.java.j2": (("com.microsoft.onnxruntime", "onnxruntime", "1.23.2"),),
}
# Runners that call libtorch through java.lang.foreign (FFM) instead of the bridge, by template: run with native
# access granted to the class path (without it the JVM warns on stderr at the first restricted call, and stderr
# holds only a refused job's line) and told which libtorch_cpu.so to open (ffm_jvm_options). Their registry entry
# names the JDK they need (min_jdk: FFM is final in JDK 22), and they are compiled for that release.
FFM_TEMPLATES: frozenset[str] = frozenset({"java/runner/AotiFfm.java.j2", "java/runner/AotiMinimalFfm.java.j2"})
LIBTORCH_PROPERTY = "bench.libtorch"  # the FFM runners' system property naming libtorch_cpu.so
JAR = "target/runner.jar"
CLASSPATH_FILE = "target/classpath.txt"
BUILD_STAMP = "target/.build-id"
MAVEN_TIMEOUT_S = 900  # a first build downloads plugins and dependencies

# The runner's fixed JVM options besides -Djava.library.path and -cp: none, the JVM runs on
# its defaults (no heap, GC or JIT tuning), so the figures are what a plain `java` gives.
JVM_OPTIONS: tuple[str, ...] = ()

GRAD_MODES = ("inference", "no_grad", "default")

_COORDS = r"([\w.\-]+:[\w.\-]+(?::[\w.\-]+){1,3})"
_UNRESOLVED = [
    re.compile(r"Could not find artifact " + _COORDS),
    re.compile(r"Failure to find " + _COORDS),
    re.compile(r"Could not transfer artifact " + _COORDS),
    re.compile(r"Could not resolve artifact " + _COORDS),
    re.compile(r"the artifact " + _COORDS + r" has not been downloaded"),
    re.compile(r"The following artifacts could not be resolved: " + _COORDS),
    re.compile(_COORDS + r" was not found in "),
    re.compile(_COORDS + r" was cached in the local repository"),
    re.compile(r"Plugin " + _COORDS + r" or one of its dependencies could not be resolved"),
]


def dependencies_for(template: str) -> list[dict[str, str]]:
    """The extra Maven dependencies of the runner rendered from `template`, as the pom template takes them."""
    return [{"group": g, "artifact": a, "version": v} for g, a, v in RUNNER_DEPENDENCIES.get(template, ())]


def java_toolchain_problem() -> str | None:
    """None if the Java runners can be built here, else a one-line reason naming the missing tool and fix."""
    from harness.toolchains import TOOLCHAINS  # the table of tools (it lists this module's files)

    return TOOLCHAINS["java"].problem()


def build_bridge(build_root: Path, log_dir: Path) -> Path:
    """Build java/bridge into `build_root/java-bridge` (cached); return the directory holding both .so files."""
    build_dir = build_root / "java-bridge"
    build_root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_root / "java-bridge.lock")):  # both Java runners share this build
        cmake_build(BRIDGE_SOURCE, build_dir, log_dir / "java-bridge.log")
    lib_dir = build_dir / "lib"
    for name in ("libpytorch_jni.so", "libfbjni.so"):
        if not (lib_dir / name).is_file():
            raise BuildError(f"bridge build left no {lib_dir / name}: see {log_dir / 'java-bridge.log'}")
    return lib_dir


def unresolved_artifact(maven_output: str) -> str | None:
    """The first artifact (group:artifact[:type]:version) Maven says it could not resolve, if any."""
    for pattern in _UNRESOLVED:
        match = pattern.search(maven_output)
        if match:
            return match.group(1)
    return None


def libtorch_cpu() -> Path:
    """The wheel's libtorch_cpu.so (the library the bridge and the C++ runners link)."""
    import torch  # the wheel the harness runs with

    return Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"


def ffm_jvm_options(prop: str = LIBTORCH_PROPERTY) -> tuple[str, ...]:
    """The JVM options of an FFM runner or program: native access for the class path, and the system property
    `prop` naming the wheel's libtorch_cpu.so."""
    return ("--enable-native-access=ALL-UNNAMED", f"-D{prop}={libtorch_cpu()}")


def runner_build_id(project_dir: Path, jdk: Jdk | None = None, release: int | None = None) -> str:
    """Hash of the rendered pom and everything under src/ (plus the JDK, mvn and the Java release in use): the jar's
    cache key."""
    for path in (project_dir / POM, project_dir / RUNNER_SOURCE):
        if not path.is_file():
            raise BuildError(f"runner project {project_dir} lacks {path.relative_to(project_dir)}: render it first")
    sources = [project_dir / POM, *(p for p in (project_dir / SOURCES).rglob("*") if p.is_file())]
    names = "|".join(sorted(str(p.relative_to(project_dir)) for p in sources))  # tree_hash hashes base names
    java = f"{jdk.home}|{jdk.runtime_version}" if jdk else shutil.which("java")
    target = f"|release {release}" if release else ""  # the pom's 17 unless told
    return tree_hash(sources, extra=f"{java}|{shutil.which('mvn')}|{names}{target}")


def copy_project(src: Path, dest: Path) -> Path:
    """The rendered project's pom and src/ copied to `dest` (its own target/, e.g. for another JDK); returns dest."""
    for path in [src / POM, *(p for p in (src / SOURCES).rglob("*") if p.is_file())]:
        target = dest / path.relative_to(src)
        content = path.read_bytes()
        if not target.is_file() or target.read_bytes() != content:
            write_atomic(target, content)
    return dest


# Maven's own JVM (not the runners'): a build is a few seconds of cold code, which C2 only slows down. C1 alone
# took a runner project's `mvn -B -q package` from 11.5 to 4.8 s of CPU here; the jar is the same. A user's
# MAVEN_OPTS come after these, so theirs win.
MAVEN_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def maven_env(jdk: Jdk | None = None) -> dict[str, str]:
    """The environment Maven runs in: the parent's with MAVEN_JVM_OPTIONS, and with JAVA_HOME (and PATH's first
    entry) set to `jdk` when one is given."""
    env = {**os.environ, "MAVEN_OPTS": f"{MAVEN_JVM_OPTIONS} {os.environ.get('MAVEN_OPTS', '')}".strip()}
    if jdk is None:
        return env
    path = f"{jdk.home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**env, "JAVA_HOME": str(jdk.home), "PATH": path}


def build_runner_jar(project_dir: Path, log_path: Path, jdk: Jdk | None = None, release: int | None = None) -> Path:
    """`mvn -B -q package` the rendered runner project unless its hash is unchanged; return target/runner.jar.

    The package phase also writes the runtime classpath to target/classpath.txt. Maven's output
    goes to `log_path`; a failure raises BuildError naming the log (and the unresolved artifact, if any).
    With `jdk`, Maven (and so javac) runs on that JDK (JAVA_HOME); else on the one on PATH. With `release`, javac
    compiles for that Java release instead of the pom's 17 (a command-line property wins over the pom's).
    """
    jar = project_dir / JAR
    classpath = project_dir / CLASSPATH_FILE
    stamp = project_dir / BUILD_STAMP
    build_id = runner_build_id(project_dir, jdk, release)
    if stamp.is_file() and stamp.read_text() == build_id and jar.is_file() and classpath.is_file():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BuildError("mvn not found on PATH: install Maven (apt-get install maven)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-q", *([f"-Dmaven.compiler.release={release}"] if release else []), "package"]
    try:
        proc = subprocess.run(
            cmd, cwd=project_dir, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False,
            env=maven_env(jdk),
        )
    except subprocess.TimeoutExpired as exc:
        partial = "".join(x.decode() if isinstance(x, bytes) else x for x in (exc.stdout, exc.stderr) if x)
        log_path.write_text(f"$ (cd {project_dir} && {' '.join(cmd)})\n{partial}")
        raise BuildError(f"Maven build in {project_dir} timed out after {MAVEN_TIMEOUT_S} s: see {log_path}") from exc
    output = proc.stdout + proc.stderr
    home = f"JAVA_HOME={jdk.home} " if jdk else ""
    log_path.write_text(f"$ (cd {project_dir} && {home}{' '.join(cmd)})\n{output}")
    if proc.returncode != 0:
        artifact = unresolved_artifact(output)
        if artifact:
            raise BuildError(f"Maven could not resolve {artifact} (is it on Maven Central?): see {log_path}")
        raise BuildError(f"Maven build in {project_dir} failed (exit {proc.returncode}): see {log_path}")
    if not jar.is_file() or not classpath.is_file():
        raise BuildError(f"Maven build in {project_dir} left no {JAR} or {CLASSPATH_FILE}: see {log_path}")
    stamp.write_text(build_id)
    return jar


def runtime_classpath(project_dir: Path) -> str:
    """The runner jar followed by its runtime dependencies (one class loader for all of them)."""
    listing = project_dir / CLASSPATH_FILE
    if not listing.is_file():
        raise BuildError(f"{listing} does not exist: build the runner first (build_runner_jar)")
    deps = listing.read_text().strip()
    return os.pathsep.join(p for p in (str(project_dir / JAR), deps) if p)


def java_command(project_dir: Path, bridge_dir: Path | None, job_path: Path, jdk: Jdk | None = None,
                 options: tuple[str, ...] = ()) -> list[str]:
    """The argv that runs a built runner project on one job file (bridge_dir None: a runner that loads no bridge),
    with `jdk`'s java, else the one on PATH; `options`: the runner's own JVM options (ffm_jvm_options)."""
    java = str(jdk.java) if jdk else shutil.which("java") or "java"
    return [
        java,
        *JVM_OPTIONS,
        *options,
        *([f"-Djava.library.path={bridge_dir}"] if bridge_dir is not None else []),
        "-cp",
        runtime_classpath(project_dir),
        MAIN_CLASS,
        str(job_path),
    ]


def java_env(threads: int, interop_threads: int, grad_mode: str, graph_optimizer: bool = False) -> dict[str, str]:
    """The PYTORCH_JNI_* variables through which the bridge takes the job's settings (add them to the child's env)."""
    if threads < 1 or interop_threads < 1:
        raise ValueError(f"threads and interop_threads must be >= 1, got {threads} and {interop_threads}")
    if grad_mode not in GRAD_MODES:
        raise ValueError(f"grad_mode must be one of {', '.join(GRAD_MODES)}, got {grad_mode!r}")
    return {
        "PYTORCH_JNI_NUM_THREADS": str(threads),
        "PYTORCH_JNI_NUM_INTEROP_THREADS": str(interop_threads),
        "PYTORCH_JNI_GRAD_MODE": grad_mode,
        "PYTORCH_JNI_GRAPH_OPTIMIZER": "1" if graph_optimizer else "0",
    }
