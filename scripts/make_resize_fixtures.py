#!/usr/bin/python3
"""Pillow's own resizes, as fixtures for datasets/resize.ts.

Run with Debian's interpreter and its Pillow (python3-pil, 9.4 on bookworm):

    npm run fixtures:resize     # = /usr/bin/python3 scripts/make_resize_fixtures.py

The official AdaptSegNet loaders resize RGB images with `img.resize((W, H), Image.BICUBIC)` and
label maps with `label.resize((W, H), Image.NEAREST)`; this script makes both calls on source
images that the TypeScript test can rebuild byte for byte, at every size the loaders use plus odd
sizes, one-axis changes and upscaling.

Why the sources are not stored: a 2048x1024 noise image is 6 MB and does not compress. Each source
is instead a pure function of a seed string that both sides can compute: the bytes of SHAKE-256
(FIPS 202, in Python's hashlib and Node's crypto) of that string. The "noise" kind uses them as
they are (every neighbour is independent, so the cubic kernel's negative lobes overshoot and the
clipping to 0..255 is exercised constantly); the "smooth" kind is gradients with a checkerboard of
inverted cells (hard edges between smooth areas) plus a little of that noise. All of its
arithmetic is on non-negative integers, so Python's // and the test's Math.floor agree.

What is stored, in datasets/fixtures/resize/: cases.json with, per case, the seed string, the
sizes, the SHA-256 of the source (so a test can tell a wrongly rebuilt source from a wrong
resize) and the SHA-256 of Pillow's output (raw bytes, row-major, RGB interleaved or one byte per
label); and for small outputs the output itself as a PNG (lossless), so a failing test can count
the differing values instead of only reporting a different hash.
"""

import hashlib
import json
import os

import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime", "data", "fixtures", "resize")

# Outputs up to this many pixels are also stored as PNG files.
PNG_MAX_PIXELS = 160 * 96


def shake(seed, n):
    return hashlib.shake_256(seed.encode("utf-8")).digest(n)


def noise_rgb(seed, w, h):
    return shake(seed, w * h * 3)


def smooth_rgb(seed, w, h):
    """Gradient per channel (x, y, x + y), inverted on alternate cells of an 8x8 checkerboard over
    the image, plus noise in -4..4 from the seed's bytes, clamped to 0..255."""
    noise = shake(seed, w * h * 3)
    dx, dy, dxy = max(w - 1, 1), max(h - 1, 1), max(w + h - 2, 1)
    out = bytearray(w * h * 3)
    i = 0
    for y in range(h):
        gy = (y * 255) // dy
        cy = (y * 8) // h
        for x in range(w):
            inverted = ((x * 8) // w + cy) % 2 == 1
            for g in ((x * 255) // dx, gy, ((x + y) * 255) // dxy):
                base = 255 - g if inverted else g
                v = base + noise[i] % 9 - 4
                out[i] = 0 if v < 0 else 255 if v > 255 else v
                i += 1
    return bytes(out)


def label_map(seed, w, h):
    return shake(seed, w * h)


def source(kind, seed, w, h):
    if kind == "noise":
        return Image.frombytes("RGB", (w, h), noise_rgb(seed, w, h))
    if kind == "smooth":
        return Image.frombytes("RGB", (w, h), smooth_rgb(seed, w, h))
    if kind == "label":
        return Image.frombytes("L", (w, h), label_map(seed, w, h))
    raise ValueError(kind)


# (group, source size, output sizes). The dataset groups are the official loaders' sizes.
SIZES = [
    ("gta5", (1914, 1052), [(1280, 720), (1914, 720), (1280, 1052)]),
    ("cityscapes", (2048, 1024), [(1024, 512)]),
    ("synthia", (1280, 760), [(1280, 760), (1024, 512)]),
    ("crosscity", (2048, 1024), [(1024, 512)]),
    ("odd", (37, 23), [(20, 11), (37, 11), (20, 23), (37, 23)]),
    ("odd", (101, 57), [(64, 33), (33, 64), (101, 7)]),
    ("up", (50, 30), [(129, 77), (129, 30), (50, 77), (150, 90)]),
    ("mixed", (40, 30), [(17, 70), (97, 13)]),
    ("tiny", (1, 1), [(5, 3)]),
    ("tiny", (7, 1), [(3, 1), (9, 2)]),
    ("tiny", (5, 9), [(1, 1), (2, 9)]),
    ("strong", (640, 360), [(13, 7), (160, 90)]),
]

KINDS = ["noise", "smooth", "label"]


def resize(img, kind, size):
    # Exactly the official calls; reducing_gap stays at its default (None).
    return img.resize(size, Image.NEAREST if kind == "label" else Image.BICUBIC)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith(".png"):
            os.remove(os.path.join(OUT, name))
    cases = []
    for group, (w, h), outs in SIZES:
        for kind in KINDS:
            seed = f"{kind}:{group}:{w}x{h}"
            img = source(kind, seed, w, h)
            source_sha = hashlib.sha256(img.tobytes()).hexdigest()
            for ow, oh in outs:
                out = resize(img, kind, (ow, oh))
                raw = out.tobytes()
                assert len(raw) == ow * oh * (1 if kind == "label" else 3)
                case = {
                    "name": f"{kind}-{group}-{w}x{h}-to-{ow}x{oh}",
                    "kind": kind,
                    "seed": seed,
                    "in": [w, h],
                    "out": [ow, oh],
                    "source_sha256": source_sha,
                    "sha256": hashlib.sha256(raw).hexdigest(),
                }
                if ow * oh <= PNG_MAX_PIXELS:
                    case["png"] = case["name"] + ".png"
                    out.save(os.path.join(OUT, case["png"]), optimize=True)
                cases.append(case)
                print(case["name"], case["sha256"][:16], case.get("png", ""))
    doc = {
        "about": "Pillow resizes for datasets/resize.test.ts; made by scripts/make_resize_fixtures.py",
        "pillow": PIL.__version__,
        "cases": cases,
    }
    # One case per line: diffs of a regenerated file stay readable.
    lines = [json.dumps(c) for c in cases]
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write('{"about": %s,\n "pillow": %s,\n "cases": [\n  ' % (json.dumps(doc["about"]), json.dumps(doc["pillow"])))
        f.write(",\n  ".join(lines))
        f.write("\n ]\n}\n")


if __name__ == "__main__":
    main()
