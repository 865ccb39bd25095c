#!/usr/bin/python3
"""PyTorch reference fixtures for the parity suite (docs/parity.md).

    npm run parity:fixtures      # = /usr/bin/python3 scripts/parity/make_fixtures.py [case ...]

Run with Debian's interpreter (python3-torch, PyTorch 1.13, and numpy). Writes, per case,
scripts/parity/fixtures/<case>.json (what was run, how every weight and input is derived,
one record per compared tensor) and <case>.bin (the expected values, float32 little-endian).
`npm run parity` (scripts/parity.ts) runs the generated WebGPU code on the same weights and
inputs and compares; it never runs Python.

Weights and inputs are not stored: both sides draw them from the seeded generator of
format/init.ts (generator.py here) by tensor name. The reference runs in float64, from the
float32-rounded weights and inputs the GPU gets, and every record also carries the error of
the same computation in PyTorch float32 (`torchF32`), the noise floor a float32
implementation can be expected to reach; records of a second training iteration also carry the
reference's own sensitivity to a float32-sized perturbation of its starting state
(`sensitivity`, see SENSITIVITY_RUNS).

A tensor of up to FULL elements is stored whole. A larger one is stored at SAMPLES indices
drawn from the generator (stream `sample/<record id>`), with its exact max |x| and L2 norm over
all elements; see docs/parity.md for the metric.
"""

import copy
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import generator as gen  # noqa: E402
from mobilenet import DeeplabMobileNet, mobilenet_forward_inits, mobilenet_inits  # noqa: E402
from reference import DeeplabMulti, FCDiscriminator, Trainer, load_from_generator, official_inits, set_bn_mode  # noqa: E402

OUT = os.path.join(HERE, "fixtures")
SEED = 1
FULL = 512
SAMPLES = 512
F64, F32 = torch.float64, torch.float32

# One thread: reductions run in one order, so reruns give the same bytes whatever the load or core
# count (and it is faster than two threads on a shared 2-core machine).
torch.set_num_threads(1)

# Tolerances on the relative error (docs/parity.md): forward values 1e-4, training state 1e-3.
TOL_FORWARD = 1e-4
TOL_TRAIN = 1e-3

# Below this max |x| a reference tensor is zero in exact arithmetic (float64 gives ~1e-17): the
# train-mode running means of MobileNetV2's expand-conv and head BNs, a bias-free 1x1 conv of a
# batch-normalised (zero-mean) input. Relative to 1e-17, float32's 1e-8 rounding reads as 1e9.
STRUCTURAL_ZERO = 1e-12


# ---------------------------------------------------------------------------------------------
# Fixture writing


class Fixture:
    def __init__(self, case, program, config, inits_from="spec"):
        """inits_from: "spec" when the weights follow the official initialisation (the runner
        then checks the program declares the same), "parity" for the forward's own."""
        self.doc = {"case": case, "program": program, "seed": SEED, "full": FULL, "samples": SAMPLES,
                    "config": config, "initsFrom": inits_from, "inits": {}, "steps": []}
        self.chunks = []
        self.offset = 0

    def record(self, rid, name, group, tol, ref, f32=None, initial=None, whole=False):
        """One compared tensor. rid is unique in the fixture (it seeds the sample indices); name
        is the program's output or state name; initial, for parameters, gives maxAbsDelta;
        whole stores every element whatever the size."""
        flat = ref.detach().to(F64).reshape(-1).numpy() if torch.is_tensor(ref) else np.asarray(ref, dtype=np.float64).reshape(-1)
        if flat.size and float(np.abs(flat).max()) < STRUCTURAL_ZERO:
            # Zero in exact arithmetic: recorded as zero, so the runner's error is absolute.
            flat = np.zeros_like(flat)
        n = flat.size
        rec = {"id": rid, "name": name, "group": group, "tol": tol, "shape": list(ref.shape) if torch.is_tensor(ref) else [],
               "maxAbs": float(np.abs(flat).max()) if n else 0.0, "l2": float(np.sqrt((flat ** 2).sum()))}
        if n <= FULL or whole:
            values = flat
            rec["stored"] = "full"
        else:
            values = flat[sample_indices(rid, n)]
            rec["stored"] = "sampled"
        rec["offset"], rec["count"] = self.offset, int(values.size)
        self.chunks.append(values.astype("<f4"))
        self.offset += values.size
        other = None
        if f32 is not None:
            other = f32.detach().to(F64).reshape(-1).numpy() if torch.is_tensor(f32) else np.asarray(f32, dtype=np.float64).reshape(-1)
            rec["torchF32"] = rel_error(other, flat)
        if initial is not None:
            init = initial.detach().to(F64).reshape(-1).numpy()
            rec["maxAbsDelta"] = delta = float(np.abs(flat - init).max())
            if other is not None and delta > 0:
                rec["torchF32Update"] = float(np.abs(other - flat).max()) / delta
        return rec

    def write(self):
        os.makedirs(OUT, exist_ok=True)
        case = self.doc["case"]
        with open(os.path.join(OUT, f"{case}.bin"), "wb") as f:
            f.write(np.concatenate(self.chunks).astype("<f4").tobytes() if self.chunks else b"")
        with open(os.path.join(OUT, f"{case}.json"), "w") as f:
            f.write(render_json(self.doc))
        size = os.path.getsize(os.path.join(OUT, f"{case}.bin")) + os.path.getsize(os.path.join(OUT, f"{case}.json"))
        print(f"parity fixtures: {case}: {sum(len(s['records']) for s in self.doc['steps'])} records, {size / 1e6:.2f} MB")


def render_json(doc):
    """Compact JSON with one init, input or record per line: small, and diffs stay readable."""
    def block(items, indent):
        pad = " " * indent
        return "{\n" + ",\n".join(f"{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in items) + "\n" + " " * (indent - 1) + "}"

    steps = []
    for step in doc["steps"]:
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in step.items() if k not in ("inputs", "records"))
        inputs = block(step["inputs"].items(), 4)
        records = "[\n" + ",\n".join("    " + json.dumps(r) for r in step["records"]) + "\n   ]"
        steps.append("  {" + (head + ", " if head else "") + f'"inputs": {inputs},\n   "records": {records}}}')
    top = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k not in ("inits", "steps")]
    return ("{\n " + ",\n ".join(top) + f',\n "inits": {block(doc["inits"].items(), 2)}'
            + ',\n "steps": [\n' + ",\n".join(steps) + "\n ]\n}\n")


def sample_indices(rid, n):
    """SAMPLES indices in [0, n) from the generator (the runner draws the same)."""
    return np.floor(gen.u01(SEED, f"sample/{rid}", SAMPLES) * n).astype(np.int64)


def rel_error(a, b):
    """max |a - b| / max |b| (absolute when b is all zero)."""
    scale = float(np.abs(b).max()) if b.size else 0.0
    diff = float(np.abs(a - b).max()) if b.size else 0.0
    return diff / scale if scale > 0 else diff


# ---------------------------------------------------------------------------------------------
# Inputs, derived from the generator by name


def image_input(stream, shape):
    """Mean-subtracted BGR-like values: U(-128, 128)."""
    spec = {"kind": "values", "stream": stream, "init": gen.uniform(-128.0, 128.0)}
    return spec, values_of(spec, shape)


def values_of(spec, shape):
    n = int(np.prod(shape))
    return torch.from_numpy(gen.draw(spec["init"], n, SEED, spec["stream"])).reshape(shape)


def label_input(stream, shape, classes, ignore):
    """floor(U(0, classes + 2)) rounded through float32; values >= classes become `ignore`
    (about 2 pixels in 21 are ignored)."""
    spec = {"kind": "labels", "stream": stream, "classes": classes, "ignoreIndex": ignore, "init": gen.uniform(0.0, classes + 2.0)}
    n = int(np.prod(shape))
    v = np.floor(gen.draw(spec["init"], n, SEED, stream))
    v[v >= classes] = ignore
    return spec, torch.from_numpy(v.astype(np.int64)).reshape(shape)


# ---------------------------------------------------------------------------------------------
# 1. ResNet-101 DeepLab-v2 forward

FORWARD_SIZES = {"a": (65, 65), "b": (57, 73)}


def forward_inits(model):
    """Parity-only distributions (docs/parity.md): He-like conv weights N(0, 1/fan_in) so that
    activations keep their scale through 101 layers; random BN affine and running statistics so
    both BN modes are exercised; bn3's weight in [0.1, 0.3] (small residual branches, as with
    zero-gamma init) keeps train-mode BN, which renormalises ~100 times on 9x9 maps, well
    conditioned in float32. The heads keep the official N(0, 0.01) and U(+-1/sqrt(9 C_in))."""
    out = official_inits("G", model)
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked") or "conv2d_list" in key:
            continue
        name, leaf = "G/" + key, key.split(".")[-1]
        if leaf == "weight" and t.dim() == 4:
            out[name] = gen.normal(float(1.0 / np.sqrt(t.shape[1] * t.shape[2] * t.shape[3])))
        elif leaf == "weight":
            out[name] = gen.uniform(0.1, 0.3) if key.split(".")[-2] == "bn3" else gen.uniform(0.5, 1.5)
        elif leaf == "bias":
            out[name] = gen.uniform(-0.2, 0.2)
        elif leaf == "running_mean":
            out[name] = gen.uniform(-0.2, 0.2)
        elif leaf == "running_var":
            out[name] = gen.uniform(0.5, 1.5)
    return out


def forward_case():
    fx = Fixture("deeplab-resnet101", "parity-deeplab-resnet101",
                 {"network": {"blocks": [3, 4, 23, 3], "width": 64, "numClasses": 19, "asppBranches": 2, "heads": "multi"},
                  "sizes": {k: list(v) for k, v in FORWARD_SIZES.items()}}, inits_from="parity")
    inputs, images = {}, {}
    for k, (h, w) in FORWARD_SIZES.items():
        spec, x = image_input(f"input/image_{k}", (1, 3, h, w))
        inputs[f"image_{k}"], images[k] = spec, x
    results = {}
    for dtype in (F64, F32):
        G = DeeplabMulti((3, 4, 23, 3), 64, 19, 2).to(dtype)
        inits = forward_inits(G)
        fx.doc["inits"] = inits
        load_from_generator(G, "G", inits, SEED, dtype)
        out = {}
        with torch.no_grad():
            for mode in ("frozen", "official"):
                set_bn_mode(G, mode)
                for k in FORWARD_SIZES:
                    _, l3, l4 = G.features(images[k].to(dtype))
                    out[f"{mode}_{k}_aux"] = G.layer5(l3)
                    out[f"{mode}_{k}_main"] = G.layer6(l4)
                    out[f"{mode}_{k}_features"] = l4
        state = {f"G/{key}": t.clone() for key, t in G.state_dict().items() if "running" in key}
        results[dtype] = (out, state)
    (out64, st64), (out32, st32) = results[F64], results[F32]
    records = []
    for name, ref in out64.items():
        mode, k, what = name.split("_")
        label = {"aux": "aux logits", "main": "main logits", "features": "layer4 features"}[what]
        h, w = FORWARD_SIZES[k]
        records.append(fx.record(name, name, f"forward {h}x{w} {mode} BN: {label}", TOL_FORWARD, ref, out32[name], whole=what != "features"))
    for name, ref in st64.items():
        records.append(fx.record(name, name, "forward official BN: running statistics after both passes", TOL_FORWARD, ref, st32[name]))
    fx.doc["steps"].append({"inputs": inputs, "records": records})
    fx.write()


# ---------------------------------------------------------------------------------------------
# 1b. DeepLab-MobileNetV2 forward (mobilenet.py): width 0.5, OS 8 (dilations 2, then 4).

MOBILENET_FORWARD = {"kind": "mobilenet-v2", "widthMult": 0.5, "numClasses": 19, "headChannels": 32, "outputStride": 8}


def mobilenet_forward_case():
    net = MOBILENET_FORWARD
    fx = Fixture("mobilenet-forward", "parity-mobilenet-forward",
                 {"network": net, "sizes": {k: list(v) for k, v in FORWARD_SIZES.items()}}, inits_from="parity")
    drawn = {k: image_input(f"input/image_{k}", (1, 3, h, w)) for k, (h, w) in FORWARD_SIZES.items()}
    inputs, images = {f"image_{k}": spec for k, (spec, _) in drawn.items()}, {k: x for k, (_, x) in drawn.items()}
    results = {}
    for dtype in (F64, F32):
        G = DeeplabMobileNet(net["widthMult"], net["numClasses"], net["headChannels"], net["outputStride"]).to(dtype)
        fx.doc["inits"] = mobilenet_forward_inits("G", G)
        load_from_generator(G, "G", fx.doc["inits"], SEED, dtype)
        out = {}
        with torch.no_grad():
            for mode in ("frozen", "official"):
                set_bn_mode(G, mode)
                for k in FORWARD_SIZES:
                    out[f"{mode}_{k}_aux"], out[f"{mode}_{k}_main"], out[f"{mode}_{k}_features"] = G.outputs(images[k].to(dtype))
        results[dtype] = (out, {f"G/{key}": t.clone() for key, t in G.state_dict().items() if "running" in key})
    (out64, st64), (out32, st32) = results[F64], results[F32]
    records = []
    for name, ref in out64.items():
        mode, k, what = name.split("_")
        label = {"aux": "aux logits", "main": "main logits", "features": "last features"}[what]
        h, w = FORWARD_SIZES[k]
        records.append(fx.record(name, name, f"mobilenet forward {h}x{w} {mode} BN: {label}", TOL_FORWARD, ref, out32[name], whole=what != "features"))
    for name, ref in st64.items():
        records.append(fx.record(name, name, "mobilenet forward official BN: running statistics after both passes", TOL_FORWARD, ref, st32[name]))
    fx.doc["steps"].append({"inputs": inputs, "records": records})
    fx.write()


# ---------------------------------------------------------------------------------------------
# 2. Discriminators

DISCRIMINATOR_SIZES = {"D1": (65, 71), "D2": (49, 67)}


def discriminator_case():
    fx = Fixture("discriminators", "parity-discriminators",
                 {"discriminator": {"inChannels": 19, "ndf": 64, "upsample": False},
                  "sizes": {k: list(v) for k, v in DISCRIMINATOR_SIZES.items()}})
    inputs, records = {}, []
    for model, (h, w) in DISCRIMINATOR_SIZES.items():
        xspec = {"kind": "values", "stream": f"input/{model}_x", "init": gen.uniform(0.0, 1.0)}
        inputs[f"{model}_x"] = xspec
        res = {}
        for dtype in (F64, F32):
            D = FCDiscriminator(19, 64).to(dtype)
            inits = official_inits(model, D)
            fx.doc["inits"].update(inits)
            load_from_generator(D, model, inits, SEED, dtype)
            x = values_of(xspec, (1, 19, h, w)).to(dtype).requires_grad_()
            out = D(x)
            rspec = {"kind": "values", "stream": f"input/{model}_r", "init": gen.normal(1.0)}
            inputs[f"{model}_r"] = rspec
            r = values_of(rspec, tuple(out.shape)).to(dtype)
            names = [k for k, _ in D.named_parameters()]
            grads = torch.autograd.grad((out * r).sum(), [x] + list(D.parameters()))
            res[dtype] = {f"{model}_out": out, f"{model}_input_grad": grads[0],
                          **{f"{model}_grad.{k}": g for k, g in zip(names, grads[1:])}}
        for name, ref in res[F64].items():
            what = "output" if name.endswith("_out") else "input gradient" if name.endswith("input_grad") else "weight gradients"
            records.append(fx.record(name, name, f"{model} {h}x{w}: {what}", TOL_FORWARD, ref, res[F32][name], whole=what == "output"))
    fx.doc["steps"].append({"inputs": inputs, "records": records})
    fx.write()


# ---------------------------------------------------------------------------------------------
# 3-4. Training iterations

OFFICIAL = {
    "numClasses": 19, "learningRate": 2.5e-4, "learningRateD": 1e-4, "momentum": 0.9, "weightDecay": 5e-4,
    "power": 0.9, "numSteps": 250000, "lambdaSeg": 0.1, "lambdaAdvTarget1": 0.0002, "lambdaAdvTarget2": 0.001,
    "gan": "Vanilla", "bnMode": "official", "duplicateVisits": False, "adamEps": "pytorch1", "ignoreLabel": 255,
}
VARIANTS = {
    "multi-level": {},
    "single-level": {"lambdaSeg": 0.0, "lambdaAdvTarget1": 0.0, "lambdaAdvTarget2": 0.001},
    "ls-gan": {"lambdaSeg": 0.0, "lambdaAdvTarget1": 0.0, "lambdaAdvTarget2": 0.01, "gan": "LS"},
    "source-only": {},
    "advent": {},
}
# The small configuration: cpu-demo's network at odd, non-square sizes; large learning rates
# and a short poly horizon, so that two steps move every trained tensor measurably.
SMALL = {"sourceSize": [65, 71], "targetSize": [49, 67], "network": {"blocks": [1, 1, 1, 1], "width": 8, "asppBranches": 2},
         "ndf": 16, "numSteps": 10, "learningRate": 1e-2, "learningRateD": 1e-4}
# Adversarial weights 1000x the official ones (zeros stay zero): at the official values the
# adversarial gradient reaching G is ~1e-4 of the segmentation gradient, below the tolerance.
# The last case keeps the official weights.
TRAIN_CASES = [
    ("multi-level", "multi-level", {"lambdaAdvTarget1": 0.2, "lambdaAdvTarget2": 1.0}),
    ("single-level", "single-level", {"lambdaAdvTarget2": 1.0}),
    ("ls-gan", "ls-gan", {"lambdaAdvTarget2": 10.0}),
    ("source-only", "source-only", {}),
    ("advent", "advent", {"network": {"blocks": [1, 1, 1, 1], "width": 8, "asppBranches": 4},
                          "lambdaAdvTarget1": 0.2, "lambdaAdvTarget2": 1.0}),
    ("multi-level-official-optimizers", "multi-level", {"duplicateVisits": True, "adamEps": "pytorch0.4"}),
    # DeepLab-MobileNetV2 (examples/parity/mobilenet.ts): the cpu-demo network, width 0.25, OS 16.
    ("mobilenet-multi-level", "multi-level", {"network": {"kind": "mobilenet-v2", "widthMult": 0.25, "headChannels": 16, "outputStride": 16},
                                              "lambdaAdvTarget1": 0.2, "lambdaAdvTarget2": 1.0}),
]
ITERATIONS = 2

# Run-time hyperparameters (train.ts: HYPERPARAMETER_KEYS are elements of the program's
# hyperparameter vector): the multi-level case's program, run with other values than its
# defaults, all of them. The runner writes them into the vector; nothing is compiled for it.
HYPER_CASE = ("multi-level-hyperparameters", "multi-level", "parity-train-multi-level", {"lambdaAdvTarget1": 0.2, "lambdaAdvTarget2": 1.0}, {
    "learningRate": 5e-3, "learningRateD": 3e-4, "momentum": 0.8, "weightDecay": 1e-3, "power": 0.8, "numSteps": 20,
    "lambdaSeg": 0.2, "lambdaAdvTarget1": 0.05, "lambdaAdvTarget2": 0.5, "adamBeta1": 0.85, "adamBeta2": 0.95, "adamEpsilon": 1e-6,
})


def train_config(variant, extra):
    return {"variant": variant, **OFFICIAL, **VARIANTS[variant], **SMALL, **extra}


def train_inputs(cfg, i):
    hs, ws = cfg["sourceSize"]
    ht, wt = cfg["targetSize"]
    specs, values = {"iteration": {"kind": "iteration", "value": i}}, {}
    specs["source_image"], values["source_image"] = image_input(f"input/{i}/source_image", (1, 3, hs, ws))
    specs["source_label"], values["source_label"] = label_input(f"input/{i}/source_label", (1, hs, ws), cfg["numClasses"], cfg["ignoreLabel"])
    if cfg["variant"] != "source-only":
        specs["target_image"], values["target_image"] = image_input(f"input/{i}/target_image", (1, 3, ht, wt))
    return specs, values


def state_group(name):
    model, key = name.split("/", 1)
    if model == "G":
        return "G BN running statistics" if "running_" in key else "G parameters"
    if model.startswith("sgd_"):
        return "SGD momentum buffers"
    if model.startswith("adam_"):
        return f"Adam {model[5:]} moments"
    return f"{model} parameters"


# Sensitivity of iteration k >= 1 to its starting state. Both sides start iteration k from
# their own state after k - 1, which differ by float32 rounding (~1e-6 relative). With 9x10 maps
# in layer4 and 1x2 to 4x4 maps at the end of a discriminator, one ReLU or LeakyReLU input that
# changes sign moves a whole channel's gradient by ~1%; the computation itself is that
# sensitive, not the implementation. The reference is therefore rerun from its state after
# k - 1 with every trained parameter scaled by (1 + 1e-6 N(0, 1)); for gradient-derived state
# (momentum buffers, Adam moments), losses and parameter updates, the runner allows twice the
# worst rerun's error where that exceeds the tolerance (docs/parity.md).
SENSITIVITY_RUNS = 4
DELTA = 1e-6


def perturbed(trainer, run):
    other = copy.deepcopy(trainer)
    g = torch.Generator().manual_seed(1000 + run)
    with torch.no_grad():
        for m in other.models.values():
            for p in m.parameters():
                if p.requires_grad:
                    p.mul_(1 + DELTA * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return other


def run_iteration(trainer, cfg, i, dtype):
    specs, values = train_inputs(cfg, i)
    losses = trainer.iteration(i, values["source_image"].to(dtype), values["source_label"],
                               values["target_image"].to(dtype) if "target_image" in values else None)
    return specs, losses


def as_numpy(t):
    return t.detach().to(F64).reshape(-1).numpy()


def sensitivities(name, ref_before, ref_after, p0, reruns):
    """The worst rerun's error on a state tensor: for trained parameters on the update of this
    iteration (the perturbation itself excluded), relative to max |p - p0| (what the runner's
    update check divides by); otherwise the value's max |a - b| / max |b|."""
    b = as_numpy(ref_after[name])
    if p0 is not None:
        scale = float(np.abs(b - as_numpy(p0)).max())
        step_b = b - as_numpy(ref_before[name])
        diffs = [float(np.abs((as_numpy(after[name]) - as_numpy(before[name])) - step_b).max()) for before, after in reruns]
        return {"updateSensitivity": max(diffs) / scale if scale > 0 else max(diffs)}
    return {"sensitivity": max(rel_error(as_numpy(after[name]), b) for _, after in reruns)}


def train_case(case, variant, extra, program=None, hyperparameters=None):
    """program: the generated program to run (default parity-train-<case>); hyperparameters: the
    values the runner writes into its hyperparameter vector (the fixture's config has them too)."""
    cfg = train_config(variant, {**extra, **(hyperparameters or {})})
    fx = Fixture(f"train-{case}", program or f"parity-train-{case}", cfg)
    if hyperparameters:
        fx.doc["hyperparameters"] = hyperparameters
    runs = {}
    reruns = {}  # iteration -> [(losses, state before, state after)] of the perturbed f64 reruns
    for dtype in (F64, F32):
        tr = Trainer(cfg, dtype)
        for mname, m in tr.models.items():
            inits = (mobilenet_inits if isinstance(m, DeeplabMobileNet) else official_inits)(mname, m)
            fx.doc["inits"].update(inits)
            load_from_generator(m, mname, inits, SEED, dtype)
        initial = tr.state()
        steps = []
        before = initial
        for i in range(ITERATIONS):
            if dtype == F64 and i > 0:
                reruns[i] = []
                for run in range(SENSITIVITY_RUNS):
                    other = perturbed(tr, run)
                    other_before = other.state()
                    _, other_losses = run_iteration(other, cfg, i, dtype)
                    reruns[i].append((other_losses, other_before, other.state()))
            specs, losses = run_iteration(tr, cfg, i, dtype)
            steps.append((specs, losses, before, tr.state()))
            before = steps[-1][3]
        runs[dtype] = (initial, steps)
    initial, steps64 = runs[F64]
    _, steps32 = runs[F32]
    for i, ((specs, losses, before, state), (_, losses32, _, state32)) in enumerate(zip(steps64, steps32)):
        records = []
        for name, v in losses.items():
            rec = fx.record(f"{i}/{name}", name, name, TOL_FORWARD, torch.tensor(v, dtype=F64), torch.tensor(losses32[name], dtype=F64))
            if i in reruns:
                rec["sensitivity"] = max(abs(r[0][name] - v) / abs(v) if v else abs(r[0][name]) for r in reruns[i])
            records.append(rec)
        for name, v in state.items():
            trained_param = name.startswith(("G/", "D1/", "D2/")) and "running_" not in name
            p0 = initial[name] if trained_param else None
            rec = fx.record(f"{i}/{name}", name, state_group(name), TOL_TRAIN, v, state32[name], p0)
            if i in reruns:
                rec.update(sensitivities(name, before, state, p0, [(b, a) for _, b, a in reruns[i]]))
            records.append(rec)
        fx.doc["steps"].append({"iteration": i, "inputs": specs, "records": records})
    fx.write()


# ---------------------------------------------------------------------------------------------


def main(argv):
    cases = {"deeplab-resnet101": forward_case, "discriminators": discriminator_case, "mobilenet-forward": mobilenet_forward_case}
    for case, variant, extra in TRAIN_CASES:
        cases[f"train-{case}"] = lambda c=case, v=variant, e=extra: train_case(c, v, e)
    case, variant, program, extra, hyper = HYPER_CASE
    cases[f"train-{case}"] = lambda: train_case(case, variant, extra, program, hyper)
    selected = argv or list(cases)
    for name in selected:
        if name not in cases:
            sys.exit(f"unknown case {name}; cases: {', '.join(cases)}")
        started = time.time()
        cases[name]()
        print(f"parity fixtures: {name} took {time.time() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
