#!/usr/bin/python3
"""PyTorch reference values for the DSL interpreter's tricky semantics.

Run with Debian's interpreter, which carries PyTorch 1.13 (python3-torch):

    npm run fixtures        # = /usr/bin/python3 scripts/make_fixtures.py

Writes small JSON files into dsl/fixtures/, read by dsl/interpret.test.ts and
dsl/optim.test.ts; the tests never run Python. Everything is computed in float64 so the
tests can compare tightly, except bilinear resizing (see resize_cases), which is float32.
Inputs come from seeded generators rounded to a few decimals and are stored next to the
outputs and gradients, so a fixture is self-contained.

A tensor is stored as {"shape": [...], "data": [row-major values]}. Gradients are those of
the projection sum(y * dy) for the stored dy, i.e. vector-Jacobian products.
"""

import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dsl", "fixtures")
F64 = torch.float64


def encode(t):
    t = t.detach()
    data = t.reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data}


def normal(shape, seed, decimals=3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.randn(shape, generator=g, dtype=F64) * scale, decimals=decimals)


def levels(shape, seed, count):
    """Values from a few levels, so max-pool windows contain ties."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, count, shape, generator=g).to(F64) * 0.5 - 1.0


def vjp(y, dy, inputs):
    """Gradients of sum(y * dy) with respect to `inputs`."""
    return torch.autograd.grad((y * dy).sum(), inputs)


def max_pool_cases():
    # (name, input shape, kernel, stride, padding, ceil_mode, tie levels or None)
    configs = [
        ("6x6 k3 s2 p1 ceil (last window starts in the input)", (1, 2, 6, 6), 3, 2, 1, True, 3),
        ("5x5 k2 s2 p1 ceil (the start rule drops a window: 3 not 4)", (1, 1, 5, 5), 2, 2, 1, True, None),
        ("3x7 k2 s2 p1 ceil (the start rule drops a window on both axes)", (2, 1, 3, 7), 2, 2, 1, True, 2),
        ("129x9 k3 s2 p1 ceil (DeepLab stem on an odd size)", (1, 1, 129, 9), 3, 2, 1, True, 4),
        ("7x8 k3 s2 p0 floor", (1, 2, 7, 8), 3, 2, 0, False, 3),
        ("7x8 k3 s2 p0 ceil", (1, 2, 7, 8), 3, 2, 0, True, 3),
        ("9x6 k(3,2) s(2,1) p(1,0) ceil", (1, 1, 9, 6), (3, 2), (2, 1), (1, 0), True, 3),
        ("4x4 k2 s1 p1 floor, every value tied", (1, 1, 4, 4), 2, 1, 1, False, 1),
    ]
    cases = []
    for i, (name, shape, k, s, p, ceil, tie_levels) in enumerate(configs):
        x = (levels(shape, 100 + i, tie_levels) if tie_levels else normal(shape, 100 + i)).requires_grad_()
        y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
        dy = normal(y.shape, 200 + i)
        (dx,) = vjp(y, dy, [x])
        pair = lambda v: list(v) if isinstance(v, tuple) else [v, v]
        cases.append({
            "name": name, "kernel": pair(k), "stride": pair(s), "padding": pair(p), "ceilMode": ceil,
            "x": encode(x), "y": encode(y), "dy": encode(dy), "dx": encode(dx),
        })
    return cases


def resize_cases():
    """In float32: PyTorch computes the scale, source coordinate and weight of bilinear taps in
    the tensor's own precision, and the DSL reproduces the float32 arithmetic (what the models
    run in), so float64 references would differ in the taps' rounding."""
    # (input H W, output H W): up, down, mixed, to 1x1, from 1x1, and the 65 -> 129 style ratio.
    sizes = [((3, 4), (7, 5)), ((7, 9), (3, 4)), ((5, 6), (1, 1)), ((1, 1), (3, 2)), ((4, 4), (1, 6)), ((9, 5), (17, 9))]
    cases = []
    for align in (True, False):
        for i, (src, dst) in enumerate(sizes):
            x = normal((1, 2) + src, 300 + i).float().requires_grad_()
            y = F.interpolate(x, size=dst, mode="bilinear", align_corners=align)
            dy = normal(y.shape, 400 + i).float()
            (dx,) = vjp(y, dy, [x])
            cases.append({
                "name": f"{src[0]}x{src[1]} -> {dst[0]}x{dst[1]} alignCorners {align}",
                "size": list(dst), "alignCorners": align,
                "x": encode(x), "y": encode(y), "dy": encode(dy), "dx": encode(dx),
            })
    return cases


def cross_entropy_2d(logits, labels, ignore):
    """The official CrossEntropy2d: mean NLL over labels >= 0 and != ignore; 0 when none is valid
    (where nn.CrossEntropyLoss gives NaN)."""
    valid = (labels >= 0) & (labels != ignore)
    if not bool(valid.any()):
        return logits.new_zeros(()) + 0.0 * logits.sum()  # +0 (not -0), and a zero gradient
    return F.cross_entropy(logits, labels, ignore_index=ignore)


def cross_entropy_cases():
    configs = [
        ("no label ignored", (2, 4, 3, 3), 255, 0.0),
        ("some labels ignored", (2, 4, 3, 3), 255, 0.4),
        ("every label ignored (loss 0, not NaN)", (1, 3, 2, 2), 255, 1.0),
        ("rank 2 logits, ignore -100", (5, 3), -100, 0.3),
        ("rank 3 logits, large values", (2, 5, 4), 255, 0.25),
    ]
    cases = []
    for i, (name, shape, ignore, rate) in enumerate(configs):
        scale = 20.0 if "large" in name else 2.0
        logits = normal(shape, 500 + i, scale=scale).requires_grad_()
        g = torch.Generator().manual_seed(600 + i)
        label_shape = (shape[0],) + shape[2:]
        labels = torch.randint(0, shape[1], label_shape, generator=g)
        drop = torch.rand(label_shape, generator=g) < rate
        labels[drop] = ignore
        loss = cross_entropy_2d(logits, labels, ignore)
        (dlogits,) = torch.autograd.grad(loss, [logits], allow_unused=True)
        dlogits = torch.zeros_like(logits) if dlogits is None else dlogits
        cases.append({
            "name": name, "ignoreIndex": ignore,
            "logits": encode(logits), "labels": encode(labels), "loss": loss.item(), "dlogits": encode(dlogits),
        })
    return cases


def batch_norm_fixture():
    """BatchNorm2d in train mode over two batches (source, then target), as one AdaptSegNet
    iteration does; running statistics after each, gradients of the first pass, and eval mode
    with the final statistics."""
    c = 3
    bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1).to(F64)
    with torch.no_grad():
        bn.weight.copy_(normal((c,), 700))
        bn.bias.copy_(normal((c,), 701))
        bn.running_mean.copy_(normal((c,), 702))
        bn.running_var.copy_(normal((c,), 703).abs() + 0.5)
    initial = {k: encode(v.clone()) for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    bn.train()
    x1 = normal((2, c, 4, 5), 704, scale=2.0).add(0.5).requires_grad_()
    y1 = bn(x1)
    dy1 = normal(y1.shape, 705)
    dx1, dweight, dbias = vjp(y1, dy1, [x1, bn.weight, bn.bias])
    after1 = {"running_mean": encode(bn.running_mean.clone()), "running_var": encode(bn.running_var.clone())}
    x2 = normal((1, c, 3, 3), 706, scale=0.5).sub(1.0)
    y2 = bn(x2)
    after2 = {"running_mean": encode(bn.running_mean.clone()), "running_var": encode(bn.running_var.clone())}
    bn.eval()
    y_eval = bn(x2)
    return {
        "eps": 1e-5, "momentum": 0.1, "initial": initial,
        "x1": encode(x1), "y1": encode(y1), "dy1": encode(dy1),
        "dx1": encode(dx1), "dweight": encode(dweight), "dbias": encode(dbias),
        "after1": after1, "x2": encode(x2), "y2": encode(y2), "after2": after2, "yEval": encode(y_eval),
    }


def conv_cases():
    # (name, x shape, w shape, bias, stride, padding, dilation)
    configs = [
        ("3x3 stride 2 padding 1", (2, 3, 8, 8), (4, 3, 3, 3), True, 2, 1, 1),
        ("3x3 dilation 2 padding 2", (1, 2, 7, 7), (3, 2, 3, 3), False, 1, 2, 2),
        ("3x2 stride (2,1) dilation 3, no padding", (1, 2, 11, 9), (2, 2, 3, 2), True, (2, 1), 0, 3),
        ("3x3 stride 2 on 8x8: the floor leaves row and column 7 unread", (1, 1, 8, 8), (2, 1, 3, 3), False, 2, 0, 1),
        ("ASPP branch: 3x3 dilation 6 padding 6", (1, 2, 5, 6), (2, 2, 3, 3), True, 1, 6, 6),
        ("1x1 stride 2 (ResNet downsample)", (1, 4, 7, 7), (3, 4, 1, 1), False, 2, 0, 1),
    ]
    cases = []
    for i, (name, xs, ws, has_bias, s, p, d) in enumerate(configs):
        x = normal(xs, 800 + i).requires_grad_()
        w = normal(ws, 900 + i, scale=0.5).requires_grad_()
        b = normal((ws[0],), 1000 + i).requires_grad_() if has_bias else None
        y = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
        dy = normal(y.shape, 1100 + i)
        grads = vjp(y, dy, [x, w] + ([b] if has_bias else []))
        pair = lambda v: list(v) if isinstance(v, tuple) else [v, v]
        case = {
            "name": name, "stride": pair(s), "padding": pair(p), "dilation": pair(d),
            "x": encode(x), "w": encode(w), "y": encode(y), "dy": encode(dy), "dx": encode(grads[0]), "dw": encode(grads[1]),
        }
        if has_bias:
            case["b"] = encode(b)
            case["db"] = encode(grads[2])
        cases.append(case)
    return cases


def softmax_cases():
    cases = []
    for i, (shape, axis, scale) in enumerate([((2, 4, 3, 2), 1, 2.0), ((2, 4, 3, 2), -1, 2.0), ((3, 5), 1, 40.0)]):
        x = normal(shape, 1200 + i, scale=scale).requires_grad_()
        for name, f in (("softmax", F.softmax), ("logSoftmax", F.log_softmax)):
            y = f(x, dim=axis)
            dy = normal(y.shape, 1300 + i)
            (dx,) = vjp(y, dy, [x])
            cases.append({"name": f"{name} {list(shape)} axis {axis} scale {scale}", "op": name, "axis": axis,
                          "x": encode(x), "y": encode(y), "dy": encode(dy), "dx": encode(dx)})
    return cases


def loss_cases():
    """BCEWithLogitsLoss (mean) with tensor and constant targets, large logits included, and MSELoss."""
    x = normal((2, 1, 3, 4), 1400, scale=3.0)
    x[0, 0, 0, :] = torch.tensor([35.0, -35.0, 0.0, 80.0], dtype=F64)  # the stable form must not overflow
    x.requires_grad_()
    z = torch.round(torch.rand(x.shape, generator=torch.Generator().manual_seed(1401), dtype=F64), decimals=2)
    cases = []
    for target_name, target in (("tensor", z), ("0", 0.0), ("1", 1.0)):
        t = target if isinstance(target, torch.Tensor) else torch.full_like(x, target)
        loss = F.binary_cross_entropy_with_logits(x, t)
        (dx,) = torch.autograd.grad(loss, [x])
        case = {"name": f"bceWithLogits target {target_name}", "loss": "bceWithLogits", "x": encode(x), "value": loss.item(), "dx": encode(dx)}
        case["target"] = encode(target) if isinstance(target, torch.Tensor) else target
        cases.append(case)
    for target_name, target in (("tensor", normal(x.shape, 1402)), ("1", 1.0)):
        t = target if isinstance(target, torch.Tensor) else torch.full_like(x, target)
        loss = F.mse_loss(x, t)
        (dx,) = torch.autograd.grad(loss, [x])
        case = {"name": f"mse target {target_name}", "loss": "mse", "x": encode(x), "value": loss.item(), "dx": encode(dx)}
        case["target"] = encode(target) if isinstance(target, torch.Tensor) else target
        cases.append(case)
    return cases


def optimizer_fixture():
    """Three steps of SGD (momentum, weight decay) and of Adam with PyTorch 1.13 (eps after the
    bias correction: the DSL's "pytorch1" placement), on one parameter with given gradients."""
    shape = (2, 3)
    p0 = normal(shape, 1500)
    grads = [normal(shape, 1501 + k) for k in range(3)]

    def run(make):
        p = torch.nn.Parameter(p0.clone())
        opt = make([p])
        values = []
        for g in grads:
            p.grad = g.clone()
            opt.step()
            values.append(encode(p.detach().clone()))
        return values, opt.state[p]

    sgd_cfg = {"lr": 0.1, "momentum": 0.9, "weightDecay": 0.05}
    sgd_p, sgd_state = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.05))
    adam_cfg = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-3}
    adam_p, adam_state = run(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-3))
    return {
        "p0": encode(p0), "grads": [encode(g) for g in grads],
        "sgd": {**sgd_cfg, "params": sgd_p, "momentumBuffer": encode(sgd_state["momentum_buffer"])},
        "adam": {**adam_cfg, "params": adam_p, "expAvg": encode(adam_state["exp_avg"]), "expAvgSq": encode(adam_state["exp_avg_sq"])},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {
        "max_pool.json": {"cases": max_pool_cases()},
        "resize.json": {"dtype": "float32", "cases": resize_cases()},
        "cross_entropy.json": {"cases": cross_entropy_cases()},
        "batch_norm.json": batch_norm_fixture(),
        "conv2d.json": {"cases": conv_cases()},
        "softmax.json": {"cases": softmax_cases()},
        "losses.json": {"cases": loss_cases()},
        "optim.json": optimizer_fixture(),
    }
    for name, body in fixtures.items():
        body = {"generator": "scripts/make_fixtures.py", "torch": torch.__version__, **body}
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(body, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote dsl/fixtures/{name}")


if __name__ == "__main__":
    main()
