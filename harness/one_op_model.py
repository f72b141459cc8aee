"""The one-op model of the cost decomposition (harness/decomposition.py): y = x + 1, one operator, no weights.

A runner's call on it costs what the runtime adds around any operator; it is loaded the way a user's factory
model is (`build` returns the nn.Module).
"""

import torch


class OneOp(torch.nn.Module):
    """y = x + 1: one elementwise operator that no compiler can fold away."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def build() -> torch.nn.Module:
    return OneOp().eval()
