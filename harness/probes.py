"""The empty native call of each language: the crossing part of the cost decomposition (harness/decomposition.py).

Python calls a C extension function, C++ an out-of-line function in a shared library, Java an empty JNI method
and (JDK 22 or later) an empty FFM downcall with Linker.Option.critical; each returns its argument at once, in
the plain loop a user writes. Built once per source hash under build/probes/ (no libtorch: seconds), each run in
fresh processes; a probe that cannot be built or run here says why instead of giving a figure.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from harness import jdks
from harness.cmake import tree_hash
from harness.paths import ROOT

SOURCES = ("cpp/probes/empty_lib.c", "cpp/probes/empty_call.cpp", "python/probes/empty_ext.c",
           "python/probes/empty_call.py", "java/probes/EmptyJni.java", "java/probes/EmptyFfm.java")
FFM_FEATURE = 22  # java.lang.foreign is final from JDK 22
TIMEOUT_S = 120
# calls per timed run: each run lasts tens of milliseconds, far above the clock's cost
CALLS = {"python-extension": 200_000, "cpp-call": 2_000_000, "java-jni": 2_000_000, "java-ffm": 2_000_000}
ROUNDS = 15
NAMES = {"python-extension": "Python → C extension function (METH_O, returns its argument)",
         "cpp-call": "C++ → out-of-line function in a shared library",
         "java-jni": "Java → empty JNI instance method",
         "java-ffm": "Java → empty FFM downcall, Linker.Option.critical(false)"}


@dataclass
class Probe:
    """One empty call's figure: ns per call (the median of each process's runs), or why there is none."""

    name: str
    ns: list[float] = field(default_factory=list)  # one per process
    reason: str = ""

    @property
    def median_ns(self) -> float | None:
        return statistics.median(self.ns) if self.ns else None


class ProbeError(Exception):
    """A probe could not be built or run: one line naming what failed."""


def _run(argv: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeError(f"{Path(argv[0]).name}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ProbeError(f"{Path(argv[0]).name} exited with {proc.returncode}: {tail[0][:300]}")
    return proc.stdout


def ffm_jdk() -> jdks.Jdk | None:
    """The newest installed JDK that has the FFM API, or None."""
    found = [j for j in jdks.installed() if j.feature >= FFM_FEATURE]
    return max(found, key=lambda j: j.feature) if found else None


def build(build_root: Path) -> Path:
    """The probes built under build/probes/<hash of their sources>/ (once; a lock serialises concurrent builds)."""
    if shutil.which("cc") is None or shutil.which("c++") is None:
        raise ProbeError("cc and c++ not found on PATH: install a C/C++ compiler (apt-get install g++)")
    out = (build_root / "probes" / tree_hash([ROOT / s for s in SOURCES])).resolve()
    with FileLock(str(out) + ".lock"):
        if (out / "done").exists():
            return out
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        java = jdks.on_path()
        jni = [f"-I{java.home / 'include'}", f"-I{java.home / 'include' / 'linux'}"] if java else []
        _run(["cc", "-O2", "-shared", "-fPIC", *jni, str(ROOT / "cpp/probes/empty_lib.c"), "-o",
              str(out / "libempty_call.so")], out)
        _run(["c++", "-O2", str(ROOT / "cpp/probes/empty_call.cpp"), f"-L{out}", "-lempty_call",
              f"-Wl,-rpath,{out}", "-o", str(out / "empty_call")], out)
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        _run(["cc", "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
              str(ROOT / "python/probes/empty_ext.c"), "-o", str(out / f"empty_ext{suffix}")], out)
        if java:
            _run([str(java.javac), "-d", str(out / "jni"), str(ROOT / "java/probes/EmptyJni.java")], out)
        ffm = ffm_jdk()
        if ffm:
            _run([str(ffm.javac), "-d", str(out / "ffm"), str(ROOT / "java/probes/EmptyFfm.java")], out)
        (out / "done").write_text("ok\n")
    return out


def _argv(name: str, built: Path) -> list[str] | str:
    """The command of one probe, or why it cannot run here."""
    calls, rounds = str(CALLS[name]), str(ROUNDS)
    if name == "python-extension":
        return [sys.executable, str(ROOT / "python/probes/empty_call.py"), str(built), calls, rounds]
    if name == "cpp-call":
        return [str(built / "empty_call"), calls, rounds]
    if name == "java-jni":
        java = jdks.on_path()
        if java is None or not (built / "jni").exists():
            return "no JDK on PATH: install one (apt-get install openjdk-17-jdk-headless)"
        return [str(java.java), f"-Djava.library.path={built}", "-cp", str(built / "jni"), "EmptyJni", calls, rounds]
    ffm = ffm_jdk()
    if ffm is None or not (built / "ffm").exists():
        return f"no JDK {FFM_FEATURE} or later installed (the FFM API): install one, e.g. Temurin 25"
    return [str(ffm.java), "--enable-native-access=ALL-UNNAMED", "-cp", str(built / "ffm"), "EmptyFfm",
            str(built / "libempty_call.so"), calls, rounds]


def measure(build_root: Path, processes: int, say: Callable[[str], None] = print) -> dict[str, Probe]:
    """Every probe, each in `processes` fresh processes, interleaved (one of each, then again)."""
    probes = {name: Probe(name) for name in NAMES}
    try:
        built = build(build_root)
    except ProbeError as exc:
        for p in probes.values():
            p.reason = f"not built: {exc}"
        return probes
    commands = {name: _argv(name, built) for name in NAMES}
    for name, argv in commands.items():
        if isinstance(argv, str):
            probes[name].reason = argv
    say(f"empty native calls: {', '.join(n for n, a in commands.items() if not isinstance(a, str))}, "
        f"{processes} process(es) each …")
    for _ in range(processes):
        for name, argv in commands.items():
            if isinstance(argv, str) or probes[name].reason:
                continue
            try:
                line = _run(argv, built).strip().splitlines()[-1]
                runs = json.loads(line)["ns_per_call"]
                probes[name].ns.append(statistics.median(float(v) for v in runs))
            except (ProbeError, ValueError, KeyError, IndexError) as exc:
                probes[name].ns.clear()
                probes[name].reason = f"failed: {exc}"
    return probes
