"""Batch-norm statistics for a randomly initialised network, so eval mode keeps activations at their scale."""

from __future__ import annotations

import torch
from torch import nn


def settle(net: nn.Module, channels: int = 3, size: int = 64, passes: int = 2) -> nn.Module:
    """A few training-mode passes over small random images set every running mean and variance.

    Without them eval mode's batch norms (mean 0, variance 1) leave the random convolutions' scale as it
    is, and a deep network's outputs vanish (MobileNetV2's to 1e-10). Convolution statistics hardly depend
    on the image size, so small images do it quickly; the weights themselves are not changed.
    """
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a plain average over the passes
            m.reset_running_stats()
    net.train()
    with torch.no_grad():
        for _ in range(passes):
            net(torch.rand(4, channels, size, size))
    return net.eval()
