"""Write the TorchScript fixture modules the bridge's JUnit tests load.

Usage: python make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    def fail(self, message: str) -> int:
        raise RuntimeError(message)


def main(out_dir: Path) -> None:
    """Script every fixture module and save it into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
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
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUT_DIR")
    main(Path(sys.argv[1]))
