import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  IMG_MEAN_BGR,
  decodeLabelPng,
  flipLabel,
  flipRgb,
  nearestSourceIndices,
  readRawLabel,
  readRgb,
  resizeLabelNearest,
  toNetworkInput,
} from "./image";
import { encodePng } from "./png";
import { makeTempDir, writeFileDeep, writeGradientImage } from "./test_tree";

interface NearestCase {
  readonly in: number;
  readonly out: number;
  readonly indices: readonly number[];
}
const pillow = JSON.parse(readFileSync(new URL("./fixtures/pillow_nearest.json", import.meta.url), "utf8")) as {
  cases: NearestCase[];
};

describe("Pillow NEAREST resize rule", () => {
  test.each(pillow.cases.map((c) => [c.in, c.out, c] as const))("%i -> %i matches Pillow index for index", (_i, _o, c) => {
    expect(Array.from(nearestSourceIndices(c.in, c.out))).toEqual(c.indices);
  });

  test("resizeLabelNearest picks those pixels in both axes", () => {
    const label = { width: 3, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    const out = resizeLabelNearest(label, { width: 6, height: 4 });
    expect(Array.from(out.data)).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6]);
  });
});

describe("toNetworkInput (docs §4.1: RGB -> BGR, minus mean, CHW, float32)", () => {
  test("two pixels", () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 200, 100, 0]) };
    const x = toNetworkInput(img);
    const f = Math.fround;
    // plane B, then G, then R; each plane holds both pixels
    expect(Array.from(x)).toEqual([
      f(30 - IMG_MEAN_BGR[0]), f(0 - IMG_MEAN_BGR[0]),
      f(20 - IMG_MEAN_BGR[1]), f(100 - IMG_MEAN_BGR[1]),
      f(10 - IMG_MEAN_BGR[2]), f(200 - IMG_MEAN_BGR[2]),
    ]);
    expect(IMG_MEAN_BGR[0]).toBeCloseTo(104.00698793, 5);
  });
});

describe("flips", () => {
  test("flipRgb mirrors pixels, keeping channel order", () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    expect(Array.from(flipRgb(img).data)).toEqual([4, 5, 6, 1, 2, 3]);
  });
  test("flipLabel mirrors each row", () => {
    expect(Array.from(flipLabel({ width: 3, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }).data)).toEqual([3, 2, 1, 6, 5, 4]);
  });
});

describe("reading files", () => {
  let dir = "";
  let cleanup = async () => {};
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir("image-test"));
  });
  afterAll(() => cleanup());

  test("readRgb returns the stored pixels of a PNG", async () => {
    const rgb = await writeGradientImage(join(dir, "a.png"), 8, 5);
    const r = await readRgb(join(dir, "a.png"))();
    expect(E.isRight(r) && r.right.width === 8 && r.right.height === 5).toBe(true);
    if (E.isRight(r)) expect(Array.from(r.right.data)).toEqual(Array.from(rgb));
  });

  test("readRgb resizes to exactly the requested size, ignoring aspect ratio", async () => {
    await writeGradientImage(join(dir, "b.jpg"), 40, 30);
    const r = await readRgb(join(dir, "b.jpg"), { width: 16, height: 8 })();
    expect(E.isRight(r) ? [r.right.width, r.right.height, r.right.data.length] : r.left).toEqual([16, 8, 16 * 8 * 3]);
  });

  test("bicubic resize keeps a constant image constant", async () => {
    const { default: sharp } = await import("sharp");
    const flat = new Uint8Array(30 * 20 * 3).fill(77);
    await writeFileDeep(join(dir, "flat.png"), await sharp(flat, { raw: { width: 30, height: 20, channels: 3 } }).png().toBuffer());
    const r = await readRgb(join(dir, "flat.png"), { width: 13, height: 7 })();
    expect(E.isRight(r) && r.right.data.every((v) => v === 77)).toBe(true);
  });

  test("a missing image is a missing-file error naming it", async () => {
    const r = await readRgb(join(dir, "nope.png"))();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(dir, "nope.png") }));
  });

  test("a truncated image is a corrupt-file error naming it", async () => {
    const full = readFileSync(join(dir, "b.jpg"));
    await writeFileDeep(join(dir, "cut.jpg"), full.subarray(0, full.length >> 1));
    const r = await readRgb(join(dir, "cut.jpg"))();
    expect(E.isLeft(r) && r.left.kind === "corrupt-file" && r.left.path === join(dir, "cut.jpg")).toBe(true);
  });

  test("readRawLabel returns palette indices, not colors", async () => {
    const samples = Uint8Array.from([7, 8, 26, 0, 33, 255]);
    const palette = new Uint8Array(256 * 3).fill(9);
    await writeFileDeep(join(dir, "l.png"), encodePng({ width: 3, height: 2, colorType: "palette", bitDepth: 8, samples, palette }));
    const r = await readRawLabel(join(dir, "l.png"))();
    expect(E.isRight(r) ? Array.from(r.right.data) : r.left).toEqual([7, 8, 26, 0, 33, 255]);
  });

  test("an 8-bit RGB label is refused with a message naming the file", () => {
    const png = encodePng({ width: 1, height: 1, colorType: "rgb", bitDepth: 8, samples: Uint8Array.from([1, 2, 3]) });
    const r = decodeLabelPng(png, "labels/x.png");
    expect(E.isLeft(r) && r.left.kind === "unsupported-format" && r.left.path === "labels/x.png").toBe(true);
  });
});
