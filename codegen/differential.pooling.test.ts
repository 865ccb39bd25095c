// Differential tests of max pooling and its gather-form gradient, and of the bilinear resize
// adjoint (resizeGrad), against the float32 interpreter. Gradients come from autodiff (vjp
// with a random cotangent).
//
// Pooling picks values: the forward pass is exact. Its gradient sums at most a few dy values
// per input position (overlapping windows) and resizeGrad a few dozen weighted ones, in
// another order than the interpreter: rtol 1e-5 / atol 1e-6.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Tensor } from "../dsl/index";
import { numel } from "../dsl/index";
import { program } from "./testing/cases";
import { differential, gridF32, rng, uniformF32 } from "./testing/differential";

const GRAD = { rtol: 1e-5, atol: 1e-6 };

interface PoolCase {
  readonly name: string;
  readonly x: readonly [number, number, number, number];
  readonly opts: d.PoolOpts;
}

describe("max pooling and its gradient on the GPU agree with the float32 interpreter", () => {
  it("ceil mode on and off, padding, overlapping windows, and ties (the first maximum in scan order takes the gradient)", async () => {
    const cases: PoolCase[] = [
      // The DeepLab stem pool: (10 + 2 - 3) / 2 = 4.5 rounds up to 5 (6 outputs), the last window half outside.
      { name: "stem", x: [1, 3, 10, 13], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
      { name: "floor", x: [2, 2, 9, 8], opts: { kernel: 3, stride: 2, ceilMode: false } },
      { name: "ceilOdd", x: [1, 3, 7, 9], opts: { kernel: 2, stride: 2, ceilMode: true } },
      { name: "overlap", x: [1, 2, 6, 5], opts: { kernel: 3, stride: 1, padding: 1 } },
      { name: "tiny", x: [1, 5, 1, 2], opts: { kernel: 2, stride: 2, ceilMode: true } },
    ];
    const outputs: Record<string, Tensor> = {};
    const data = new Map<string, Float32Array>();
    const r = rng(41);
    for (const c of cases) {
      const x = d.input(`${c.name}.x`, c.x, "f32") as F32<4>;
      const y = d.maxPool2d(x, c.opts);
      const dy = d.input(`${c.name}.dy`, y.shape, "f32") as F32<4>;
      const [dx] = d.vjp([y], [dy], [x]);
      Object.assign(outputs, { [`${c.name}.y`]: y, [`${c.name}.dx`]: dx! });
      // A coarse grid: windows often hold several equal maxima.
      data.set(`${c.name}.x`, gridF32(numel(c.x), r, -1, 1, 0.5));
      data.set(`${c.name}.dy`, uniformF32(numel(y.shape), r));
    }
    const res = await differential(program(outputs), new Map(), data, (name) => (name.endsWith(".y") ? { rtol: 0, atol: 0 } : GRAD));
    expect(res.mismatches).toEqual([]);
  });
});

describe("the resize adjoint on the GPU agrees with the float32 interpreter", () => {
  it("resizeGrad of upsampling and downsampling resizes, with and without alignCorners, to and from 1x1", async () => {
    const outputs: Record<string, Tensor> = {};
    const data = new Map<string, Float32Array>();
    const r = rng(42);
    const sizes: [string, readonly [number, number, number, number], readonly [number, number]][] = [
      ["up", [1, 3, 5, 7], [13, 11]],
      ["down", [1, 2, 9, 10], [4, 3]],
      ["to1x1", [1, 2, 5, 3], [1, 1]],
      ["from1x1", [2, 1, 1, 1], [4, 5]],
    ];
    for (const alignCorners of [true, false]) {
      for (const [name, shape, size] of sizes) {
        const key = `${name}.${alignCorners ? "ac" : "hp"}`;
        const x = d.input(`${key}.x`, shape, "f32") as F32<4>;
        const y = d.resize(x, size, { alignCorners });
        const dy = d.input(`${key}.dy`, y.shape, "f32") as F32<4>;
        const [dx] = d.vjp([y], [dy], [x]); // resizeGrad(dy)
        outputs[`${key}.dx`] = dx!; // depends on dy only: x is not an input of the program
        data.set(`${key}.dy`, uniformF32(numel(y.shape), r));
      }
    }
    const res = await differential(program(outputs), new Map(), data, GRAD);
    expect(res.mismatches).toEqual([]);
    const templates = res.gpu.compiled.kernels.map((k) => k.anchor);
    expect(templates.filter((t) => t === "resizeGrad")).toHaveLength(8);
  });
});
