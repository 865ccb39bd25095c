#!/usr/bin/python3
"""Small PyTorch checkpoints for the tests of checkpoint/ (the TypeScript loader).

Run with Debian's interpreter, which carries PyTorch 1.13 (python3-torch):

    /usr/bin/python3 scripts/make_pth_fixtures.py

Everything is written to checkpoint/fixtures/. Tensor values come from simple
formulas, and `expected.json` records each tensor's dtype, shape and row-major values, so the
tests compare against numbers PyTorch itself produced rather than against the loader's own
reading. The malicious pickles are assembled from raw opcodes and never loaded here.
"""

import collections
import hashlib
import io
import json
import os
import pickle
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime", "checkpoint", "fixtures")


def flat_state_dict():
    """Covers every layout the loader must handle: contiguous, transposed, strided with an
    offset, two tensors sharing one storage, 0-dim, empty, and the non-f32 dtypes."""
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2) * 0.5 - 3.0
    sd["conv.bias"] = torch.tensor([0.25, -1.5], dtype=torch.float32)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25
    sd["fc.weight_t"] = base.t()  # shape (4, 3), stride (1, 4): saved as a view
    grid = torch.arange(20, dtype=torch.float32).reshape(4, 5) - 10.0
    sd["fc.cols"] = grid[:, 1::2]  # shape (4, 2), stride (5, 2), storage offset 1
    sd["fc.row"] = grid[2]  # same storage as fc.cols, offset 10
    sd["bn.running_var"] = torch.arange(3, dtype=torch.float64) + 0.5
    sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    sd["idx.i32"] = torch.tensor([-1, 2, 3], dtype=torch.int32)
    sd["mask.u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["half.h"] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16)
    sd["scalar.f32"] = torch.tensor(3.5, dtype=torch.float32)
    sd["empty.f32"] = torch.zeros(0, 3, dtype=torch.float32)
    assert not sd["fc.weight_t"].is_contiguous() and not sd["fc.cols"].is_contiguous()
    return sd


def init_state_dict():
    """The layout of DeepLab_resnet_pretrained_init: every key under one wrapper module
    (`Scale.`), the init's own 2048-in classifier under `Scale.layer5`, and (as a file saved
    by PyTorch >= 0.4.1 would have) a num_batches_tracked buffer."""
    sd = collections.OrderedDict()
    sd["Scale.conv1.weight"] = torch.arange(4 * 3 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3, 3) * 0.01
    for i, name in enumerate(["weight", "bias", "running_mean", "running_var"]):
        sd["Scale.bn1." + name] = torch.arange(4, dtype=torch.float32) + float(i)
    sd["Scale.bn1.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    sd["Scale.layer1.0.conv1.weight"] = torch.arange(8 * 4, dtype=torch.float32).reshape(8, 4, 1, 1) * -0.125
    sd["Scale.layer3.22.bn3.running_var"] = torch.arange(8, dtype=torch.float32) * 2.0 + 1.0
    for b in range(2):
        sd["Scale.layer5.conv2d_list.%d.weight" % b] = torch.full((2, 8, 3, 3), float(b + 1))
        sd["Scale.layer5.conv2d_list.%d.bias" % b] = torch.full((2,), float(-b))
    return sd


def data_parallel_module():
    """A module wrapped as DataParallel (keys `module.0.weight`, ...), saved the way training
    scripts save it: nested under 'state_dict' next to other entries. Its state_dict carries
    the `_metadata` attribute, which pickles as a BUILD on the OrderedDict."""
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) * 0.5 + i)
        net[1].running_mean.copy_(torch.tensor([0.1, 0.2, 0.3]))
        net[1].num_batches_tracked.fill_(11)
    wrapped = torch.nn.DataParallel(net)
    return {"state_dict": wrapped.state_dict(), "iteration": 5, "arch": "tiny"}


def advent_discriminator():
    """ADVENT's discriminator layout: an nn.Sequential whose convs sit at indices 0,2,4,6,8."""
    chans = [3, 4, 4, 4, 4, 1]
    layers = []
    for i in range(5):
        layers.append(torch.nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1))
        if i < 4:
            layers.append(torch.nn.LeakyReLU(0.2))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) * 0.001 - i)
    return net.state_dict()


def describe(sd):
    """Row-major values as PyTorch reads them back; f16 is recorded as raw bits."""
    out = collections.OrderedDict()
    for key, t in sd.items():
        c = t.contiguous()
        if c.dtype == torch.float16:
            values = c.flatten().view(torch.int16).numpy().astype("uint16").tolist()
        else:
            values = c.flatten().tolist()
        out[key] = {"dtype": str(c.dtype).replace("torch.", ""), "shape": list(c.shape), "values": values}
    return out


def os_system_pickle(module):
    """REDUCE of `<module>.system('echo pwned')`, protocol 2, from raw opcodes."""
    return (
        b"\x80\x02"  # PROTO 2
        + b"c" + module.encode() + b"\nsystem\n"  # GLOBAL
        + b"X" + len(b"echo pwned").to_bytes(4, "little") + b"echo pwned"  # BINUNICODE
        + b"\x85"  # TUPLE1
        + b"R"  # REDUCE
        + b"."  # STOP
    )


def to_json(obj, depth=0):
    """Nested dicts one key per line, leaves (tensor descriptions, strings) on one line each."""
    if isinstance(obj, dict) and any(isinstance(v, dict) for v in obj.values()):
        pad = " " * (depth + 1)
        items = ["%s%s: %s" % (pad, json.dumps(k), to_json(v, depth + 1)) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return json.dumps(obj)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith((".pth", ".pkl", ".json")):
            os.remove(os.path.join(OUT, name))

    manifest = collections.OrderedDict()

    flat = flat_state_dict()
    torch.save(flat, os.path.join(OUT, "flat_zip.pth"))
    torch.save(flat, os.path.join(OUT, "flat_legacy.pth"), _use_new_zipfile_serialization=False)
    # The same archive with every entry deflated: torch never compresses, other zip tools do.
    with zipfile.ZipFile(os.path.join(OUT, "flat_zip.pth")) as src, zipfile.ZipFile(
        os.path.join(OUT, "flat_zip_deflated.pth"), "w", compression=zipfile.ZIP_DEFLATED
    ) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    manifest["flat"] = describe(flat)

    init = init_state_dict()
    tmp = os.path.join(OUT, "init_legacy.tmp")
    torch.save(init, tmp, _use_new_zipfile_serialization=False)
    digest = sha256(tmp)
    # Named like the official files: the suffix is the first 8 hex digits of the SHA-256.
    init_name = "init_legacy-%s.pth" % digest[:8]
    os.replace(tmp, os.path.join(OUT, init_name))
    manifest["init"] = {"file": init_name, "sha256": digest, "tensors": describe(init)}

    nested = data_parallel_module()
    torch.save(nested, os.path.join(OUT, "nested_state_dict.pth"))
    manifest["nested"] = describe(nested["state_dict"])

    advent = advent_discriminator()
    torch.save(advent, os.path.join(OUT, "advent_d.pth"))
    manifest["advent_d"] = describe(advent)

    with open(os.path.join(OUT, "malicious_os_system.pkl"), "wb") as f:
        f.write(os_system_pickle("os"))
    # How `os.system` really pickles on Linux (`posix.system`), inside a torch-style zip.
    with zipfile.ZipFile(os.path.join(OUT, "malicious_posix_system.pth"), "w") as z:
        z.writestr("archive/data.pkl", os_system_pickle("posix"))
        z.writestr("archive/version", "3\n")

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        f.write(to_json(manifest) + "\n")

    total = 0
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, name))
        total += size
        assert size < 100_000, name
        print("%8d  %s" % (size, name))
    assert total < 1_000_000
    print("%8d  total" % total)


if __name__ == "__main__":
    main()
