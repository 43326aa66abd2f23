"""Real grouped-convolution layers from published networks, at float32: Conv2d (the first table)
and the other five ops (conv1d, conv3d, conv_transpose1d/2d/3d)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IntOrTuple = int | tuple[int, ...]


def _per_dim(value: IntOrTuple, spatial_dims: int) -> tuple[int, ...]:
    return (value,) * spatial_dims if isinstance(value, int) else tuple(value)


@dataclass(frozen=True)
class Layer:
    """One layer: ``op`` is the torch.nn.functional name; an int ``size``/``kernel``/... means the
    same in every spatial dim (a square 2-d image by default)."""

    name: str
    in_channels: int
    out_channels: int
    groups: int
    kernel: IntOrTuple
    stride: IntOrTuple
    padding: IntOrTuple
    size: IntOrTuple  # input spatial size
    batch: int = 2
    op: str = "conv2d"
    output_padding: IntOrTuple = 0  # transposed ops only

    @property
    def spatial_dims(self) -> int:
        return int(self.op[-2])

    @property
    def transposed(self) -> bool:
        return self.op.startswith("conv_transpose")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *_per_dim(self.size, self.spatial_dims))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """(C_out, C_in/G, *k) for a convolution, (C_in, C_out/G, *k) for a transposed one."""
        kernel = _per_dim(self.kernel, self.spatial_dims)
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *kernel)
        return (self.out_channels, self.in_channels // self.groups, *kernel)

    def tensors(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Seeded float32 input and weight."""
        rng = np.random.default_rng(seed)
        return (
            rng.standard_normal(self.input_shape, dtype=np.float32),
            rng.standard_normal(self.weight_shape, dtype=np.float32),
        )

    def conv_kwargs(self) -> dict:
        """Keyword arguments of the op (torch.nn.functional and reference_impl alike)."""
        kwargs = dict(stride=self.stride, padding=self.padding, groups=self.groups)
        if self.transposed:
            kwargs["output_padding"] = self.output_padding
        return kwargs

    @property
    def output_size(self) -> tuple[int, ...]:
        d = self.spatial_dims
        sizes, kernel = _per_dim(self.size, d), _per_dim(self.kernel, d)
        stride, padding = _per_dim(self.stride, d), _per_dim(self.padding, d)
        if self.transposed:
            return tuple(
                (n - 1) * s - 2 * p + k + op
                for n, s, p, k, op in zip(
                    sizes, stride, padding, kernel, _per_dim(self.output_padding, d), strict=False
                )
            )
        return tuple((n + 2 * p - k) // s + 1 for n, s, p, k in zip(sizes, stride, padding, kernel, strict=False))

    @property
    def flops(self) -> int:
        """2 * multiply-adds: every (output of a convolution | input of a transposed one) times one
        group's channels on the other side times the kernel."""
        taps = math.prod(self.weight_shape[1:])  # channels per group on the other side * kernel
        if self.transposed:
            return 2 * self.batch * self.in_channels * math.prod(_per_dim(self.size, self.spatial_dims)) * taps
        return 2 * self.batch * self.out_channels * math.prod(self.output_size) * taps


LAYERS = [
    Layer("ResNeXt-50 32x4d 3x3 g32", 128, 128, 32, 3, 1, 1, 56),
    Layer("ResNeXt-50 32x4d 3x3 g32 s2", 256, 256, 32, 3, 2, 1, 56),
    # Stage 4's first block: 1024 channels, 32 per group, 14x14 -> 7x7, the issue's batch of 8.
    Layer("ResNeXt-50 stage4 g32 s2 N8", 1024, 1024, 32, 3, 2, 1, 14, batch=8),
    Layer("MobileNetV2 dw3x3", 144, 144, 144, 3, 1, 1, 56),
    Layer("MobileNetV2 dw3x3 s2", 96, 96, 96, 3, 2, 1, 112),
    Layer("ShuffleNet v1 1x1 g3", 240, 240, 3, 1, 1, 0, 28),
    Layer("ShuffleNet v1 1x1 g8", 384, 384, 8, 1, 1, 0, 28),
    Layer("AlexNet 5x5 g2", 96, 256, 2, 5, 1, 2, 27),
    Layer("AlexNet 3x3 g2", 384, 384, 2, 3, 1, 1, 13),
    Layer("ConvNeXt-T dw7x7", 96, 96, 96, 7, 1, 3, 56),
    Layer("EfficientNet-B0 dw5x5 s2", 144, 144, 144, 5, 2, 2, 56),
]

# The other ops, at real channel counts and kernels; sizes as noted.
ND_LAYERS = [
    # wav2vec 2.0 base: Conv1d 768 -> 768, k128, pad 64, groups 16 (48 per group); 200 frames (4 s of audio).
    Layer("wav2vec2 pos conv1d k128 g16", 768, 768, 16, 128, 1, 64, 200, batch=1, op="conv1d"),
    # Mamba-130m: depthwise causal Conv1d over d_inner 1536, k4, pad 3; 1024 tokens.
    Layer("Mamba dw conv1d k4", 1536, 1536, 1536, 4, 1, 3, 1024, op="conv1d"),
    # X3D-M stage 2-3: depthwise 3x3x3 Conv3d, 96 channels, 16 frames of 28x28.
    Layer("X3D dw conv3d 3x3x3", 96, 96, 96, 3, 1, 1, (16, 28, 28), batch=1, op="conv3d"),
    # A learned 2x upsampler: depthwise ConvTranspose2d k4 s2 p1, 64 channels, 56 -> 112.
    Layer("dw ConvT2d k4 s2 upsampler", 64, 64, 64, 4, 2, 1, 56, op="conv_transpose2d"),
    # A decoder stage: ConvTranspose2d 128 -> 64, k3 s2 p1 output_padding 1, 28 -> 56.
    Layer("decoder ConvT2d k3 s2 op1", 128, 64, 1, 3, 2, 1, 28, op="conv_transpose2d", output_padding=1),
]
