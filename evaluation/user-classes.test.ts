// A user's class table through scoring and reporting: per-class rows carry its names, colorized
// maps its colors, and what only the built-in protocols have (trainIds, the 13-class subset) is
// left out rather than invented.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, test } from "vitest";
import { type ClassTable, classPalette, parseClassTable } from "../datasets/class-table";
import { PROTOCOLS } from "../datasets/classes";
import { labelLut } from "../datasets/layouts";
import { colorize } from "./colorize";
import { confusionOf } from "./confusion";
import { jsonReport, markdownTable, subsetMIoU, summarize } from "./report";

const table: ClassTable = (() => {
  const r = parseClassTable(
    {
      classes: [
        { name: "water", color: [0, 0, 255], labelIds: [10] },
        { name: "land", color: [0, 255, 0], labelIds: [20, 21] },
        { name: "cloud", color: [200, 200, 200], labelIds: [30] },
      ],
    },
    "aerial.json",
  );
  if (E.isLeft(r)) throw new Error(r.left.reason);
  return r.right;
})();

// water right twice, land predicted as water once, cloud right once
const s = summarize(table, confusionOf(3, Uint8Array.from([0, 0, 1, 2]), Uint8Array.from([0, 0, 0, 2])));

describe("reports of a user table", () => {
  test("markdown rows are the table's class names", () => {
    const lines = markdownTable([{ title: "run", summary: s }]).trim().split("\n");
    expect(lines.slice(2, 5)).toEqual(["| water | 66.67 |", "| land | 0.00 |", "| cloud | 100.00 |"]);
  });

  test("JSON names the table's file and its classes, without trainIds", () => {
    const j = jsonReport(s);
    expect(j.protocol).toBe("aerial.json");
    expect(j.numClasses).toBe(3);
    expect(j.classes.map((c) => c.name)).toEqual(["water", "land", "cloud"]);
    expect(j.classes.every((c) => !("trainId" in c))).toBe(true);
  });

  test("a built-in protocol's JSON keeps its trainIds", () => {
    const j = jsonReport(summarize(PROTOCOLS.common13, confusionOf(13, Uint8Array.of(3), Uint8Array.of(3))));
    expect(j.classes[3]).toEqual({ name: "light", trainId: 6, iou: 1 });
  });

  test("no 13-class subset mIoU for a user table", () => {
    expect(subsetMIoU(s, PROTOCOLS.common13)).toBeUndefined();
  });
});

test("colorized class maps use the table's colors; the ignore value is black", () => {
  const img = colorize({ width: 4, height: 1, data: Uint8Array.of(0, 1, 2, 255) }, classPalette(table));
  expect(Array.from(img.data)).toEqual([0, 0, 255, 0, 255, 0, 200, 200, 200, 0, 0, 0]);
});

test("a user table reads raw label values with its own LUT, whatever the layout's coding", () => {
  for (const coding of ["cityscapes-label-id", "synthia-id", "cross-city-13"] as const) {
    const lut = labelLut(coding, table);
    expect([lut[10], lut[20], lut[21], lut[30], lut[7], lut[0]]).toEqual([0, 1, 1, 2, 255, 255]);
  }
});
