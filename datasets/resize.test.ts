import * as E from "fp-ts/lib/Either.js";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type RgbImage, readRgb } from "./image";
import { decodePng, encodePng } from "./png";
import {
  PRECISION_BITS,
  bicubicWeights,
  fixedPointWeights,
  keysCubic,
  resizeLabelNearest,
  resizeRgbBicubic,
  toFixedPoint,
} from "./resize";
import { makeTempDir, writeFileDeep } from "./test_tree";

// ---- Pillow fixtures (scripts/make_resize_fixtures.py; Pillow 9.4, Debian bookworm) ----

interface ResizeCase {
  readonly name: string;
  readonly kind: "noise" | "smooth" | "label";
  readonly seed: string;
  readonly in: readonly [number, number];
  readonly out: readonly [number, number];
  readonly source_sha256: string;
  readonly sha256: string;
  readonly png?: string;
}

const FIXTURES = new URL("./fixtures/resize/", import.meta.url);
const fixture = JSON.parse(readFileSync(new URL("cases.json", FIXTURES), "utf8")) as { pillow: string; cases: ResizeCase[] };

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The generator's seed bytes: SHAKE-256 of the seed string, as Python's hashlib.shake_256. */
function shake(seed: string, n: number): Uint8Array {
  return new Uint8Array(createHash("shake256", { outputLength: n }).update(seed, "utf8").digest());
}

/** The "smooth" source of make_resize_fixtures.py: per-channel gradients, an inverted 8x8 checkerboard, noise in -4..4. */
function smoothRgb(seed: string, w: number, h: number): Uint8Array {
  const noise = shake(seed, w * h * 3);
  const [dx, dy, dxy] = [Math.max(w - 1, 1), Math.max(h - 1, 1), Math.max(w + h - 2, 1)];
  const out = new Uint8Array(w * h * 3);
  let i = 0;
  for (let y = 0; y < h; y++) {
    const cy = Math.floor((y * 8) / h);
    for (let x = 0; x < w; x++) {
      const inverted = (Math.floor((x * 8) / w) + cy) % 2 === 1;
      for (const g of [Math.floor((x * 255) / dx), Math.floor((y * 255) / dy), Math.floor(((x + y) * 255) / dxy)]) {
        const v = (inverted ? 255 - g : g) + (noise[i]! % 9) - 4;
        out[i++] = Math.min(255, Math.max(0, v));
      }
    }
  }
  return out;
}

/** Sources are shared by several cases (one source, several output sizes); build each once. */
const sources = new Map<string, Uint8Array>();
function sourceOf(c: ResizeCase): Uint8Array {
  let s = sources.get(c.seed);
  if (s === undefined) {
    const [w, h] = c.in;
    s = c.kind === "smooth" ? smoothRgb(c.seed, w, h) : shake(c.seed, w * h * (c.kind === "label" ? 1 : 3));
    sources.set(c.seed, s);
  }
  return s;
}

/** Pillow's stored output, when the fixture keeps it as a PNG (small outputs). */
function pillowOutput(c: ResizeCase): Uint8Array | undefined {
  if (c.png === undefined) return undefined;
  const png = decodePng(new Uint8Array(readFileSync(new URL(c.png, FIXTURES))), c.png);
  if (E.isLeft(png)) throw new Error(JSON.stringify(png.left));
  return png.right.samples as Uint8Array;
}

function countDifferent(a: Uint8Array, b: Uint8Array): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

function resizeCase(c: ResizeCase): Uint8Array {
  const [w, h] = c.in;
  const size = { width: c.out[0], height: c.out[1] };
  const src = { width: w, height: h, data: sourceOf(c) };
  return c.kind === "label" ? resizeLabelNearest(src, size).data : resizeRgbBicubic(src, size).data;
}

function checkCase(c: ResizeCase): void {
  expect(sha256(sourceOf(c)), "the source rebuilt here is not the one Pillow resized").toBe(c.source_sha256);
  const ours = resizeCase(c);
  const theirs = pillowOutput(c);
  if (theirs !== undefined) expect(countDifferent(ours, theirs), "values differing from Pillow").toBe(0);
  expect(sha256(ours), "SHA-256 of the output differs from Pillow's").toBe(c.sha256);
}

const rgbCases = fixture.cases.filter((c) => c.kind !== "label");
const labelCases = fixture.cases.filter((c) => c.kind === "label");

describe(`Pillow ${fixture.pillow} BICUBIC, byte for byte`, () => {
  test("the fixtures cover the official loaders' sizes, one-axis changes and upscaling", () => {
    const pairs = new Set(rgbCases.map((c) => `${c.in.join("x")}->${c.out.join("x")}`));
    for (const p of ["1914x1052->1280x720", "2048x1024->1024x512", "1280x760->1024x512", "1280x760->1280x760", "37x23->20x11", "50x30->129x77"]) {
      expect(pairs.has(p), p).toBe(true);
    }
    expect(rgbCases.some((c) => c.in[0] === c.out[0] && c.in[1] !== c.out[1])).toBe(true);
    expect(rgbCases.some((c) => c.in[0] !== c.out[0] && c.in[1] === c.out[1])).toBe(true);
  });

  test.each(rgbCases.map((c) => [c.name, c] as const))("%s", (_name, c) => checkCase(c), 30_000);
});

describe("the dataset loaders use it", () => {
  test("readRgb of a PNG with a size gives Pillow's bytes", async () => {
    const c = rgbCases.find((k) => k.kind === "noise" && k.png !== undefined && k.in[0] !== k.out[0] && k.in[1] !== k.out[1])!;
    const { dir, cleanup } = await makeTempDir("resize-test");
    try {
      const path = join(dir, "src.png");
      await writeFileDeep(path, encodePng({ width: c.in[0], height: c.in[1], colorType: "rgb", bitDepth: 8, samples: sourceOf(c) }));
      const r = await readRgb(path, { width: c.out[0], height: c.out[1] })();
      expect(E.isRight(r) ? countDifferent(r.right.data, pillowOutput(c)!) : r.left).toBe(0);
    } finally {
      await cleanup();
    }
  });
});

describe(`Pillow ${fixture.pillow} NEAREST on label maps, byte for byte`, () => {
  test.each(labelCases.map((c) => [c.name, c] as const))("%s", (_name, c) => checkCase(c), 30_000);
});

// ---- The weights: small facts worth stating on their own ----

describe("bicubic weights", () => {
  test("Keys' kernel with a = -0.5: 1 at 0, 0 at the other integers, -0.0625 at 1.5", () => {
    // (+ 0 turns the -0 that a * 0 gives at x = 1 into 0: the same weight.)
    expect([0, 1, -1, 2, 1.5, -0.5].map((x) => keysCubic(x) + 0)).toEqual([
      1, 0, 0, 0, -0.0625, 0.5625,
    ]);
  });

  test("halving stretches the kernel: 2048 -> 1024 reads 8 inputs around (i + 0.5) * 2", () => {
    const w = bicubicWeights(2048, 1024);
    // Center 1000.5 * 2 = 2001, support 4: inputs trunc(1997.5) = 1997 .. trunc(2005.5) - 1 = 2004.
    expect([w.first[1000], w.count[1000], w.stride]).toEqual([1997, 8, 9]);
    // Symmetric around the center, argument (j - 2001 + 0.5) / 2.
    const row = Array.from(w.weights.subarray(1000 * 9, 1000 * 9 + 8));
    expect(row.map((v, j) => v - row[7 - j]!).every((d) => Math.abs(d) < 1e-15)).toBe(true);
  });

  test("upscaling keeps the plain kernel: 4 taps at most, window cut at the edge and renormalised", () => {
    const w = bicubicWeights(50, 129);
    expect(w.stride).toBe(5);
    expect(Math.max(...w.count)).toBeLessThanOrEqual(5);
    expect(w.first[0]).toBe(0);
    const first = Array.from(w.weights.subarray(0, w.count[0]!));
    expect(first.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
  });

  test("fixed point rounds half away from zero, as Pillow's (int)(w * 2^22 +- 0.5)", () => {
    const ulp = 2 ** -PRECISION_BITS;
    expect([toFixedPoint(0.5 * ulp), toFixedPoint(-0.5 * ulp), toFixedPoint(0.49 * ulp), toFixedPoint(-1.5 * ulp)]).toEqual([1, -1, 0, -2]);
  });

  test("every output's fixed-point weights sum to 2^22 within half a unit per tap", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), (inSize, outSize) => {
        const w = fixedPointWeights(bicubicWeights(inSize, outSize));
        for (let i = 0; i < outSize; i++) {
          let sum = 0;
          for (let t = 0; t < w.count[i]!; t++) sum += w.weights[i * w.stride + t]!;
          if (Math.abs(sum - 2 ** PRECISION_BITS) > w.count[i]! / 2) return false;
        }
        return true;
      }),
    );
  });
});

// ---- Laws of Pillow's two-pass resize ----

const sizeArb = fc.record({ width: fc.integer({ min: 1, max: 40 }), height: fc.integer({ min: 1, max: 40 }) });
const rgbArb: fc.Arbitrary<RgbImage> = sizeArb.chain(({ width, height }) =>
  fc.uint8Array({ minLength: width * height * 3, maxLength: width * height * 3 }).map((data) => ({ width, height, data })),
);

describe("bicubic resize laws", () => {
  test("a constant image stays that constant at any size", () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, fc.integer({ min: 0, max: 255 }), (from, to, v) => {
        const out = resizeRgbBicubic({ ...from, data: new Uint8Array(from.width * from.height * 3).fill(v) }, to);
        return out.width === to.width && out.height === to.height && out.data.every((x) => x === v);
      }),
    );
  });

  test("resizing to the same size is the identity", () => {
    fc.assert(fc.property(rgbArb, (img) => resizeRgbBicubic(img, img).data === img.data));
  });

  test("horizontal pass first, rounded to uint8: width-only then height-only equals the direct resize", () => {
    fc.assert(
      fc.property(rgbArb, sizeArb, (img, to) => {
        const direct = resizeRgbBicubic(img, to);
        const twoStep = resizeRgbBicubic(resizeRgbBicubic(img, { width: to.width, height: img.height }), to);
        return countDifferent(direct.data, twoStep.data) === 0;
      }),
    );
  });

  test("channels do not mix: resizing RGB is resizing each channel alone", () => {
    fc.assert(
      fc.property(rgbArb, sizeArb, (img, to) => {
        const out = resizeRgbBicubic(img, to).data;
        const n = img.width * img.height;
        for (let c = 0; c < 3; c++) {
          const gray = new Uint8Array(n * 3);
          for (let i = 0; i < n; i++) gray.fill(img.data[3 * i + c]!, 3 * i, 3 * i + 3);
          const one = resizeRgbBicubic({ ...img, data: gray }, to).data;
          for (let i = 0; i < to.width * to.height; i++) if (one[3 * i] !== out[3 * i + c]) return false;
        }
        return true;
      }),
    );
  });

  test("refuses sizes that are not positive integers", () => {
    const img = { width: 2, height: 2, data: new Uint8Array(12) };
    expect(() => resizeRgbBicubic(img, { width: 0, height: 2 })).toThrow(/positive integers/);
    expect(() => resizeRgbBicubic(img, { width: 1.5, height: 2 })).toThrow(/positive integers/);
  });
});

describe("NEAREST resize laws", () => {
  test("every output value is a source value, and the same size is the identity", () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, fc.integer({ min: 0, max: 2 ** 32 - 1 }), (from, to, seed) => {
        const data = shake(String(seed), from.width * from.height);
        const out = resizeLabelNearest({ ...from, data }, to);
        const values = new Set(data);
        return out.data.every((v) => values.has(v)) && resizeLabelNearest({ ...from, data }, from).data === data;
      }),
    );
  });
});
