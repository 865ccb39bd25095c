#!/usr/bin/python3
"""Reference fixtures for evaluation/ and datasets/, computed with NumPy, Pillow and PyTorch.

Run with Debian's interpreter (it sees python3-numpy, python3-pil, python3-torch):

    /usr/bin/python3 scripts/make_eval_fixture.py

Writes (all committed; tests read them and never run Python):
  evaluation/fixtures/numpy_scores.json   label/prediction arrays and the confusion matrix, per-class
                                            IoU and mIoU NumPy computes for them (official protocol)
  evaluation/fixtures/tree/               a Cityscapes-style gtFine/val tree and a prediction folder
                                            written by Pillow, with expected.json scored by NumPy
  evaluation/fixtures/torch_upsample.json logits and PyTorch's bilinear (align_corners=True) upsample
                                            and argmax
  datasets/fixtures/pillow_nearest.json source indices of Pillow's NEAREST resize for a few sizes

The scoring below is written from the protocol in docs/adaptsegnet.md section 5: a histogram
hist[gt, pred] over pixels with 0 <= gt < n, IoU = diag / (row + col - diag), mIoU = nanmean * 100.
"""
import json
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_FIX = os.path.join(ROOT, "runtime", "eval", "fixtures")
DATA_FIX = os.path.join(ROOT, "runtime", "data", "fixtures")

# Cityscapes label id -> trainId for the 19 classes (docs section 4.4); every other id -> 255.
LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                  24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def histogram(gt, pred, n):
    valid = (gt >= 0) & (gt < n)
    idx = n * gt[valid].astype(np.int64) + pred[valid].astype(np.int64)
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def iou_of(hist):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))


def as_json_floats(xs):
    return [None if np.isnan(v) else float(v) for v in xs]


def noisy_prediction(rng, gt, n, p_correct, wrong=None):
    """Agrees with gt on about p_correct of the valid pixels; elsewhere a class drawn from `wrong`."""
    wrong = np.arange(n) if wrong is None else np.array(wrong)
    pred = rng.choice(wrong, size=gt.shape)
    keep = (rng.random(gt.shape) < p_correct) & (gt < n)
    pred[keep] = gt[keep]
    return pred.astype(np.uint8)


def score_cases():
    rng = np.random.default_rng(20180226)
    cases = []
    # (name, classes, label values drawn from, images (h, w), p_correct, wrong predictions drawn from)
    specs = [
        ("19 classes with ignore pixels", 19, list(range(19)) + [255], [(12, 16), (9, 7), (5, 21)], 0.6, None),
        # Classes 0, 2, 10, 13 in the labels, 5 only predicted (IoU 0), the other 14 absent (NaN).
        ("19 classes, most absent", 19, [0, 2, 10, 13, 255], [(8, 8), (6, 10)], 0.5, [2, 5]),
        ("16 classes", 16, list(range(16)) + [255], [(10, 12), (7, 9)], 0.7, None),
        ("13 classes", 13, list(range(13)) + [255], [(11, 13), (4, 30)], 0.55, None),
    ]
    for name, n, values, shapes, p, wrong in specs:
        images = []
        hist = np.zeros((n, n), dtype=np.int64)
        for (h, w) in shapes:
            gt = rng.choice(np.array(values, dtype=np.uint8), size=(h, w))
            pred = noisy_prediction(rng, gt, n, p, wrong)
            hist += histogram(gt, pred, n)
            images.append({"height": h, "width": w, "gt": gt.ravel().tolist(), "pred": pred.ravel().tolist()})
        iou = iou_of(hist)
        cases.append({
            "name": name,
            "numClasses": n,
            "images": images,
            "hist": hist.tolist(),
            "iou": as_json_floats(iou),
            "mIoU": float(np.nanmean(iou) * 100),
            "mIoURounded": "%.2f" % round(float(np.nanmean(iou) * 100), 2),
        })
    return cases


def write_tree():
    """A small gtFine/val tree (label ids, void ids included) and the predictions for it."""
    rng = np.random.default_rng(7)
    tree = os.path.join(EVAL_FIX, "tree")
    if os.path.isdir(tree):
        shutil.rmtree(tree)
    ids = np.array(sorted(LABEL_TO_TRAIN) + [0, 1, 3, 4, 6, 9, 14, 29, 34], dtype=np.uint8)
    lut = np.full(256, 255, dtype=np.uint8)
    for k, v in LABEL_TO_TRAIN.items():
        lut[k] = v
    frames = [("frankfurt", 0, 294, (24, 48)), ("frankfurt", 0, 576, (24, 48)),
              ("lindau", 1, 19, (16, 32)), ("munster", 2, 61, (24, 48))]
    hist = np.zeros((19, 19), dtype=np.int64)
    skipped = []
    for i, (city, seq, frame, (h, w)) in enumerate(frames):
        key = "%s_%06d_%06d" % (city, seq, frame)
        gt_ids = rng.choice(ids, size=(h, w))
        gt_dir = os.path.join(tree, "gtFine", "val", city)
        os.makedirs(gt_dir, exist_ok=True)
        Image.fromarray(gt_ids, mode="L").save(os.path.join(gt_dir, key + "_gtFine_labelIds.png"))
        train = lut[gt_ids]
        pred = noisy_prediction(rng, train, 19, 0.65)
        pred_dir = os.path.join(tree, "pred")
        os.makedirs(pred_dir, exist_ok=True)
        if i == 2:
            # The official script skips a prediction whose size differs from the label.
            pred = pred[:, : w // 2].copy()
            skipped.append(key)
        else:
            hist += histogram(train, pred, 19)
        Image.fromarray(pred, mode="L").save(os.path.join(pred_dir, key + "_leftImg8bit.png"))
        # A colorized file beside it, as evaluate_cityscapes.py writes; it must not be scored.
        Image.fromarray(pred, mode="L").convert("RGB").save(os.path.join(pred_dir, key + "_leftImg8bit_color.png"))
    iou = iou_of(hist)
    expected = {
        "protocol": "cityscapes19",
        "hist": hist.tolist(),
        "iou": as_json_floats(iou),
        "mIoU": float(np.nanmean(iou) * 100),
        "mIoURounded": "%.2f" % round(float(np.nanmean(iou) * 100), 2),
        "scored": len(frames) - len(skipped),
        "skipped": skipped,
    }
    with open(os.path.join(tree, "expected.json"), "w") as f:
        json.dump(expected, f, sort_keys=True)
        f.write("\n")


def upsample_cases():
    torch.manual_seed(1234)
    cases = []
    for (c, h, w, oh, ow) in [(5, 7, 9, 20, 31), (4, 3, 4, 1, 9), (3, 5, 5, 5, 5), (19, 4, 6, 13, 17)]:
        logits = torch.randn(1, c, h, w, dtype=torch.float32)
        up = F.interpolate(logits, size=(oh, ow), mode="bilinear", align_corners=True)
        arg = up[0].numpy().argmax(axis=0)
        cases.append({
            "classes": c, "height": h, "width": w, "outHeight": oh, "outWidth": ow,
            # float32 values printed with enough digits to round-trip exactly
            "logits": [float(v) for v in logits.numpy().ravel()],
            # values only for the small cases, to keep the fixture small
            "upsampled": [float(v) for v in up.numpy().ravel()] if up.numel() <= 4000 else None,
            "argmax": arg.ravel().astype(int).tolist(),
        })
    return cases


def pillow_nearest_cases():
    cases = []
    for (n_in, n_out) in [(1914, 1280), (1052, 720), (2048, 1024), (1280, 1024), (760, 512), (17, 5), (5, 17), (97, 1280), (13, 13)]:
        row = np.arange(n_in, dtype=np.int32).reshape(1, n_in)
        img = Image.fromarray(row, mode="I")
        out = np.array(img.resize((n_out, 1), Image.NEAREST))[0]
        cases.append({"in": n_in, "out": n_out, "indices": out.astype(int).tolist()})
    return cases


def main():
    os.makedirs(EVAL_FIX, exist_ok=True)
    os.makedirs(DATA_FIX, exist_ok=True)
    with open(os.path.join(EVAL_FIX, "numpy_scores.json"), "w") as f:
        json.dump({"numpy": np.__version__, "cases": score_cases()}, f, sort_keys=True)
        f.write("\n")
    write_tree()
    with open(os.path.join(EVAL_FIX, "torch_upsample.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": upsample_cases()}, f, sort_keys=True)
        f.write("\n")
    with open(os.path.join(DATA_FIX, "pillow_nearest.json"), "w") as f:
        json.dump({"pillow": Image.__version__, "cases": pillow_nearest_cases()}, f, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
