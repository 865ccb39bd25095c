import { describe, expect, it, test } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import { confusionOf } from "./confusion";
import { jsonReport, markdownTable, subsetMIoU, summarize } from "./report";

const p = PROTOCOLS.common13;
// road right twice, sidewalk predicted as road once, sky right once; other classes absent
const s = summarize(p, confusionOf(13, Uint8Array.from([0, 0, 1, 6]), Uint8Array.from([0, 0, 0, 6])));

describe("markdownTable", () => {
  test("one row per class, IoU x 100 with 2 decimals, nan for absent classes, mIoU last", () => {
    const md = markdownTable([{ title: "adapted", summary: s }]);
    const lines = md.trim().split("\n");
    expect(lines[0]).toBe("| class | adapted |");
    expect(lines.length).toBe(2 + 13 + 1);
    expect(lines[2]).toBe("| road | 66.67 |");
    expect(lines[3]).toBe("| sidewalk | 0.00 |");
    expect(lines[4]).toBe("| building | nan |");
    expect(lines[8]).toBe("| sky | 100.00 |");
    expect(lines.at(-1)).toBe("| **mIoU** | **55.56** |");
  });

  test("several runs side by side", () => {
    const md = markdownTable([
      { title: "source only", summary: s },
      { title: "adapted", summary: s },
    ]);
    expect(md.split("\n")[2]).toBe("| road | 66.67 | 66.67 |");
  });
});

describe("jsonReport", () => {
  test("NaN becomes null; the confusion matrix is rows of gt", () => {
    const j = jsonReport(s);
    expect(j.protocol).toBe("common13");
    expect(j.classes[0]).toEqual({ name: "road", trainId: 0, iou: 2 / 3 });
    expect(j.classes[2]).toEqual({ name: "building", trainId: 2, iou: null });
    expect(j.classes[6]).toEqual({ name: "sky", trainId: 10, iou: 1 });
    expect(j.confusion[1]!.slice(0, 2)).toEqual([1, 0]);
    expect(j.mIoU).toBeCloseTo(100 * (2 / 3 + 0 + 1) / 3, 12);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
  });
});

describe("the 13-class score of a 16-class model", () => {
  it("is the nan-mean of the 13 common classes' IoUs, read from the 16-class summary", () => {
    const p16 = PROTOCOLS.synthia16;
    const n = p16.numClasses;
    const hist = new Float64Array(n * n);
    // Class k: k+1 correct pixels and one pixel confused with class (k+1) mod n.
    for (let k = 0; k < n; k++) {
      hist[k * n + k] = k + 1;
      hist[k * n + ((k + 1) % n)] = 1;
    }
    const s = summarize(p16, { numClasses: n, hist, missed: new Float64Array(n) });
    const keep = PROTOCOLS.common13.trainIds.map((t) => p16.trainIds.indexOf(t));
    const expected = (100 * keep.reduce((a, k) => a + s.iou[k]!, 0)) / keep.length;
    expect(subsetMIoU(s, PROTOCOLS.common13)).toBeCloseTo(expected, 10);
    expect(subsetMIoU(s, PROTOCOLS.common13)).not.toBeCloseTo(s.miou, 3);
    // 19 classes are not a subset of 16.
    expect(subsetMIoU(s, PROTOCOLS.cityscapes19)).toBeUndefined();
  });
});
