#!/usr/bin/python3
"""A synthetic torchvision-format MobileNetV2 ImageNet checkpoint for the import tests.

    npm run fixtures:mobilenet      # = /usr/bin/python3 scripts/make_mobilenet_pth.py

torchvision is not installed: the model is scripts/parity/mobilenet.py's MobileNetV2, written
from torchvision's definition, so the state dict has torchvision's keys (features.0..18 with
num_batches_tracked, classifier.1) and shapes. It is small: width 0.1 (every stage at 8 to 32
channels, features.18 at torchvision's 1280) and a 10-class classifier instead of 1000, which
changes classifier.1's shape only (the import skips it). Values are seeded random, running
statistics included. Writes checkpoint/fixtures/mobilenet_v2_w0.1_synthetic.pth and, beside it,
.json with each tensor's shape and float64 sum, the numbers the test compares against.
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "parity"))

from mobilenet import MobileNetV2  # noqa: E402

OUT = os.path.join(HERE, "..", "checkpoint", "fixtures")
NAME = "mobilenet_v2_w0.1_synthetic"
WIDTH = 0.1


def main():
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=10, width_mult=WIDTH)
    sd = model.state_dict()
    with torch.no_grad():
        for key, t in sd.items():
            if key.endswith("num_batches_tracked"):
                t.fill_(1000)
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            else:
                t.normal_(0.0, 0.1)
    os.makedirs(OUT, exist_ok=True)
    torch.save(sd, os.path.join(OUT, f"{NAME}.pth"))
    described = {k: {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "sum": float(t.double().sum())} for k, t in sd.items()}
    with open(os.path.join(OUT, f"{NAME}.json"), "w") as f:
        json.dump({"widthMult": WIDTH, "tensors": described}, f, indent=0)
    print(f"{NAME}: {len(sd)} tensors, {sum(t.numel() for t in sd.values())} elements")


if __name__ == "__main__":
    main()
