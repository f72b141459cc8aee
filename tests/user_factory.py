"""A user's model for the conformance test: two inputs of two dtypes, two outputs (a tuple)."""

from __future__ import annotations

import torch


class TwoInTwoOut(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(x) + self.embed(ids).sum(1)
        return torch.relu(h), h.sum(-1, keepdim=True) * 0.5


def build() -> TwoInTwoOut:
    return TwoInTwoOut().eval()
