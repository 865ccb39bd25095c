import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { accumulate, confusionOf, emptyConfusion, formatPercent, meanIoU, mergeConfusions, perClassIoU, pixelAccuracy } from "./confusion";

const u8 = (xs: readonly number[]) => Uint8Array.from(xs);

describe("confusion matrix, by hand", () => {
  // 3 classes. gt:   0 0 1 1 2 255 2 1
  //            pred: 0 1 1 1 0 2   2 9
  // valid pixels: all but index 5 (gt 255). The last pixel predicts 9, outside the protocol.
  const gt = u8([0, 0, 1, 1, 2, 255, 2, 1]);
  const pred = u8([0, 1, 1, 1, 0, 2, 2, 9]);
  const c = confusionOf(3, gt, pred);

  test("hist[gt, pred] counts pixels with 0 <= gt < n", () => {
    expect(Array.from(c.hist)).toEqual([
      1, 1, 0, // gt 0
      0, 2, 0, // gt 1
      1, 0, 1, // gt 2
    ]);
    expect(Array.from(c.missed)).toEqual([0, 1, 0]);
  });

  test("IoU = tp / (row + col - tp), out-of-protocol predictions count against the gt class", () => {
    // class 0: tp 1, row 2, col 2 -> 1/3; class 1: tp 2, row 2 + 1 missed, col 3 -> 2/4; class 2: tp 1, row 2, col 1 -> 1/2
    expect(Array.from(perClassIoU(c))).toEqual([1 / 3, 2 / 4, 1 / 2]);
  });

  test("mIoU is 100 x the mean", () => {
    expect(meanIoU(perClassIoU(c))).toBeCloseTo((100 * (1 / 3 + 1 / 2 + 1 / 2)) / 3, 12);
    expect(formatPercent(meanIoU(perClassIoU(c)))).toBe("44.44");
  });

  test("pixel accuracy over valid pixels", () => {
    expect(pixelAccuracy(c)).toBe(4 / 7);
  });

  test("a class absent from gt and prediction is NaN and left out of the mean", () => {
    const d = confusionOf(4, u8([0, 0, 1]), u8([0, 1, 1]));
    const iou = perClassIoU(d);
    expect(Number.isNaN(iou[2]!) && Number.isNaN(iou[3]!)).toBe(true);
    expect(meanIoU(iou)).toBeCloseTo(100 * (1 / 2 + 1 / 2) / 2, 12);
  });

  test("a class only predicted has IoU 0, not NaN", () => {
    expect(Array.from(perClassIoU(confusionOf(2, u8([0, 0]), u8([0, 1]))))).toEqual([0.5, 0]);
  });

  test("accumulating images equals merging their matrices", () => {
    const a = emptyConfusion(3);
    accumulate(a, gt, pred);
    accumulate(a, u8([2, 2]), u8([2, 1]));
    const b = mergeConfusions(c, confusionOf(3, u8([2, 2]), u8([2, 1])));
    expect(Array.from(a.hist)).toEqual(Array.from(b.hist));
  });

  test("no valid pixel at all gives a NaN mIoU", () => {
    expect(formatPercent(meanIoU(perClassIoU(confusionOf(2, u8([255]), u8([0])))))).toBe("nan");
  });
});

interface NumpyCase {
  readonly name: string;
  readonly numClasses: number;
  readonly images: readonly { height: number; width: number; gt: number[]; pred: number[] }[];
  readonly hist: number[][];
  readonly iou: (number | null)[];
  readonly mIoU: number;
  readonly mIoURounded: string;
}
const fixture = JSON.parse(readFileSync(new URL("./fixtures/numpy_scores.json", import.meta.url), "utf8")) as { cases: NumpyCase[] };

describe("against NumPy (scripts/make_eval_fixture.py)", () => {
  test.each(fixture.cases.map((c) => [c.name, c] as const))("%s", (_name, fc) => {
    const c = emptyConfusion(fc.numClasses);
    for (const im of fc.images) accumulate(c, u8(im.gt), u8(im.pred));
    expect(Array.from(c.hist)).toEqual(fc.hist.flat());
    const iou = perClassIoU(c);
    expect(Array.from(iou, (v) => (Number.isNaN(v) ? null : v))).toEqual(fc.iou);
    expect(meanIoU(iou)).toBe(fc.mIoU);
    expect(formatPercent(meanIoU(iou))).toBe(fc.mIoURounded);
  });
});
