"""The Python runners' output keeper (python/runner_common.py): every call's output lands in its slot.

The timed loop hands the keeper runs of consecutive calls; a run that fits the slots is copied in one
operation, one that wraps around or holds anything but float32 tensors of the right size is copied output
by output, and a wrong size fails in one line either way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _runner_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runner_common", ROOT / "python" / "runner_common.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rc = _runner_common()


def _keeper(slots: int, output_size: int = 2) -> object:
    return rc.TensorKeeper(torch, {"batch": 1, "output_size": output_size, "slots": slots})


def test_a_run_that_fits_is_copied_in_one_operation() -> None:
    keeper = _keeper(4)
    ys = [torch.tensor([[float(i), -float(i)]]) for i in range(3)]
    assert keeper.copy_run(1, ys)
    keeper.take(1, ys)
    assert keeper.array().tolist() == [0, 0, 0, 0, 1, -1, 2, -2]


def test_a_run_that_wraps_around_goes_to_slot_i_mod_slots() -> None:
    keeper = _keeper(3)
    keeper.take(2, [torch.full((1, 2), float(i)) for i in (2, 3, 4)])  # calls 2, 3, 4: slots 2, 0, 1
    assert keeper.array().tolist() == [3, 3, 4, 4, 2, 2]


def test_outputs_that_require_grad_int_outputs_and_tuples_are_kept() -> None:
    keeper = _keeper(3)
    w = torch.ones(2, requires_grad=True)
    keeper.take(0, [w * 5, torch.tensor([[7, 8]]), (torch.tensor([9.0]), torch.tensor([10.0]))])
    assert keeper.array().tolist() == [5, 5, 7, 8, 9, 10]


def test_an_output_of_the_wrong_size_fails_naming_its_batch(capsys: pytest.CaptureFixture[str]) -> None:
    keeper = _keeper(3)
    sys.argv = ["runner.py"]
    with pytest.raises(SystemExit):
        keeper.take(0, [torch.zeros(2), torch.zeros(3)])
    assert "the output of batch 1 has 3 values, expected batch x output_size = 1 x 2 = 2" in capsys.readouterr().err


@pytest.mark.parametrize(("block", "calls"), [(1, 130), (10, 130), (5, 5)])
def test_the_timed_loop_keeps_every_call_in_order_for_any_block(block: int, calls: int) -> None:
    xs = [torch.tensor([float(s)]) for s in range(5)]
    made: list[int] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        made.append(len(made))
        return x * 1000 + made[-1]  # which input and which call

    keeper = _keeper(5, output_size=1)
    timings = [0] * (calls // block)
    rc._timed(model, xs, keeper, timings, block, range(calls // block))
    last = [max(i for i in range(calls) if i % 5 == s) for s in range(5)]  # slot s: the last call i ≡ s
    assert len(made) == calls
    assert keeper.array().tolist() == [s * 1000 + i for s, i in enumerate(last)]
    assert all(t > 0 for t in timings)


class _RowWriter:
    """A keeper whose calls write their own slot's row (python-aoti-minimal's SlotRows): it needs no returns."""

    returns = False

    def __init__(self) -> None:
        self.taken: list[tuple[int, list[object]]] = []

    def take(self, first: int, ys: list[object]) -> None:
        self.taken.append((first, ys))


@pytest.mark.parametrize(("block", "calls"), [(1, 130), (10, 130), (100, 300)])
def test_a_call_that_writes_its_own_row_is_timed_without_holding_its_returns(block: int, calls: int) -> None:
    """Every call made once, in order, input i % slots; every block timed; nothing handed to the keeper."""
    xs = list(range(7))
    rows = [-1] * 7
    order: list[int] = []

    def model(x: int) -> None:
        order.append(x)
        rows[x] = len(order) - 1  # the call writes its slot's row itself

    keeper, timings = _RowWriter(), [0] * (calls // block)
    rc._timed(model, xs, keeper, timings, block, range(calls // block))
    assert order == [i % 7 for i in range(calls)]
    assert rows == [max(i for i in range(calls) if i % 7 == s) for s in range(7)]
    assert all(t > 0 for t in timings)
    assert keeper.taken == []  # nothing handed to the keeper
