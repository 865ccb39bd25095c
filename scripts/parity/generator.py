"""The seeded generator of format/init.ts, in numpy: both sides derive every weight and input
from it by tensor name, so fixtures need not store them.

    stream(seed, name) = mulberry32(fnv1a32(utf8(name)) ^ imul(seed, 0x9e3779b9))
    u01 = (u + 0.5) / 2^32
    normal: mean + std * sqrt(-2 ln u1) * cos(2 pi u2)  (u1, u2 consecutive; cosine branch only)
    uniform: low + (high - low) * u01
    convDefault: -b + 2 b u01, b = 1 / sqrt(fanIn)
    constant: value

Values are drawn in float64 and rounded to float32, exactly as initialValues() stores them.
mulberry32's state is a counter (a_k = seed + k * 0x6d2b79f5 mod 2^32), so the stream is
computed for all k at once.
"""

import numpy as np

MASK = 0xFFFFFFFF


def fnv1a32(s):
    h = 0x811C9DC5
    for byte in s.encode("utf-8"):
        h ^= byte
        h = (h * 0x01000193) & MASK
    return h


def mulberry32(seed, n):
    """The first n outputs of mulberry32(seed) as uint32."""
    with np.errstate(over="ignore"):
        k = np.arange(1, n + 1, dtype=np.uint64)
        a = ((np.uint64(seed) + k * np.uint64(0x6D2B79F5)) & np.uint64(MASK)).astype(np.uint32)
        t = a
        t = (t ^ (t >> np.uint32(15))) * (t | np.uint32(1))
        t = t ^ (t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61)))
        return t ^ (t >> np.uint32(14))


def stream_seed(seed, name):
    return (fnv1a32(name) ^ ((seed * 0x9E3779B9) & MASK)) & MASK


def u01(seed, name, n):
    return (mulberry32(stream_seed(seed, name), n).astype(np.float64) + 0.5) / 4294967296.0


def draw(init, n, seed, name):
    """float64 values (already rounded to float32) of an init spec, as drawInit + Float32Array."""
    kind = init["kind"]
    if kind == "constant":
        out = np.full(n, float(init["value"]))
    elif kind == "uniform":
        out = init["low"] + (init["high"] - init["low"]) * u01(seed, name, n)
    elif kind == "convDefault":
        bound = 1.0 / np.sqrt(init["fanIn"])
        out = -bound + 2.0 * bound * u01(seed, name, n)
    elif kind == "normal":
        u = u01(seed, name, 2 * n)
        out = init["mean"] + init["std"] * np.sqrt(-2.0 * np.log(u[0::2])) * np.cos(2.0 * np.pi * u[1::2])
    else:
        raise ValueError(f"unknown init {init}")
    return out.astype(np.float32).astype(np.float64)


def normal(std, mean=0.0):
    return {"kind": "normal", "mean": mean, "std": std}


def uniform(low, high):
    return {"kind": "uniform", "low": low, "high": high}


def constant(value):
    return {"kind": "constant", "value": value}


def conv_default(fan_in):
    return {"kind": "convDefault", "fanIn": fan_in}
