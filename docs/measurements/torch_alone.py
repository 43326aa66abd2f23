import time

import numpy as np
import torch

torch.set_num_threads(2)
layers = [
    ("resnext_g32", 2, 128, 128, 56, 56, 3, 1, 1, 32),
    ("resnext_g32_s2", 2, 256, 256, 56, 56, 3, 2, 1, 32),
    ("mbv2_dw3", 2, 144, 144, 56, 56, 3, 1, 1, 144),
    ("mbv2_dw3_s2", 2, 96, 96, 112, 112, 3, 2, 1, 96),
    ("shuffle_g3", 2, 240, 240, 28, 28, 1, 1, 0, 3),
    ("shuffle_g8", 2, 384, 384, 28, 28, 1, 1, 0, 8),
    ("alexnet_k5", 2, 96, 256, 27, 27, 5, 1, 2, 2),
    ("alexnet_k3", 2, 384, 384, 13, 13, 3, 1, 1, 2),
    ("convnext_dw7", 2, 96, 96, 56, 56, 7, 1, 3, 96),
    ("effnet_dw5_s2", 2, 144, 144, 56, 56, 5, 2, 2, 144),
]
for name, N, C, C_out, H, W, k, s, p, G in layers:
    x = torch.randn(N, C, H, W)
    w = torch.randn(C_out, C // G, k, k)
    with torch.no_grad():
        for _ in range(5):
            torch.nn.functional.conv2d(x, w, None, s, p, 1, G)
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, w, None, s, p, 1, G)
            ts.append(time.perf_counter() - t)
    Ho = (H + 2 * p - k) // s + 1
    fl = 2 * N * C_out * Ho * Ho * (C // G) * k * k
    print(f"{name:16s} {np.median(ts) * 1e3:8.3f} ms  {fl / 1e6:8.1f} MFLOP {fl / np.median(ts) / 1e9:6.1f} GF/s")
