"""One model's description and geometry (shapes per sample and per call), shared by every exporter and runner."""

from __future__ import annotations

import math
from dataclasses import dataclass

BUILTIN_KINDS = ("mlp", "mlp_branch", "op_chain", "conv_bn_relu")  # made by the harness from a spec
USER_KINDS = ("torchscript", "pt2", "factory")  # a user's model: a TorchScript file, a .pt2 file, a Python factory
MODEL_KINDS = (*BUILTIN_KINDS, *USER_KINDS)  # docs/runner-contract.md, "Model kinds"
MLP_KINDS = ("mlp", "mlp_branch")


@dataclass(frozen=True)
class Training:
    seed: int = 0
    steps: int = 4000
    batch_size: int = 64
    learning_rate: float = 0.005


DTYPES = ("float32", "float64", "int64", "int32", "bool")  # of an input tensor (docs/runner-contract.md)
DISTRIBUTIONS = ("uniform", "normal", "integers")


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor of a user's model: the exact shape of one call, its dtype, how its values are drawn.

    uniform: [low, high); normal: mean `low`, standard deviation `high`; integers: low … high, both included.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    distribution: str = "uniform"
    low: float = 0.0
    high: float = 1.0
    seed: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """One model, described once; every language's runner is rendered or exported from this."""

    name: str
    layers: tuple[int, ...] = ()  # MLP kinds: widths, input first
    activation: str = "relu"
    target: str = "abs_x1_plus_x2"
    training: Training = Training()
    kind: str = "mlp"  # one of MODEL_KINDS (docs/runner-contract.md, "Model kinds")
    length: int = 1000  # op_chain: how many times the helper is applied
    size: int = 2  # op_chain: floats per sample
    channels: tuple[int, int] = (3, 5)  # conv_bn_relu: input and output channels
    kernel: int = 3  # conv_bn_relu: square kernel, no padding, stride 1
    image: tuple[int, int] = (224, 224)  # conv_bn_relu: input height and width
    path: str = ""  # a user's model: the file (absolute), or "FILE.py:FUNCTION" for a factory
    tensors: tuple[TensorSpec, ...] = ()  # a user's model: its input tensors, in argument order
    outputs: tuple[int, ...] = ()  # a user's model: values per call of each output, found when it is prepared

    @property
    def is_user(self) -> bool:
        return self.kind in USER_KINDS

    @property
    def is_mlp(self) -> bool:
        return self.kind in MLP_KINDS

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.is_user:
            return self.tensors[0].shape
        if self.is_mlp:
            return (self.layers[0],)
        if self.kind == "op_chain":
            return (self.size,)
        return (self.channels[0], *self.image)

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.is_user:  # every output flattened and joined (docs/runner-contract.md)
            return (sum(self.outputs),)
        if self.is_mlp:
            return (self.layers[-1],)
        if self.kind == "op_chain":
            return (self.size,)
        return (self.channels[1], self.image[0] - self.kernel + 1, self.image[1] - self.kernel + 1)

    @property
    def sample_size(self) -> int:
        return math.prod(self.sample_shape)

    @property
    def output_size(self) -> int:
        return math.prod(self.output_shape)

    def input_shape(self, batch: int) -> tuple[int, ...]:
        """The tensor shape of one call (docs/runner-contract.md): the seed's [n] for one MLP sample."""
        if self.is_user:  # its given shape is the call's (batch 1)
            return self.sample_shape
        if batch == 1 and self.kind != "conv_bn_relu":
            return self.sample_shape
        return (batch, *self.sample_shape)

