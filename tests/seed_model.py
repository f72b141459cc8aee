"""The seed's MyNN (Linear(2,8)-ReLU-Linear(8,8)-ReLU-Linear(8,1)) for tests that seed and export it themselves."""

from __future__ import annotations

import torch


class MyNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(2, 8)
        self.l2 = torch.nn.Linear(8, 8)
        self.l3 = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))
