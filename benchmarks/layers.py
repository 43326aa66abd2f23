"""Real grouped-convolution layers from published networks, at float32, batch 2."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layer:
    name: str
    in_channels: int
    out_channels: int
    groups: int
    kernel: int
    stride: int
    padding: int
    size: int          # square input, H = W
    batch: int = 2

    def tensors(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Seeded float32 input (N, C_in, H, W) and weight (C_out, C_in/G, k, k)."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.batch, self.in_channels, self.size, self.size), dtype=np.float32)
        w = rng.standard_normal(
            (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel), dtype=np.float32
        )
        return x, w

    def conv_kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, groups=self.groups)

    @property
    def output_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def flops(self) -> int:
        """2 * multiply-adds of the convolution."""
        return 2 * self.batch * self.out_channels * self.output_size**2 * (self.in_channels // self.groups) * self.kernel**2


LAYERS = [
    Layer("ResNeXt-50 32x4d 3x3 g32", 128, 128, 32, 3, 1, 1, 56),
    Layer("ResNeXt-50 32x4d 3x3 g32 s2", 256, 256, 32, 3, 2, 1, 56),
    Layer("MobileNetV2 dw3x3", 144, 144, 144, 3, 1, 1, 56),
    Layer("MobileNetV2 dw3x3 s2", 96, 96, 96, 3, 2, 1, 112),
    Layer("ShuffleNet v1 1x1 g3", 240, 240, 3, 1, 1, 0, 28),
    Layer("ShuffleNet v1 1x1 g8", 384, 384, 8, 1, 1, 0, 28),
    Layer("AlexNet 5x5 g2", 96, 256, 2, 5, 1, 2, 27),
    Layer("AlexNet 3x3 g2", 384, 384, 2, 3, 1, 1, 13),
    Layer("ConvNeXt-T dw7x7", 96, 96, 96, 7, 1, 3, 56),
    Layer("EfficientNet-B0 dw5x5 s2", 144, 144, 144, 5, 2, 2, 56),
]
