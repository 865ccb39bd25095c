#!/usr/bin/python3
"""The eval-pipeline parity case, PyTorch side (docs/parity.md, "eval-pipeline").

Written from the spec (shared/docs/adaptsegnet.md, cited as §), not from the official repository
or the generated code. For four networks it writes a seeded legacy-format (pre-1.6) .pth with the
official state-dict keys, a small Cityscapes-layout val set, and the official evaluation's
predictions and mIoU (evaluate_cityscapes.py + compute_iou.py, §5), which
scripts/parity/eval-pipeline.ts compares with `npm run eval` on the same files.

Run with Debian's /usr/bin/python3 (torch 1.13, Pillow). Everything goes to
out/parity/eval-pipeline/ (gitignored): about 1 GB of .pth files, so nothing here is committed.

    /usr/bin/python3 scripts/parity/eval_pipeline.py [--out DIR] [--images N]
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

NUM_CLASSES = 19
# §1.1: BGR means, subtracted from 0..255 values; no division by a standard deviation.
IMG_MEAN = np.array((104.00698793, 116.66876762, 122.67891434), dtype=np.float32)
EVAL_SIZE = (1024, 512)  # Pillow (width, height), §4.2
LABEL_SIZE = (1024, 2048)  # (H, W) of the upsampled logits and the labels, §5
# info.json label2train (§4.4): every other id maps to 255; ids not listed stay unchanged.
LABEL2TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
               24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
IGNORED_IDS = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, -1]
# 2048x1024 Cityscapes-style frame names (city, sequence, frame).
FRAMES = [("frankfurt", "000000", "000294"), ("lindau", "000000", "000019"), ("munster", "000000", "000019"),
          ("frankfurt", "000001", "007973")]


# ---------------------------------------------------------------------------------------------
# Networks (§1): the official module names, so state_dict() has the official keys.

class Bottleneck(nn.Module):
    """§1.3: Caffe-style bottleneck, stride on conv1, dilation = padding on conv2."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
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
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class ClassifierModule(nn.Module):
    """§1.6: four dilated 3x3 convs (6, 12, 18, 24). AdaptSegNet's forward returns after the
    second branch (`summed` = 2); ADVENT's fixed one sums all four (`summed` = 4). Both keep all
    four convs, so the state dict is the same."""

    def __init__(self, inplanes, summed):
        super().__init__()
        self.conv2d_list = nn.ModuleList(
            [nn.Conv2d(inplanes, NUM_CLASSES, 3, padding=d, dilation=d, bias=True) for d in (6, 12, 18, 24)])
        self.summed = summed

    def forward(self, x):
        return sum(self.conv2d_list[i](x) for i in range(self.summed))


class ResNetBackbone(nn.Module):
    """§1.2-1.4: stem and layer1..layer4 ([3, 4, 23, 3]), output stride 8."""

    def __init__(self):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.layer1 = self._layer(64, 3, 1, 1)
        self.layer2 = self._layer(128, 4, 2, 1)
        self.layer3 = self._layer(256, 23, 1, 2)
        self.layer4 = self._layer(512, 3, 1, 4)

    def _layer(self, planes, blocks, stride, dilation):
        # Block 0 always has a downsample here (§1.4: stride, channels or dilation change).
        down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                             nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        """layer3 and layer4 outputs."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x3 = self.layer3(self.layer2(self.layer1(x)))
        return x3, self.layer4(x3)


class DeeplabMulti(ResNetBackbone):
    """§1.7: layer5 (aux, on layer3) and layer6 (main, on layer4). `summed` 2 is AdaptSegNet,
    4 is ADVENT's DeepLab-v2 (§9, identical keys)."""

    def __init__(self, summed):
        super().__init__()
        self.layer5 = ClassifierModule(1024, summed)
        self.layer6 = ClassifierModule(2048, summed)

    def main_logits(self, x):
        return self.layer6(self.features(x)[1])


class ResDeeplab(ResNetBackbone):
    """§1.11 Res_Deeplab (the oracle): one head, layer5, on layer4."""

    def __init__(self):
        super().__init__()
        self.layer5 = ClassifierModule(2048, 2)

    def main_logits(self, x):
        return self.layer5(self.features(x)[1])


class DeeplabVGG(nn.Module):
    """§1.11: VGG-16 features without pool4 and pool5, conv5 dilated 2, fc6/fc7 dilated 4, the
    two-branch classifier. Indices follow the official `features.N` keys."""

    def __init__(self):
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        # conv5_1..conv5_3 at new indices 23, 25, 27 with dilation 2 (pool4 removed).
        for _ in range(3):
            layers += [nn.Conv2d(512, 512, 3, padding=2, dilation=2), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(512, 1024, 3, padding=4, dilation=4), nn.ReLU(inplace=True)]  # fc6: 29
        layers += [nn.Conv2d(1024, 1024, 3, padding=4, dilation=4), nn.ReLU(inplace=True)]  # fc7: 31
        self.features = nn.Sequential(*layers)
        self.classifier = ClassifierModule(1024, 2)

    def main_logits(self, x):
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# Seeded weights. Random networks tend to predict one class everywhere; these choices keep the
# predictions image-dependent: He-like convs, BN running statistics measured on the images
# themselves (so every BN normalises, as a trained one does), and heads rescaled so the logits
# have a few units of spread.

def init_backbone(net, gen):
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            if m.bias is not None:
                m.bias.data = (torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=gen)
            m.bias.data = (torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.4
    # Small residual branches (as with zero-gamma init) keep 33 blocks from drowning the signal.
    for name, m in net.named_modules():
        if name.endswith("bn3"):
            m.weight.data = 0.1 + 0.2 * torch.rand(m.weight.shape, generator=gen)


def calibrate_bn(net, images):
    """Running statistics = the cumulative average of train-mode batch statistics over `images`
    (momentum None), then eval mode. Non-trivial (neither 0/1 nor random) and well scaled."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for x in images:
            net.features(x)
    net.eval()


def init_head(head, feats, gen, spread):
    """N(0, 1) convs and U(-0.5, 0.5) biases, then the weights are scaled so that the summed
    logits on `feats` have standard deviation `spread`."""
    for conv in head.conv2d_list:
        conv.weight.data = torch.randn(conv.weight.shape, generator=gen)
        conv.bias.data = torch.rand(conv.bias.shape, generator=gen) - 0.5
    with torch.no_grad():
        s = float(torch.cat([head(f).flatten() for f in feats]).std())
        for conv in head.conv2d_list:
            conv.weight.data *= spread / s


def official_state_dict(net):
    """Float32 tensors under the official keys. num_batches_tracked (PyTorch >= 0.4.1) is left
    out, as in the released checkpoints (§1.10: 536 tensors for DeeplabMulti)."""
    return {k: v.detach().clone().float() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


# ---------------------------------------------------------------------------------------------
# Data: Cityscapes layout (§4.2) with structured content: sky, buildings, road, a few cars and
# poles, smooth gradients and sharp edges, plus mild texture, so predictions depend on the image.

def make_frame(rng):
    h, w = 1024, 2048
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    lab = np.zeros((h, w), np.uint8)  # 0: unlabeled (ignored)
    horizon = int(rng.uniform(0.35, 0.55) * h)
    sky = yy < horizon
    img[sky] = np.stack([90 + 60 * yy / h, 140 + 40 * yy / h, 220 - 30 * yy / h], -1)[sky]
    lab[sky] = 23
    road = yy >= horizon
    img[road] = np.stack([110 + 20 * xx / w, 100 + 10 * yy / h, 110 + 0 * xx], -1)[road]
    lab[road] = 7
    sidewalk = road & (yy > horizon + 40) & ((xx < 300 + (yy - horizon)) | (xx > w - 300 - (yy - horizon)))
    img[sidewalk] = (200, 160, 190)
    lab[sidewalk] = 8
    for _ in range(rng.integers(4, 8)):  # buildings against the sky
        x0 = int(rng.uniform(0, w - 200)); bw = int(rng.uniform(150, 500)); top = int(rng.uniform(0.05, 0.4) * h)
        m = (xx >= x0) & (xx < x0 + bw) & (yy >= top) & (yy < horizon + 20)
        img[m] = rng.uniform(40, 200, 3)
        lab[m] = rng.choice([11, 11, 12, 21])  # building, wall, vegetation
    for _ in range(rng.integers(2, 5)):  # cars on the road: ellipses
        cx, cy = rng.uniform(200, w - 200), rng.uniform(horizon + 80, h - 80)
        m = ((xx - cx) / rng.uniform(80, 220)) ** 2 + ((yy - cy) / rng.uniform(40, 90)) ** 2 < 1
        img[m] = rng.uniform(0, 255, 3)
        lab[m] = 26
    for _ in range(rng.integers(2, 6)):  # poles: thin dark bars
        x0 = int(rng.uniform(0, w - 20))
        m = (xx >= x0) & (xx < x0 + 12) & (yy > horizon - 300) & (yy < horizon + 200)
        img[m] = (60, 60, 60)
        lab[m] = 17
    m = (yy > h - 60)  # ego vehicle: an ignored id (1), as in real frames
    lab[m] = 1
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # texture
    img += 25 * np.sin(xx / rng.uniform(30, 90))[..., None] * (yy < horizon)[..., None]  # facade pattern
    return np.clip(img, 0, 255).round().astype(np.uint8), lab


def write_dataset(root, n, seed):
    rng = np.random.default_rng(seed)
    names = []
    for city, seq, frame in FRAMES[:n]:
        stem = f"{city}_{seq}_{frame}"
        img, lab = make_frame(rng)
        for sub, arr, suffix in (("leftImg8bit", img, "leftImg8bit"), ("gtFine", lab, "gtFine_labelIds")):
            d = os.path.join(root, sub, "val", city)
            os.makedirs(d, exist_ok=True)
            Image.fromarray(arr).save(os.path.join(d, f"{stem}_{suffix}.png"))
        names.append(f"{city}/{stem}_leftImg8bit.png")
    # The official val.txt lists `<city>/<name>_leftImg8bit.png`.
    with open(os.path.join(root, "val.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    return names


def load_image(root, name):
    """§4.2: RGB, Pillow BICUBIC to 1024x512, float, RGB->BGR, minus IMG_MEAN, CHW, batch 1."""
    im = Image.open(os.path.join(root, "leftImg8bit", "val", name)).convert("RGB").resize(EVAL_SIZE, Image.BICUBIC)
    a = np.asarray(im, np.float32)[:, :, ::-1] - IMG_MEAN
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


# ---------------------------------------------------------------------------------------------
# The official evaluation (§5)

def predict(logits):
    """Bilinear upsampling to 1024x2048 with align_corners=True, argmax over classes (first index
    on ties, as numpy), uint8."""
    up = F.interpolate(logits, size=LABEL_SIZE, mode="bilinear", align_corners=True)[0].numpy()
    return np.argmax(up.transpose(1, 2, 0), axis=2).astype(np.uint8)


def label_to_train(lab):
    """compute_iou.py's label_mapping: listed ids -> trainId (or 255); other values unchanged."""
    out = lab.astype(np.int64).copy()
    for k, v in list(LABEL2TRAIN.items()) + [(i, 255) for i in IGNORED_IDS]:
        out[lab == k] = v
    return out


def fast_hist(gt, pred, n=NUM_CLASSES):
    k = (gt >= 0) & (gt < n)
    return np.bincount(n * gt[k].astype(int) + pred[k], minlength=n * n).reshape(n, n)


def per_class_iou(hist):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))


def evaluate(logits, root, names, pred_dir):
    """`logits`: the main head's output per image (evaluate_cityscapes.py's output2)."""
    os.makedirs(pred_dir, exist_ok=True)
    hist = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    preds = []
    with torch.no_grad():
        for out, name in zip(logits, names):
            pred = predict(out)
            Image.fromarray(pred).save(os.path.join(pred_dir, os.path.basename(name)))  # named after the image
            gt = np.asarray(Image.open(os.path.join(root, "gtFine", "val", name.replace("leftImg8bit.png", "gtFine_labelIds.png"))))
            hist += fast_hist(label_to_train(gt).flatten(), pred.flatten().astype(np.int64))
            preds.append(pred)
    iou = per_class_iou(hist)
    return preds, hist, iou, float(np.nanmean(iou))


def check_informative(key, preds):
    """The comparison means something only if the predictions vary within and across images."""
    for p in preds:
        classes = np.unique(p)
        assert len(classes) >= 4, f"{key}: a prediction has only classes {classes.tolist()}"
    for a, b in zip(preds, preds[1:]):
        assert (a != b).mean() > 0.05, f"{key}: predictions barely differ across images"


# ---------------------------------------------------------------------------------------------

def main_head(key, net):
    return net.layer5 if key == "oracle" else net.layer6


NETWORKS = [
    # key, program `npm run eval` must choose, how the TS side names it
    ("multi-level", "eval-multi-level-gta5-cityscapes"),
    ("advent", "eval-advent-gta5-cityscapes"),
    ("oracle", "eval-oracle-gta5-cityscapes"),
    ("vgg", "eval-vgg-single-level-gta5-cityscapes"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/parity/eval-pipeline")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.time()
    root = os.path.join(args.out, "cityscapes")
    names = write_dataset(root, args.images, args.seed)
    images = [load_image(root, n) for n in names]
    # Calibration inputs: the same images at half size (cheaper; the statistics only need to be
    # plausible, not exact).
    small = [F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False) for x in images[:2]]
    gen = torch.Generator().manual_seed(args.seed)

    # One ResNet-101 backbone, shared by the three ResNet networks (each with its own heads): the
    # TS side still runs each evaluation program end to end.
    backbone = ResNetBackbone()
    init_backbone(backbone, gen)
    calibrate_bn(backbone, small)
    with torch.no_grad():
        feats = [backbone.features(x) for x in images]
    nets = {}
    for key, summed in (("multi-level", 2), ("advent", 4)):
        net = DeeplabMulti(summed)
        net.load_state_dict(backbone.state_dict(), strict=False)
        init_head(net.layer5, [f[0] for f in feats], gen, 3.0)  # aux head: stored, not evaluated
        init_head(net.layer6, [f[1] for f in feats], gen, 3.0)
        nets[key] = net.eval()
    oracle = ResDeeplab()
    oracle.load_state_dict(backbone.state_dict(), strict=False)
    init_head(oracle.layer5, [f[1] for f in feats], gen, 3.0)
    nets["oracle"] = oracle.eval()
    vgg = DeeplabVGG()
    init_backbone(vgg, gen)
    with torch.no_grad():
        vfeats = [vgg.features(x) for x in images]
    init_head(vgg.classifier, vfeats, gen, 3.0)
    nets["vgg"] = vgg.eval()

    report = {"images": names, "dataDir": root, "seed": args.seed, "networks": {}}
    for key, program in NETWORKS:
        net = nets[key]
        pth = os.path.join(args.out, f"{key}.pth")
        # Legacy (pre-1.6) pickle format, as the released checkpoints (§8.1).
        torch.save(official_state_dict(net), pth, _use_new_zipfile_serialization=False)
        t = time.time()
        with torch.no_grad():
            # The ResNet networks share the backbone's features (computed once, above): the same
            # numbers as net.main_logits(x), at a third of the cost.
            logits = [main_head(key, net)(f[1]) for f in feats] if key != "vgg" else [net.main_logits(x) for x in images]
        preds, hist, iou, miou = evaluate(logits, root, names, os.path.join(args.out, key, "pred"))
        check_informative(key, preds)
        entry = {"pth": pth, "program": program, "tensors": len(official_state_dict(net)),
                 "predictions": os.path.join(args.out, key, "pred"), "mIoU": miou * 100,
                 "iou": [None if np.isnan(v) else float(v) for v in iou], "confusion": hist.tolist(),
                 "classesPerImage": [int(len(np.unique(p))) for p in preds], "seconds": time.time() - t}
        if key == "advent":
            # The check must tell the two heads apart: summing only two branches of these
            # weights (what eval-multi-level would do) changes many pixels.
            net.layer6.summed = 2
            with torch.no_grad():
                two = [predict(net.layer6(f[1])) for f in feats]
            net.layer6.summed = 4
            entry["twoBranchDisagreement"] = float(np.mean([(a != b).mean() for a, b in zip(preds, two)]))
            assert entry["twoBranchDisagreement"] > 0.05, entry["twoBranchDisagreement"]
        report["networks"][key] = entry
        print(f"{key}: mIoU {miou * 100:.2f}, classes per image {entry['classesPerImage']}, {entry['seconds']:.1f} s", flush=True)
    report["seconds"] = time.time() - started
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"eval-pipeline reference in {args.out} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
