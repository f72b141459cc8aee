"""Write the fixtures the bridge's JUnit tests load: TorchScript modules, and one AOTInductor package.

Usage: python make_fixtures.py OUT_DIR [AOTI_CACHE_DIR]

The package (aoti.pt2: a seeded 2-8-8-1 MLP exported for input [2]) takes tens of seconds to compile, so
with AOTI_CACHE_DIR it is made there once per torch version and fixture source, and copied from there.
Beside it: aoti.inputs.bin (float32 [AOTI_SAMPLES, 2]) and aoti.expected.bin (what the package gives in
Python for each sample, float32 [AOTI_SAMPLES]).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

EXTRA_FILE_NAME = "meta.txt"
EXTRA_FILE_CONTENT = "hello from the fixture \u2713"


class Identity(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Times2(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * 2


class Layout(torch.nn.Module):
    """Memory formats in and out."""

    def forward(self, x: Tensor) -> tuple[bool, bool, Tensor]:
        return (
            x.is_contiguous(memory_format=torch.channels_last),
            x.is_contiguous(memory_format=torch.channels_last_3d),
            x.contiguous(),
        )

    @torch.jit.export
    def to_channels_last(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @torch.jit.export
    def to_channels_last_3d(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last_3d)

    @torch.jit.export
    def transposed(self, x: Tensor) -> Tensor:
        return x.t()


class Values(torch.nn.Module):
    """Every IValue kind in and out, plus a few failure cases."""

    def forward(self, x: Tensor) -> tuple[Tensor, int, float, str, bool, Tensor | None]:
        return (x + 1, 7, 2.5, "tuple", True, None)

    @torch.jit.export
    def scalars(self, b: bool, i: int, f: float, s: str) -> tuple[bool, int, float, str]:
        return (not b, i + 1, f * 2.0, s + "!")

    @torch.jit.export
    def optional(self, x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        return x * 2

    @torch.jit.export
    def add(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    @torch.jit.export
    def bool_list(self, x: list[bool]) -> list[bool]:
        return [not v for v in x]

    @torch.jit.export
    def long_list(self, x: list[int]) -> list[int]:
        return [v + 1 for v in x]

    @torch.jit.export
    def double_list(self, x: list[float]) -> list[float]:
        return [v * 2.0 for v in x]

    @torch.jit.export
    def tensor_list(self, x: list[Tensor]) -> list[Tensor]:
        return [t * 2 for t in x]

    @torch.jit.export
    def nested(self, x: list[list[int]]) -> list[list[int]]:
        return [[v * 10 for v in row] for row in x]

    @torch.jit.export
    def pairs(self, n: int) -> list[tuple[int, str]]:
        return [(i, str(i)) for i in range(n)]

    @torch.jit.export
    def tuple_in(self, t: tuple[Tensor, int]) -> Tensor:
        return t[0] * t[1]

    @torch.jit.export
    def dict_str(self, d: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k + "_out": v * 2 for k, v in d.items()}

    @torch.jit.export
    def dict_long(self, d: dict[int, float]) -> dict[int, float]:
        return {k * 10: v + 1.0 for k, v in d.items()}

    @torch.jit.export
    def modes(self, x: Tensor) -> tuple[bool, bool]:
        """(grad enabled, a new tensor is an inference tensor): tells the guard in force."""
        return (torch.is_grad_enabled(), (x + 1).is_inference())

    @torch.jit.export
    def bool_tensor(self, x: Tensor) -> Tensor:
        return x > 0

    @torch.jit.export
    def half_tensor(self, x: Tensor) -> Tensor:
        return x.half()

    @torch.jit.export
    def fail(self, message: str) -> int:
        raise RuntimeError(message)


class Mlp(torch.nn.Module):
    """The seed's MyNN shape, 2-8-8-1 with ReLU: the AOTInductor fixture."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(2, 8)
        self.l2 = torch.nn.Linear(8, 8)
        self.l3 = torch.nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


AOTI_FILES = ("aoti.pt2", "aoti.inputs.bin", "aoti.expected.bin")
AOTI_SAMPLES = 64


def write_aoti(out_dir: Path) -> None:
    """aoti.pt2 exported for input [2] from a seeded Mlp, its inputs and Python's outputs for them."""
    torch.manual_seed(0)
    net = Mlp().eval()
    program = torch.export.export(net, (torch.zeros(2),))
    package = torch._inductor.aoti_compile_and_package(program, package_path=str(out_dir / "aoti.pt2"))
    compiled = torch._inductor.aoti_load_package(package)
    x = np.random.default_rng(0).uniform(-10, 10, size=(AOTI_SAMPLES, 2)).astype("<f4")
    with torch.inference_mode():
        expected = np.concatenate([compiled(torch.from_numpy(row.copy())).numpy() for row in x]).astype("<f4")
        eager = net(torch.from_numpy(x)).numpy().reshape(-1)
    np.testing.assert_allclose(expected, eager, rtol=1e-5, atol=1e-5)  # the package computes the model
    x.tofile(out_dir / "aoti.inputs.bin")
    expected.tofile(out_dir / "aoti.expected.bin")


def aoti_cached(cache: Path) -> Path:
    """The folder under `cache` holding the AOTI fixture files for this torch and this file, made if missing."""
    key = hashlib.sha256(f"{torch.__version__}\0".encode() + Path(__file__).read_bytes()).hexdigest()[:16]
    made = cache / f"aoti-{key}"
    if not all((made / name).is_file() for name in AOTI_FILES):
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            write_aoti(Path(tmp))
            shutil.rmtree(made, ignore_errors=True)
            Path(tmp).rename(made)
            Path(tmp).mkdir()  # for TemporaryDirectory's own cleanup
    return made


def main(out_dir: Path, aoti_cache: Path | None = None) -> None:
    """Script every fixture module and save it into `out_dir`, with the AOTI files (from `aoti_cache`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if aoti_cache is None:
        write_aoti(out_dir)
    else:
        made = aoti_cached(aoti_cache)
        for name in AOTI_FILES:
            shutil.copyfile(made / name, out_dir / name)
    torch.jit.script(Identity()).save(str(out_dir / "identity.pt"))
    torch.jit.script(Times2()).save(str(out_dir / "times2.pt"))
    torch.jit.script(Layout()).save(str(out_dir / "layout.pt"))
    torch.jit.script(Values()).save(str(out_dir / "values.pt"))
    torch.jit.save(
        torch.jit.script(Identity()),
        str(out_dir / "extra.pt"),
        _extra_files={EXTRA_FILE_NAME: EXTRA_FILE_CONTENT.encode()},
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: make_fixtures.py OUT_DIR [AOTI_CACHE_DIR]")
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
