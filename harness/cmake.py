"""Configure and build a CMake project against the pip wheel's libtorch, cached by a hash of its sources."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path


class BuildError(RuntimeError):
    """A build step failed; the message names the log file that holds the details."""


def torch_prefix() -> str:
    """Where find_package(Torch) looks: the wheel's own CMake files, so every runner uses one libtorch.

    torch is imported here, not at the top: reading a suite (and refusing a bad one) needs no torch.
    """
    import torch

    return torch.utils.cmake_prefix_path


def tree_hash(paths: list[Path], extra: str = "") -> str:
    """Hash of file names and contents (plus `extra`), used as a build id."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cmake_build(source_dir: Path, build_dir: Path, log_path: Path, targets: list[str] | None = None) -> bool:
    """Build `source_dir` into `build_dir` unless the stamp says nothing changed; return True if it built.

    The stamp hashes every source file, the torch version and the compiler path, so an
    unchanged rerun costs nothing and any change rebuilds.
    """
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found on PATH: install it (apt-get install cmake g++)")
    sources = [p for p in source_dir.rglob("*") if p.is_file()]
    stamp = build_dir / ".build-id"
    import torch

    build_id = tree_hash(sources, extra=f"{torch.__version__}|{shutil.which('c++')}|{targets}")
    if stamp.exists() and stamp.read_text() == build_id:
        return False
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    configure = [
        "cmake", "-S", str(source_dir), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={torch_prefix()}",
    ]
    build = ["cmake", "--build", str(build_dir), "--parallel", "2"]
    if targets:
        build += ["--target", *targets]
    with log_path.open("w") as log:
        for cmd in (configure, build):
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                raise BuildError(f"build of {source_dir.name} failed (exit {proc.returncode}): see {log_path}")
    stamp.write_text(build_id)
    return True
