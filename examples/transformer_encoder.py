"""A small Transformer encoder over int64 token ids: nn.Embedding + nn.TransformerEncoder, sequence 32,
width 64, 2 layers of 4 heads: the kind of model people now call millions of times.

Random weights (PyTorch's own initialisation, seeded by the harness); the output is the encoded
sequence, [1, 32, 64]. Use it with `invoke all --suite transformer-encoder`, or
`--model examples/transformer_encoder.py:build --input-shape 1,32 --input-dtype int64`.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB, WIDTH, SEQUENCE, HEADS, LAYERS = 1000, 64, 32, 4, 2


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.position = nn.Parameter(torch.randn(1, SEQUENCE, WIDTH) * 0.02)
        layer = nn.TransformerEncoderLayer(WIDTH, HEADS, dim_feedforward=4 * WIDTH, dropout=0.0, batch_first=True)
        # no nested tensors: every exporter takes the plain path, and the outputs are the same
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(ids) + self.position)


def build() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The encoder in eval mode and an example: one sequence of 32 token ids."""
    return Encoder().eval(), (torch.randint(0, VOCAB, (1, SEQUENCE)),)
