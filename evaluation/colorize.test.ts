import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, expect, test } from "vitest";
import { makeTempDir } from "../datasets/test_tree";
import { colorize, sideBySide, writeRgbPng } from "./colorize";

let dir = "";
let cleanup = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir("colorize-test"));
});
afterAll(() => cleanup());

test("colorize uses the Cityscapes palette; 255 is black", () => {
  const rgb = colorize({ width: 3, height: 1, data: Uint8Array.from([0, 13, 255]) });
  expect(Array.from(rgb.data)).toEqual([128, 64, 128, 0, 0, 142, 0, 0, 0]);
});

test("sideBySide scales panels to the first one's height and separates them with white", () => {
  const a = { width: 2, height: 2, data: new Uint8Array(12).fill(10) };
  const b = { width: 1, height: 1, data: Uint8Array.from([1, 2, 3]) };
  const s = sideBySide([a, b], 1);
  expect([s.width, s.height]).toEqual([2 + 1 + 2, 2]);
  expect(Array.from(s.data.subarray(0, 15))).toEqual([10, 10, 10, 10, 10, 10, 255, 255, 255, 1, 2, 3, 1, 2, 3]);
});

test("writeRgbPng writes a PNG that decodes to the same pixels", async () => {
  const img = colorize({ width: 4, height: 2, data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 255]) });
  const path = join(dir, "sub", "c.png");
  expect(E.isRight(await writeRgbPng(path, img)())).toBe(true);
  const back = await sharp(path).raw().toBuffer();
  expect(Array.from(back)).toEqual(Array.from(img.data));
});
