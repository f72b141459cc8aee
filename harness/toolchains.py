"""What each kind of runner needs installed, as data: the tools to find, headers, how each reports its
version, and the files every runner of the toolchain is built from besides its own template.

`invoke doctor`, the environment record and the build all read this table; nothing else names a tool.
"""

from __future__ import annotations

import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from harness.java_build import RUNNER_SOURCE, RUNNER_TEMPLATES


@dataclass(frozen=True, kw_only=True)
class Tool:
    command: str  # looked up on PATH
    install: str  # the fix when it is missing
    version: tuple[str, ...]  # argv whose first output line is its version
    env_key: str | None = None  # its key in a run's environment.json


TOOLS: dict[str, Tool] = {t.command: t for t in (
    Tool(command="cmake", install="install CMake (apt-get install cmake)", version=("cmake", "--version"),
         env_key="cmake"),
    Tool(command="c++", install="install a C++ compiler (apt-get install g++)", version=("c++", "--version"),
         env_key="cxx"),
    Tool(command="make", install="install make (apt-get install make)", version=("make", "--version")),
    Tool(command="cc", install="install a C compiler (apt-get install gcc)", version=("cc", "--version")),
    Tool(command="java", install="install a JDK 17 (apt-get install openjdk-17-jdk-headless)",
         version=("java", "-version"), env_key="java"),
    Tool(command="javac", install="install a JDK 17, not only a JRE (apt-get install openjdk-17-jdk-headless)",
         version=("javac", "-version")),
    Tool(command="mvn", install="install Maven (apt-get install maven)", version=("mvn", "-B", "--version"),
         env_key="maven"),
    Tool(command="valgrind", install="apt-get install valgrind (only for invoke all --instructions)",
         version=("valgrind", "--version")),
)}


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    name: str
    tools: tuple[str, ...]  # keys of TOOLS
    headers: tuple[tuple[str, str], ...] = ()  # (header under an include dir, the Debian package that has it)
    common: tuple[tuple[str, str], ...] = ()  # (file under the repo, name in the build): in every runner
    main: str = ""  # the name the runner's own template renders to
    python_headers: bool = False  # builds a C extension module of this interpreter: needs its Python.h

    def problem(self) -> str | None:
        """None when every runner of this toolchain can be built here, else one line naming the fix."""
        for name in self.tools:
            if shutil.which(name) is None:
                return f"{name} not found on PATH: {TOOLS[name].install}"
        if self.python_headers:
            include = Path(sysconfig.get_paths()["include"])
            if not (include / "Python.h").exists():
                return (f"Python.h not found in {include}: install this Python's development headers "
                        f"(apt-get install python3-dev, or a Python built with them)")
        for header, package in self.headers:
            if not any((Path(d) / header).exists() for d in ("/usr/include", "/usr/local/include")):
                return f"{header} not found: install it (apt-get install {package})"
        return None


_SCHEMA = "docs/schemas/job.schema.json"  # the contract's job schema: every runtime checks each job with it
TOOLCHAINS: dict[str, Toolchain] = {t.name: t for t in (
    Toolchain(name="python", tools=(), main="runner.py",
              common=(("python/runner_common.py", "runner_common.py"), (_SCHEMA, "job.schema.json"))),
    # a Python runner with a C extension of its own (harness/python_ext.py compiles it with cc beside runner.py)
    Toolchain(name="python-ext", tools=("cc",), main="runner.py", python_headers=True,
              common=(("python/runner_common.py", "runner_common.py"), (_SCHEMA, "job.schema.json"))),
    Toolchain(name="cmake", tools=("cmake", "c++", "make"), headers=(("nlohmann/json.hpp", "nlohmann-json3-dev"),),
              main="main.cpp",  # the schema is compiled in (cpp/CMakeLists.txt.j2)
              common=(("cpp/CMakeLists.txt.j2", "CMakeLists.txt"), ("cpp/runner_common.hpp", "runner_common.hpp"),
                      (_SCHEMA, "job.schema.json"))),
    Toolchain(name="java", tools=("java", "javac", "mvn", "cmake", "c++"), common=RUNNER_TEMPLATES,
              main=RUNNER_SOURCE),
)}

# Paths that cannot be built on this machine whatever is installed, with the reason (doctor and every report
# say it, rather than leaving the row out silently)
NOT_BUILDABLE: dict[str, str] = {
    "ONNX Runtime from C++": (
        "no reachable registry ships ONNX Runtime's C/C++ API headers (onnxruntime_cxx_api.h): the Python wheel "
        "and the Maven jar carry only the shared library, and Debian 12 has no onnxruntime package; the header is "
        "not written by hand, so ONNX Runtime is measured from Python (python-onnxruntime) and Java "
        "(java-onnxruntime) only"
    ),
}
