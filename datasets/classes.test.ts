import { describe, expect, test } from "vitest";
import {
  CITYSCAPES_CLASSES,
  CROSS_CITY_TO_TRAIN_ID,
  IGNORE,
  LABEL_ID_TO_TRAIN_ID,
  PROTOCOLS,
  SYNTHIA_ID_TO_TRAIN_ID,
  TRAIN_ID_PALETTE,
  composeLuts,
  mapLabels,
  protocolByClassCount,
  trainIdToProtocolLut,
} from "./classes";

/** Every table entry not listed in `pairs` must be 255. */
function expectTable(lut: Uint8Array, pairs: readonly (readonly [number, number])[]): void {
  const expected = new Array<number>(256).fill(IGNORE);
  for (const [k, v] of pairs) expected[k] = v;
  for (let k = 0; k < 256; k++) expect({ id: k, to: lut[k] }).toEqual({ id: k, to: expected[k] });
}

describe("Cityscapes / GTA5 label id -> trainId (docs §4.1)", () => {
  test("the 19 pairs, class by class, and 255 for every other id", () => {
    expectTable(LABEL_ID_TO_TRAIN_ID, [
      [7, 0], [8, 1], [11, 2], [12, 3], [13, 4], [17, 5], [19, 6], [20, 7], [21, 8], [22, 9],
      [23, 10], [24, 11], [25, 12], [26, 13], [27, 14], [28, 15], [31, 16], [32, 17], [33, 18],
    ]);
  });

  test("the class table is in trainId order with the documented colors", () => {
    expect(CITYSCAPES_CLASSES.map((c) => c.trainId)).toEqual([...Array(19).keys()]);
    expect(CITYSCAPES_CLASSES[0]).toEqual({ trainId: 0, name: "road", labelId: 7, color: [128, 64, 128] });
    expect(CITYSCAPES_CLASSES[18]).toEqual({ trainId: 18, name: "bicycle", labelId: 33, color: [119, 11, 32] });
  });
});

describe("SYNTHIA id -> trainId (ADVENT/BDL mapping)", () => {
  test("the 16 pairs, class by class, and 255 for every other id", () => {
    expectTable(SYNTHIA_ID_TO_TRAIN_ID, [
      [3, 0], [4, 1], [2, 2], [21, 3], [5, 4], [7, 5], [15, 6], [9, 7],
      [6, 8], [1, 10], [10, 11], [17, 12], [8, 13], [19, 15], [12, 17], [11, 18],
    ]);
  });

  test("16-bit values above 255 are ignored", () => {
    expect(Array.from(mapLabels(Uint16Array.from([3, 256 + 3, 65535, 8]), SYNTHIA_ID_TO_TRAIN_ID))).toEqual([0, 255, 255, 13]);
  });
});

describe("protocols", () => {
  test("19 classes: every trainId", () => {
    expect(PROTOCOLS.cityscapes19.trainIds).toEqual([...Array(19).keys()]);
  });

  test("16 classes: all but terrain, truck, train", () => {
    expect(PROTOCOLS.synthia16.names).toEqual([
      "road", "sidewalk", "building", "wall", "fence", "pole", "light", "sign",
      "vegetation", "sky", "person", "rider", "car", "bus", "motorcycle", "bicycle",
    ]);
  });

  test("13 classes: the 16 without wall, fence, pole, in Cross-City order", () => {
    expect(PROTOCOLS.common13.names).toEqual([
      "road", "sidewalk", "building", "light", "sign", "vegetation", "sky",
      "person", "rider", "car", "bus", "motorcycle", "bicycle",
    ]);
  });

  test("--protocol 19|16|13", () => {
    expect(protocolByClassCount(19)).toBe(PROTOCOLS.cityscapes19);
    expect(protocolByClassCount(16)).toBe(PROTOCOLS.synthia16);
    expect(protocolByClassCount(13)).toBe(PROTOCOLS.common13);
    expect(protocolByClassCount(12)).toBeUndefined();
  });

  test("trainId -> 13-class index, class by class", () => {
    expectTable(trainIdToProtocolLut(PROTOCOLS.common13), [
      [0, 0], [1, 1], [2, 2], [6, 3], [7, 4], [8, 5], [10, 6], [11, 7], [12, 8], [13, 9], [15, 10], [17, 11], [18, 12],
    ]);
  });

  test("trainId -> 16-class index, class by class", () => {
    expectTable(trainIdToProtocolLut(PROTOCOLS.synthia16), [
      [0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6], [7, 7], [8, 8], [10, 9], [11, 10], [12, 11], [13, 12], [15, 13], [17, 14], [18, 15],
    ]);
  });

  test("Cross-City label values are 13-class indices: road 0 ... bicycle 12", () => {
    expectTable(CROSS_CITY_TO_TRAIN_ID, [
      [0, 0], [1, 1], [2, 2], [3, 6], [4, 7], [5, 8], [6, 10], [7, 11], [8, 12], [9, 13], [10, 15], [11, 17], [12, 18],
    ]);
  });

  test("composing SYNTHIA -> trainId -> 13 classes drops wall, fence, pole", () => {
    const lut = composeLuts(SYNTHIA_ID_TO_TRAIN_ID, trainIdToProtocolLut(PROTOCOLS.common13));
    expect([lut[3], lut[21], lut[5], lut[7], lut[15], lut[11], lut[0]]).toEqual([0, 255, 255, 255, 3, 12, 255]);
  });
});

test("the palette is zero-padded: 255 and ids past 18 are black", () => {
  expect(Array.from(TRAIN_ID_PALETTE.subarray(255 * 3, 256 * 3))).toEqual([0, 0, 0]);
  expect(Array.from(TRAIN_ID_PALETTE.subarray(19 * 3, 20 * 3))).toEqual([0, 0, 0]);
  expect(Array.from(TRAIN_ID_PALETTE.subarray(13 * 3, 14 * 3))).toEqual([0, 0, 142]);
});
