#!/usr/bin/python3
"""The PyTorch side of `npm run bench`: the same kernels and the same AdaptSegNet iteration,
timed on request so that the TS runner can interleave them with its own runs.

Run with Debian's interpreter, which carries PyTorch (python3-torch):

    /usr/bin/python3 bench/torch_baseline.py            # serve requests on stdin (the runner)
    /usr/bin/python3 bench/torch_baseline.py --selftest # one tiny request of each kind

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout, prefixed with
"@@bench " (anything else printed is noise and goes to stderr). Requests:

    {"cmd": "info"}
    {"cmd": "setup", "id": ..., "kind": "conv", "x": [N,C,H,W], "w": [O,C,KH,KW], "stride": s,
     "padding": p, "dilation": d, "pass": "fwd" | "dx" | "dw" | "all", "target_ms": t}
    {"cmd": "setup", "id": ..., "kind": "matmul", "m": M, "k": K, "n": N, "target_ms": t}
    {"cmd": "setup", "id": ..., "kind": "step", "config": <TrainConfig as JSON>, "target_ms": t}
    {"cmd": "time", "id": ..., "reps": r}     -> {"ms": wall, "cpu_ms": process CPU time, per repetition}
    {"cmd": "drop", "id": ...}
    {"cmd": "rss"}                           -> {"max_rss_kib": peak resident set size}

"setup" warms the case up and answers how many repetitions fill `target_ms`. Device: CUDA when
available (timed with torch.cuda.synchronize; TF32 off unless --tf32, since our kernels are
f32), else the CPU with --threads threads (default 2: the machine the targets are set on).

The iteration is §3.4 of shared/docs/adaptsegnet.md for the multi-level variant, written from
the spec as in scripts/parity/reference.py but with stock torch.optim (the TrainConfig defaults:
no duplicate parameter visits, PyTorch-1 Adam): source forward/backward (train-mode BN), target
forward through frozen discriminators, both discriminators on detached source and target
predictions, then SGD (heads at 10x lr) and two Adams.
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# DeepLab-v2 multi-level (§1) and FCDiscriminator (§2)

ASPP_DILATIONS = (6, 12, 18, 24)


class Bottleneck(nn.Module):
    """§1.3: stride on the first 1x1, padding = dilation on the 3x3, ReLU after the sum."""

    def __init__(self, inplanes, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + residual)


class Classifier(nn.Module):
    """§1.6: four dilated 3x3 convs; the official forward sums only the first `branches`."""

    def __init__(self, inplanes, classes, branches):
        super().__init__()
        self.conv2d_list = nn.ModuleList([nn.Conv2d(inplanes, classes, 3, padding=d, dilation=d) for d in ASPP_DILATIONS])
        self.branches = branches

    def forward(self, x):
        out = self.conv2d_list[0](x)
        for i in range(1, self.branches):
            out = out + self.conv2d_list[i](x)
        return out


class DeeplabMulti(nn.Module):
    def __init__(self, blocks, width, classes, branches):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.inplanes = width
        self.layer1 = self._layer(width, blocks[0], 1, 1)
        self.layer2 = self._layer(width * 2, blocks[1], 2, 1)
        self.layer3 = self._layer(width * 4, blocks[2], 1, 2)
        self.layer4 = self._layer(width * 8, blocks[3], 1, 4)
        self.layer5 = Classifier(width * 16, classes, branches)
        self.layer6 = Classifier(width * 32, classes, branches)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)  # §1.8
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.requires_grad_(False)  # §1.5: frozen affine
                m.bias.requires_grad_(False)

    def _layer(self, planes, blocks, stride, dilation):
        down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, 1, dilation, None) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
        l3 = self.layer3(self.layer2(self.layer1(x)))
        return self.layer5(l3), self.layer6(self.layer4(l3))

    def param_groups(self, lr):
        heads = list(self.layer5.parameters()) + list(self.layer6.parameters())
        ids = {id(p) for p in heads}
        backbone = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": backbone, "lr": lr}, {"params": heads, "lr": 10 * lr}]


class FCDiscriminator(nn.Module):
    def __init__(self, inc, ndf):
        super().__init__()
        chans = [inc, ndf, ndf * 2, ndf * 4, ndf * 8]
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(chans, chans[1:])])
        self.classifier = nn.Conv2d(ndf * 8, 1, 4, stride=2, padding=1)

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.classifier(x)


def up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def poly(base, i, horizon, power):
    return base * (1 - i / horizon) ** power


class Iteration:
    """One multi-level AdaptSegNet iteration (§3.4) of a TrainConfig, on random data."""

    def __init__(self, cfg, device):
        torch.manual_seed(0)
        net = cfg["network"]
        c = cfg["numClasses"]
        self.cfg = cfg
        self.G = DeeplabMulti(net["blocks"], net["width"], c, net["asppBranches"]).to(device).train()
        self.D1 = FCDiscriminator(c, cfg["ndf"]).to(device).train()
        self.D2 = FCDiscriminator(c, cfg["ndf"]).to(device).train()
        self.optG = torch.optim.SGD(self.G.param_groups(cfg["learningRate"]), lr=cfg["learningRate"],
                                    momentum=cfg["momentum"], weight_decay=cfg["weightDecay"])
        adam = dict(lr=cfg["learningRateD"], betas=(0.9, 0.99), eps=1e-8)
        self.optD1 = torch.optim.Adam(self.D1.parameters(), **adam)
        self.optD2 = torch.optim.Adam(self.D2.parameters(), **adam)
        hs, ws = cfg["sourceSize"]
        ht, wt = cfg["targetSize"]
        self.src = torch.randn(1, 3, hs, ws, device=device) * 50
        self.tgt = torch.randn(1, 3, ht, wt, device=device) * 50
        label = torch.randint(0, c, (1, hs, ws), device=device)
        label[:, : hs // 8] = cfg["ignoreLabel"]  # a band of ignored pixels, as real labels have
        self.label = label
        self.i = 0

    def _bce(self, logits, label):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(label)))

    def __call__(self):
        cfg, G, D1, D2 = self.cfg, self.G, self.D1, self.D2
        hs, ws = cfg["sourceSize"]
        ht, wt = cfg["targetSize"]
        ign = cfg["ignoreLabel"]
        lr = poly(cfg["learningRate"], self.i, cfg["numSteps"], cfg["power"])
        lr_d = poly(cfg["learningRateD"], self.i, cfg["numSteps"], cfg["power"])
        self.i += 1
        # 1. reset gradients, set learning rates
        for opt in (self.optG, self.optD1, self.optD2):
            opt.zero_grad(set_to_none=True)
        self.optG.param_groups[0]["lr"], self.optG.param_groups[1]["lr"] = lr, 10 * lr
        for opt in (self.optD1, self.optD2):
            opt.param_groups[0]["lr"] = lr_d
        # 2. freeze the discriminators
        for p in list(D1.parameters()) + list(D2.parameters()):
            p.requires_grad_(False)
        # 3. source step (BN forward pass #1)
        aux, main = G(self.src)
        pred1, pred2 = up(aux, (hs, ws)), up(main, (hs, ws))
        loss_seg1 = F.cross_entropy(pred1, self.label, ignore_index=ign)
        loss_seg2 = F.cross_entropy(pred2, self.label, ignore_index=ign)
        (loss_seg2 + cfg["lambdaSeg"] * loss_seg1).backward()
        # 4. target step for G (BN forward pass #2), through the frozen discriminators
        aux_t, main_t = G(self.tgt)
        pt1, pt2 = up(aux_t, (ht, wt)), up(main_t, (ht, wt))
        loss_adv1 = self._bce(D1(F.softmax(pt1, dim=1)), 0)
        loss_adv2 = self._bce(D2(F.softmax(pt2, dim=1)), 0)
        (cfg["lambdaAdvTarget1"] * loss_adv1 + cfg["lambdaAdvTarget2"] * loss_adv2).backward()
        # 5. unfreeze; 6-7. discriminators on detached source (label 0) and target (label 1)
        for p in list(D1.parameters()) + list(D2.parameters()):
            p.requires_grad_(True)
        for D, ps, pt in ((D1, pred1, pt1), (D2, pred2, pt2)):
            (self._bce(D(F.softmax(ps.detach(), dim=1)), 0) / 2).backward()
            (self._bce(D(F.softmax(pt.detach(), dim=1)), 1) / 2).backward()
        # 8. step all optimizers
        self.optG.step()
        self.optD1.step()
        self.optD2.step()


# ---------------------------------------------------------------------------------------------
# Kernels


def conv_case(req, device):
    """A closure running one pass (or all three) of the convolution `req` describes."""
    n, c, h, w = req["x"]
    o, _, kh, kw = req["w"]
    stride, padding, dilation = req.get("stride", 1), req.get("padding", 0), req.get("dilation", 1)
    x = torch.randn(n, c, h, w, device=device)
    wt = torch.randn(o, c, kh, kw, device=device) * 0.05
    y0 = F.conv2d(x, wt, None, stride, padding, dilation)
    dy = torch.randn_like(y0)
    s, p, d = [stride] * 2, [padding] * 2, [dilation] * 2
    which = req["pass"]
    if which == "fwd":
        return lambda: F.conv2d(x, wt, None, stride, padding, dilation)
    if which in ("dx", "dw"):
        # The backward kernels alone, as autograd calls them (oneDNN / cuDNN).
        mask = [which == "dx", which == "dw", False]
        return lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, s, p, d, False, [0, 0], 1, mask)
    if which == "all":
        xg = x.clone().requires_grad_(True)
        wg = wt.clone().requires_grad_(True)

        def step():
            y = F.conv2d(xg, wg, None, stride, padding, dilation)
            return torch.autograd.grad(y, [xg, wg], dy)

        return step
    raise ValueError(f"unknown pass {which}")


def matmul_case(req, device):
    a = torch.randn(req["m"], req["k"], device=device)
    b = torch.randn(req["k"], req["n"], device=device)
    return lambda: torch.mm(a, b)


# ---------------------------------------------------------------------------------------------
# Serving


class Server:
    def __init__(self, device):
        self.device = device
        self.cases = {}

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def run(self, fn, reps):
        """Milliseconds per repetition (wall), and the process's CPU time per repetition."""
        self.sync()
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(reps):
            fn()
        self.sync()
        return (time.perf_counter() - t0) * 1000 / reps, (time.process_time() - c0) * 1000 / reps

    def setup(self, req):
        t0 = time.perf_counter()
        kind = req["kind"]
        if kind == "conv":
            fn = conv_case(req, self.device)
        elif kind == "matmul":
            fn = matmul_case(req, self.device)
        elif kind == "step":
            fn = Iteration(req["config"], self.device)
        else:
            raise ValueError(f"unknown kind {kind}")
        target = req.get("target_ms", 200)
        # A cold run (oneDNN primitive creation, cuDNN heuristics); a warm one sizes the runs,
        # unless the cold one already filled the target (as bench/measure.ts warmUp).
        first = self.run(fn, 1)[0]
        warm = self.run(fn, 1)[0] if first < target else first
        reps = max(1, min(100, round(target / max(warm, 1e-3))))
        self.cases[req["id"]] = fn
        return {"reps": reps, "first_ms": first, "warm_ms": warm, "setup_s": time.perf_counter() - t0}

    def handle(self, req):
        cmd = req["cmd"]
        if cmd == "info":
            return info(self.device)
        if cmd == "setup":
            return self.setup(req)
        if cmd == "time":
            ms, cpu_ms = self.run(self.cases[req["id"]], req.get("reps", 1))
            return {"ms": ms, "cpu_ms": cpu_ms}
        if cmd == "drop":
            self.cases.pop(req["id"], None)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return {}
        if cmd == "rss":
            return {"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        raise ValueError(f"unknown command {cmd}")


def blas():
    """Which BLAS torch.mm calls on a Debian CPU build (the reference BLAS is ~50x slower)."""
    try:
        return os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
    except OSError:
        return "unknown"


def info(device):
    out = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["tf32"] = torch.backends.cudnn.allow_tf32
    else:
        out["threads"] = torch.get_num_threads()
        out["mkldnn"] = torch.backends.mkldnn.is_available()
        out["blas"] = blas()
    return out


def reply(out, obj):
    out.write("@@bench " + json.dumps(obj) + "\n")
    out.flush()


def serve(server, requests, out):
    for line in requests:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            reply(out, {"ok": True, **server.handle(req)})
        except Exception as e:  # reported to the runner, which shows it next to the case
            reply(out, {"ok": False, "error": f"{type(e).__name__}: {e}"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (off: plain f32, like our kernels)")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if use_cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    else:
        torch.set_num_threads(args.threads)
    # Anything a library prints goes to stderr: stdout carries the protocol only.
    out, sys.stdout = sys.stdout, sys.stderr
    server = Server(device)
    if args.selftest:
        cfg = {"network": {"blocks": [1, 1, 1, 1], "width": 8, "asppBranches": 2}, "numClasses": 19, "ndf": 8,
               "sourceSize": [64, 64], "targetSize": [64, 64], "learningRate": 2.5e-4, "learningRateD": 1e-4,
               "momentum": 0.9, "weightDecay": 5e-4, "power": 0.9, "numSteps": 250000, "lambdaSeg": 0.1,
               "lambdaAdvTarget1": 2e-4, "lambdaAdvTarget2": 1e-3, "ignoreLabel": 255}
        requests = [json.dumps(r) for r in ({"cmd": "info"},
                    {"cmd": "setup", "id": "c", "kind": "conv", "x": [1, 8, 16, 16], "w": [8, 8, 3, 3], "padding": 2,
                     "dilation": 2, "pass": "all", "target_ms": 10},
                    {"cmd": "setup", "id": "dx", "kind": "conv", "x": [1, 8, 16, 16], "w": [8, 8, 3, 3], "pass": "dx"},
                    {"cmd": "setup", "id": "s", "kind": "step", "config": cfg, "target_ms": 10},
                    {"cmd": "time", "id": "s", "reps": 2}, {"cmd": "rss"})]
        serve(server, requests, out)
        return
    serve(server, sys.stdin, out)


if __name__ == "__main__":
    main()
