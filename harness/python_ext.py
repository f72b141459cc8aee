"""Compile a Python runner's C extension modules (toolchain "python-ext") beside its runner.py.

The same compiler call harness/probes.py makes for Python's empty C-extension probe: `cc -O2 -shared -fPIC` with this
interpreter's include folder, one module per `.c` file of the rendered source, named `<stem><EXT_SUFFIX>` so that
runner.py imports it from its own folder. No torch header is included, so a build takes about a second. The source
folder is the runner's cached build (build/runners/<id>/<hash of its sources>/src): a module is compiled once, and
again only when its file is missing or older than its source.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from harness.cmake import BuildError

TIMEOUT_S = 300
CFLAGS = ("-O2", "-shared", "-fPIC", "-Wall")


def module_path(source: Path) -> Path:
    """The extension module a `.c` file compiles to, importable by this interpreter from the file's folder."""
    return source.with_name(source.stem + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))


def command(source: Path, target: Path) -> list[str]:
    """The compiler call for one module (the libraries it dlopen's are found at run time: only libdl is linked)."""
    return ["cc", *CFLAGS, f"-I{sysconfig.get_paths()['include']}", str(source), "-o", str(target), "-ldl"]


def build_extensions(src: Path, log: Path) -> list[Path]:
    """Every `.c` file in src compiled to its module (skipped when it is up to date); the modules. Raises BuildError
    naming the log when the compiler fails."""
    made = []
    for source in sorted(src.glob("*.c")):
        target = module_path(source)
        made.append(target)
        if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
            continue
        tmp = target.with_name(target.name + ".tmp")
        argv = command(source, tmp)
        try:
            p = subprocess.run(argv, cwd=src, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"compiling {source.name} failed: {exc}") from None
        log.write_text(f"$ (cd {src} && {shlex.join(argv)})\n{p.stdout}{p.stderr}")
        if p.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"compiling {source.name} failed (exit {p.returncode}): see {log}")
        os.replace(tmp, target)
    return made
