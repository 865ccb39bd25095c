// Differential tests of the reduction-like templates: sum/mean/max (one and two stages),
// argmax, softmax and log-softmax, and the fused softmax cross-entropy loss and its gradient.
//
// Tolerances. The GPU accumulates in f32 in a fixed order, the interpreter in f64 and rounds
// once, so a sum of K terms of size <= 1 may differ by about sqrt(K) * 2^-24 * |partial sums|
// (rounding errors of a sequential sum behave like a random walk). Short reductions
// (K <= 77 here) use rtol 1e-5 / atol 1e-6; the long ones (K ~ 8e3 and 2.5e4, partial sums up
// to ~100) use rtol 1e-4 / atol 1e-4, still 100x tighter than an error of one dropped element.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, I32 } from "../dsl/index";
import { program } from "./testing/cases";
import { differential, gridF32, rng, uniformF32, uniformInts } from "./testing/differential";
import { reductionSplits } from "./wgsl/templates/reduce";

const SHORT = { rtol: 1e-5, atol: 1e-6 };
const LONG = { rtol: 1e-4, atol: 1e-4 };

describe("reductions on the GPU agree with the float32 interpreter", () => {
  it("sum, mean and max over leading, middle, trailing, several and all axes", async () => {
    const x = d.input("x", [3, 5, 7, 11], "f32") as F32<4>;
    const p = program({
      sumAxis1: d.sum(x, [1]),
      sumAxes02: d.sum(x, [0, 2], { keepdims: true }),
      sumLast: d.sum(x, [3]),
      meanAxes23: d.mean(x, [2, 3]),
      meanAxis0: d.mean(x, [0], { keepdims: true }),
      maxAxes13: d.max(x, [1, 3]),
      maxAxis0: d.max(x, [0]),
      maxAll: d.max(x),
    });
    const r = rng(31);
    const res = await differential(p, new Map(), new Map([["x", uniformF32(3 * 5 * 7 * 11, r)]]), SHORT);
    expect(res.mismatches).toEqual([]);
  });

  it("long reductions are split in two stages and still agree", async () => {
    const shape = [2, 3, 61, 67] as const; // 8174 values per channel, 24522 in all
    const x = d.input("x", shape, "f32") as F32<4>;
    // The split is what this test is about: both reductions must take the two-stage path.
    expect(reductionSplits(3, 2 * 61 * 67)).toBeGreaterThan(1);
    expect(reductionSplits(1, 3 * 2 * 61 * 67)).toBeGreaterThan(1);
    const p = program({
      sumPerChannel: d.sum(x, [0, 2, 3]),
      meanPerChannel: d.mean(x, [0, 2, 3]),
      maxPerChannel: d.max(x, [0, 2, 3]),
      sumAll: d.sum(x),
    });
    const r = rng(32);
    const res = await differential(p, new Map(), new Map([["x", uniformF32(2 * 3 * 61 * 67, r)]]), LONG);
    expect(res.mismatches).toEqual([]);
    // Three reductions (mean shares the sum's kernels), each a partial-sums dispatch and a
    // combining dispatch.
    const names = res.gpu.compiled.module.phases[0]!.dispatches.map((k) => k.name);
    expect(names.filter((n) => n.endsWith("_stage1"))).toHaveLength(3);
    expect(names.filter((n) => n.endsWith("_stage2"))).toHaveLength(3);
  });

  it("argmax along each axis takes the first index among tied maxima", async () => {
    const g = d.input("g", [3, 5, 7], "f32") as F32<3>; // on a coarse grid: ties are frequent
    const p = program({
      axis0: d.argmax(g, 0),
      axis1: d.argmax(g, 1, { keepdims: true }),
      axis2: d.argmax(g, 2),
    });
    const r = rng(33);
    const exact = { rtol: 0, atol: 0 };
    const res = await differential(p, new Map(), new Map([["g", gridF32(105, r, -1, 1, 0.5)]]), exact);
    expect(res.mismatches).toEqual([]);
  });

  it("softmax and log-softmax along the class axis, the last axis and the first, on large logits", async () => {
    const x = d.input("x", [2, 5, 3, 7], "f32") as F32<4>;
    const big = d.mul(x, 40); // |x| up to 40: e^x overflows f32 unless the maximum is subtracted
    const p = program({
      softmax1: d.softmax(big, 1),
      softmaxLast: d.softmax(x, -1),
      softmax0: d.softmax(x, 0),
      logSoftmax1: d.logSoftmax(big, 1),
      logSoftmaxLast: d.logSoftmax(x, 3),
    });
    const r = rng(34);
    const res = await differential(p, new Map(), new Map([["x", uniformF32(210, r)]]), { rtol: 1e-4, atol: 1e-6 });
    expect(res.mismatches).toEqual([]);
  });
});

describe("softmax cross-entropy on the GPU agrees with the float32 interpreter", () => {
  // Labels: classes 0..4, the ignore label, and out-of-range labels (which count as invalid).
  const labelsOf = (n: number, r: () => number) =>
    Int32Array.from({ length: n }, () => [0, 1, 2, 3, 4, 255, 255, 7, -1][Math.floor(r() * 9)]!);

  it("loss and gradient (through grad) with ignored and out-of-range labels, one and several partial sums", async () => {
    const small = d.input("small", [2, 5, 7, 3], "f32") as F32<4>; // 42 pixels, 5 classes
    const smallLabels = d.input("smallLabels", [2, 7, 3], "i32") as I32<3>;
    const large = d.input("large", [1, 5, 47, 53], "f32") as F32<4>; // 2491 pixels: split in 2
    const largeLabels = d.input("largeLabels", [1, 47, 53], "i32") as I32<3>;
    const lossSmall = d.softmaxCrossEntropy(small, smallLabels);
    const lossClass0Ignored = d.softmaxCrossEntropy(small, smallLabels, { ignoreIndex: 0 });
    const lossLarge = d.softmaxCrossEntropy(large, largeLabels);
    const [gradSmall] = d.grad(lossSmall, [small]);
    const [gradClass0Ignored] = d.grad(lossClass0Ignored, [small]);
    const [gradLarge] = d.grad(lossLarge, [large]);
    const p = program({ lossSmall, lossClass0Ignored, lossLarge, gradSmall: gradSmall!, gradClass0Ignored: gradClass0Ignored!, gradLarge: gradLarge! });
    const r = rng(35);
    const data = new Map<string, ArrayLike<number>>([
      ["small", uniformF32(210, r, -3, 3)],
      ["smallLabels", labelsOf(42, r)],
      ["large", uniformF32(5 * 47 * 53, r, -3, 3)],
      ["largeLabels", labelsOf(47 * 53, r)],
    ]);
    // The loss of the large map is a mean of ~1400 per-pixel terms (f32 sums of partial sums).
    const res = await differential(p, new Map(), data, (name) => (name === "lossLarge" ? { rtol: 1e-4, atol: 1e-5 } : { rtol: 1e-4, atol: 1e-6 }));
    expect(res.mismatches).toEqual([]);
  });

  it("every label ignored: the loss is 0 and the gradient 0, not NaN", async () => {
    const x = d.input("x", [1, 3, 5, 2], "f32") as F32<4>;
    const labels = d.input("labels", [1, 5, 2], "i32") as I32<3>;
    const loss = d.softmaxCrossEntropy(x, labels);
    const [g] = d.grad(loss, [x]);
    const p = program({ loss, grad: g! });
    const r = rng(36);
    // 255 is the ignore label; 3 and -2 are outside the 3 classes.
    const data = new Map<string, ArrayLike<number>>([["x", uniformF32(30, r)], ["labels", Int32Array.from(uniformInts(10, r, 0, 2), (v) => [255, 3, -2][v]!)]]);
    const res = await differential(p, new Map(), data, { rtol: 0, atol: 0 });
    expect(res.mismatches).toEqual([]);
    expect(Array.from(res.gpu.outputs.get("loss")!)).toEqual([0]);
    expect(Array.from(res.gpu.outputs.get("grad")!).every((v) => v === 0)).toBe(true);
  });
});
