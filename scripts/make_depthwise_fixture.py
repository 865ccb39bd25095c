#!/usr/bin/python3
"""PyTorch's depthwise convolution and its gradients, as a fixture for dsl/ops/depthwise.test.ts.

Run with Debian's interpreter and its PyTorch (python3-torch, 1.13):

    npm run fixtures:depthwise     # = /usr/bin/python3 scripts/make_depthwise_fixture.py

A depthwise convolution is F.conv2d(x, w, b, stride, padding, dilation, groups=C) with w of shape
[C, 1, KH, KW] (torchvision's MobileNetV2 layout). For each configuration (stride 1; stride 2;
dilation 2 with an asymmetric kernel, stride and padding) this writes, in float64: the inputs x, w,
b, the output y, a cotangent g for y, and the gradients of sum(g * y) in x, w and b, which autograd
computes through PyTorch's own depthwise backward kernels. JSON numbers are printed with repr, so
every float64 value round-trips exactly.
"""

import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dsl", "fixtures", "depthwise.json")

CONFIGS = [
    {"name": "3x3 stride 1 padding 1, bias", "x": [2, 3, 7, 8], "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "bias": True},
    {"name": "3x3 stride 2 padding 1, bias", "x": [1, 4, 9, 7], "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "bias": True},
    {"name": "3x2 dilation 2, stride [1,2], padding [2,1]", "x": [2, 2, 10, 9], "kernel": [3, 2], "stride": [1, 2], "padding": [2, 1], "dilation": [2, 2], "bias": False},
]


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(cfg, gen):
    n, c, h, w = cfg["x"]
    kh, kw = cfg["kernel"]
    u = lambda *shape: (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    x, wt = u(n, c, h, w), u(c, 1, kh, kw)
    b = u(c) if cfg["bias"] else None
    y = F.conv2d(x, wt, b, stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=c)
    g = torch.rand(y.shape, generator=gen, dtype=torch.float64) * 2 - 1
    (y * g).sum().backward()
    out = dict(cfg, y_shape=list(y.shape), x_data=flat(x), w=flat(wt), y=flat(y), g=flat(g), dx=flat(x.grad), dw=flat(wt.grad))
    if b is not None:
        out.update(b=flat(b), db=flat(b.grad))
    return out


def main():
    gen = torch.Generator().manual_seed(16)
    cases = [case(cfg, gen) for cfg in CONFIGS]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
