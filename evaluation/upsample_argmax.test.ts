import fc from "fast-check";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { alignCornersWeights, argmaxClasses, upsampleArgmax } from "./upsample_argmax";

/**
 * The textbook computation, kept deliberately naive: build the whole C x H x W upsampled tensor in
 * float64 from the align_corners=True formula, then a first-index argmax.
 */
function referenceUpsample(x: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float64Array {
  const out = new Float64Array(c * oh * ow);
  const src = (d: number, inn: number, outn: number) => (outn === 1 ? 0 : (d * (inn - 1)) / (outn - 1));
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < oh; y++) {
      const sy = src(y, h, oh);
      const y0 = Math.floor(sy);
      const y1 = Math.min(y0 + 1, h - 1);
      const ly = sy - y0;
      for (let xx = 0; xx < ow; xx++) {
        const sx = src(xx, w, ow);
        const x0 = Math.floor(sx);
        const x1 = Math.min(x0 + 1, w - 1);
        const lx = sx - x0;
        const at = (yy: number, xi: number) => x[k * h * w + yy * w + xi]!;
        out[k * oh * ow + y * ow + xx] =
          (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      }
    }
  }
  return out;
}

function referenceArgmax(v: Float64Array, c: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (v[k * n + i]! > v[best * n + i]!) best = k;
    return best;
  });
}

describe("alignCornersWeights", () => {
  test("corners coincide: output 0 and out-1 sample input 0 and in-1 exactly", () => {
    const a = alignCornersWeights(65, 512);
    expect([a.i0[0], a.w1[0], a.i0[511], a.w1[511]]).toEqual([0, 0, 64, 0]);
  });
  test("an output of size 1 samples index 0", () => {
    const a = alignCornersWeights(7, 1);
    expect([a.i0[0], a.i1[0], a.w0[0], a.w1[0]]).toEqual([0, 1, 1, 0]);
  });
  test("uses the float32 scale (in-1)/(out-1), as PyTorch", () => {
    const a = alignCornersWeights(65, 1024);
    const s = Math.fround(64 / 1023);
    expect(a.w1[700]).toBe(Math.fround(Math.fround(s * 700) - Math.floor(Math.fround(s * 700))));
  });
});

describe("upsampleArgmax", () => {
  test("matches the naive full-tensor reference on random logits", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer(),
        (c, h, w, oh, ow, seed) => {
          let s = seed >>> 0;
          const x = Float32Array.from({ length: c * h * w }, () => {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            return s / 2 ** 32 - 0.5;
          });
          const ref = referenceArgmax(referenceUpsample(x, c, h, w, oh, ow), c, oh * ow);
          expect(Array.from(upsampleArgmax(x, c, h, w, oh, ow))).toEqual(ref);
        },
      ),
      { numRuns: 150, seed: 42 },
    );
  });

  test("ties go to the first class", () => {
    // 2 classes x 2 x 2: planes [1 2; 5 0] and [1 3; 5 0] tie everywhere but at pixel 1
    const x = Float32Array.from([1, 2, 5, 0, 1, 3, 5, 0]);
    expect(Array.from(argmaxClasses(x, 2, 2, 2))).toEqual([0, 1, 0, 0]);
    expect(Array.from(argmaxClasses(Float32Array.from([3, 3, 3]), 3, 1, 1))).toEqual([0]);
  });

  test("rejects a logits array of the wrong length", () => {
    expect(() => upsampleArgmax(new Float32Array(5), 2, 2, 2, 4, 4)).toThrow(/5 logits/);
  });
});

interface TorchCase {
  classes: number;
  height: number;
  width: number;
  outHeight: number;
  outWidth: number;
  logits: number[];
  upsampled: number[] | null;
  argmax: number[];
}
const torchFixture = JSON.parse(readFileSync(new URL("./fixtures/torch_upsample.json", import.meta.url), "utf8")) as {
  cases: TorchCase[];
};

describe("against PyTorch F.interpolate(bilinear, align_corners=True) + argmax", () => {
  test.each(torchFixture.cases.map((c) => [`${c.classes}x${c.height}x${c.width} -> ${c.outHeight}x${c.outWidth}`, c] as const))(
    "%s",
    (_n, tc) => {
      const x = Float32Array.from(tc.logits);
      expect(Array.from(upsampleArgmax(x, tc.classes, tc.height, tc.width, tc.outHeight, tc.outWidth))).toEqual(tc.argmax);
      if (tc.upsampled !== null) {
        const ref = referenceUpsample(x, tc.classes, tc.height, tc.width, tc.outHeight, tc.outWidth);
        ref.forEach((v, i) => expect(Math.abs(v - tc.upsampled![i]!)).toBeLessThan(1e-5));
      }
    },
  );
});
