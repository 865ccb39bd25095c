// The label tables as they were built before label sets became data (class-table.ts), frozen
// here as the reference: every lookup table and palette the pipeline reads must stay
// bit-identical over all 256 values, so the 19/16/13-class protocols train and score exactly as
// before. The reference is the old construction, written out again, not imported.

import { describe, expect, test } from "vitest";
import { classPalette } from "./class-table";
import * as C from "./classes";
import { type LabelCoding, labelLut } from "./layouts";

const OLD_IGNORE = 255;

function oldLut(pairs: readonly (readonly [number, number])[]): Uint8Array {
  const lut = new Uint8Array(256).fill(OLD_IGNORE);
  for (const [from, to] of pairs) lut[from] = to;
  return lut;
}

function oldCompose(a: Uint8Array, b: Uint8Array): Uint8Array {
  return Uint8Array.from(a, (v) => (v === OLD_IGNORE ? OLD_IGNORE : b[v]!));
}

// [trainId, labelId, color] of the 19 Cityscapes training classes (docs §4.4).
const OLD_CITYSCAPES: readonly (readonly [number, number, readonly [number, number, number]])[] = [
  [0, 7, [128, 64, 128]], [1, 8, [244, 35, 232]], [2, 11, [70, 70, 70]], [3, 12, [102, 102, 156]],
  [4, 13, [190, 153, 153]], [5, 17, [153, 153, 153]], [6, 19, [250, 170, 30]], [7, 20, [220, 220, 0]],
  [8, 21, [107, 142, 35]], [9, 22, [152, 251, 152]], [10, 23, [70, 130, 180]], [11, 24, [220, 20, 60]],
  [12, 25, [255, 0, 0]], [13, 26, [0, 0, 142]], [14, 27, [0, 0, 70]], [15, 28, [0, 60, 100]],
  [16, 31, [0, 80, 100]], [17, 32, [0, 0, 230]], [18, 33, [119, 11, 32]],
];

const OLD_LABEL_ID_TO_TRAIN_ID = oldLut(OLD_CITYSCAPES.map(([t, l]) => [l, t]));
const OLD_SYNTHIA_ID_TO_TRAIN_ID = oldLut([
  [3, 0], [4, 1], [2, 2], [21, 3], [5, 4], [7, 5], [15, 6], [9, 7],
  [6, 8], [1, 10], [10, 11], [17, 12], [8, 13], [19, 15], [12, 17], [11, 18],
]);
const OLD_PROTOCOL_TRAIN_IDS = {
  cityscapes19: [...Array(19).keys()],
  synthia16: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18],
  common13: [0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18],
} as const;
type OldProtocol = keyof typeof OLD_PROTOCOL_TRAIN_IDS;
const PROTOCOL_IDS = Object.keys(OLD_PROTOCOL_TRAIN_IDS) as OldProtocol[];

const oldToProtocol = (p: OldProtocol) => oldLut(OLD_PROTOCOL_TRAIN_IDS[p].map((t, k) => [t, k]));
const oldFromProtocol = (p: OldProtocol) => oldLut(OLD_PROTOCOL_TRAIN_IDS[p].map((t, k) => [k, t]));
const OLD_CROSS_CITY_TO_TRAIN_ID = oldFromProtocol("common13");
const OLD_CODINGS: Readonly<Record<LabelCoding, Uint8Array>> = {
  "cityscapes-label-id": OLD_LABEL_ID_TO_TRAIN_ID,
  "synthia-id": OLD_SYNTHIA_ID_TO_TRAIN_ID,
  "cross-city-13": OLD_CROSS_CITY_TO_TRAIN_ID,
};

function oldPalette(index: (c: (typeof OLD_CITYSCAPES)[number]) => number): Uint8Array {
  const pal = new Uint8Array(256 * 3);
  for (const c of OLD_CITYSCAPES) pal.set(c[2], index(c) * 3);
  return pal;
}
const OLD_TRAIN_ID_PALETTE = oldPalette(([t]) => t);
const OLD_LABEL_ID_PALETTE = oldPalette(([, l]) => l);

/** Equal over every entry, reported by the first value that differs. */
function expectSame(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const first = expected.findIndex((v, i) => actual[i] !== v);
  expect({ first, actual: actual[first], expected: expected[first] }).toEqual({ first: -1, actual: undefined, expected: undefined });
}

describe("dataset label id -> trainId tables", () => {
  test("Cityscapes / GTA5", () => expectSame(C.LABEL_ID_TO_TRAIN_ID, OLD_LABEL_ID_TO_TRAIN_ID));
  test("SYNTHIA", () => expectSame(C.SYNTHIA_ID_TO_TRAIN_ID, OLD_SYNTHIA_ID_TO_TRAIN_ID));
  test("Cross-City", () => expectSame(C.CROSS_CITY_TO_TRAIN_ID, OLD_CROSS_CITY_TO_TRAIN_ID));
  test("as class tables over the 19 trainIds", () => {
    for (const t of [C.CITYSCAPES_LABELS, C.SYNTHIA_LABELS, C.CROSS_CITY_LABELS]) {
      expect(t.names).toEqual(OLD_CITYSCAPES.map(([k]) => C.CITYSCAPES_CLASSES[k]!.name));
      expectSame(classPalette(t), OLD_TRAIN_ID_PALETTE);
      expect(t.ignoreIndex).toBe(OLD_IGNORE);
    }
  });
});

describe.each(PROTOCOL_IDS)("protocol %s", (id) => {
  const p = C.PROTOCOLS[id];
  test("trainIds and names", () => {
    expect(p.trainIds).toEqual(OLD_PROTOCOL_TRAIN_IDS[id]);
    expect(p.names).toEqual(OLD_PROTOCOL_TRAIN_IDS[id].map((t) => C.CITYSCAPES_CLASSES[t]!.name));
    expect(p.numClasses).toBe(OLD_PROTOCOL_TRAIN_IDS[id].length);
  });
  test("trainId -> class index and back", () => {
    expectSame(C.trainIdToProtocolLut(p), oldToProtocol(id));
    expectSame(C.protocolToTrainIdLut(p), oldFromProtocol(id));
  });
  test("its own table reads Cityscapes label ids, as the scorer's labelid format did", () => {
    expectSame(p.labelLut, oldCompose(OLD_LABEL_ID_TO_TRAIN_ID, oldToProtocol(id)));
  });
  test("its palette colors class k as the trainId palette colored trainId k maps to", () => {
    const old = new Uint8Array(256 * 3);
    oldFromProtocol(id).forEach((t, k) => old.set(OLD_TRAIN_ID_PALETTE.subarray(t * 3, t * 3 + 3), k * 3));
    // Class indices past the protocol map to 255, which the old palette colors black, as the new one.
    expectSame(classPalette(p), old);
  });
  test.each(Object.keys(OLD_CODINGS) as LabelCoding[])("raw %s label value -> class index", (coding) => {
    expectSame(labelLut(coding, p), oldCompose(OLD_CODINGS[coding], oldToProtocol(id)));
  });
});

describe("palettes", () => {
  test("by trainId", () => expectSame(C.TRAIN_ID_PALETTE, OLD_TRAIN_ID_PALETTE));
  test("by Cityscapes label id", () => expectSame(C.LABEL_ID_PALETTE, OLD_LABEL_ID_PALETTE));
});
