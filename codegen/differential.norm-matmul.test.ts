// Differential tests of batch normalisation (eval mode: an inlined per-channel affine map;
// train mode: canonicalised into batch-statistics reductions and an affine map) with their
// gradients, and of matmul with its gradients, against the float32 interpreter.
//
// Tolerance rtol 1e-4 / atol 1e-5: BN's statistics and gradients are sums over N*H*W (<= 42)
// values and matmul's over at most 70 (K, or M for the weight gradient), far from where f32
// accumulation error reaches 1e-5;
// BN train's gradient subtracts means of products, which loses a few bits to cancellation.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Tensor } from "../dsl/index";
import { numel } from "../dsl/index";
import { program } from "./testing/cases";
import { differential, rng, uniformF32, variantShaders } from "./testing/differential";

const TOL = { rtol: 1e-4, atol: 1e-5 };

/** Inputs named `name` of `shape` with uniform data in [lo, hi). */
function inputs(r: () => number, data: Map<string, Float32Array>, specs: readonly (readonly [string, readonly number[], number?, number?])[]): F32[] {
  return specs.map(([name, shape, lo, hi]) => {
    data.set(name, uniformF32(numel(shape), r, lo ?? -1, hi ?? 1));
    return d.input(name, shape, "f32") as F32;
  });
}

describe("batch norm on the GPU agrees with the float32 interpreter", () => {
  it("eval mode and its gradients with respect to the input, the affine parameters and the running statistics", async () => {
    const r = rng(51);
    const data = new Map<string, Float32Array>();
    const [x, w, b, m, v, dy] = inputs(r, data, [
      ["x", [2, 5, 3, 7]],
      ["w", [5]],
      ["b", [5]],
      ["m", [5]],
      ["v", [5], 0.2, 2],
      ["dy", [2, 5, 3, 7]],
    ]) as [F32<4>, F32<1>, F32<1>, F32<1>, F32<1>, F32<4>];
    const y = d.batchNormEval(x, w, b, m, v, 1e-5);
    const [dx, dw, db, dm, dv] = d.vjp([y], [dy], [x, w, b, m, v]);
    const res = await differential(program({ y, dx: dx!, dw: dw!, db: db!, dm: dm!, dv: dv! }), new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
  });

  // "rows" and "ragged" have channel rows of at least 64 pixels, so their pointwise kernels take
  // the channel-row layout (per-channel values hoisted out of the loop over a row's pixels):
  // 117 pixels is one chunk of two per lane, 1200 three chunks of 8 per lane, the last one ragged.
  it("train mode (batch statistics) and its gradients, including the smallest batch (two values per channel) and long channel rows", async () => {
    const r = rng(52);
    const data = new Map<string, Float32Array>();
    const outputs: Record<string, Tensor> = {};
    for (const [name, shape] of [["big", [2, 5, 3, 7]], ["tiny", [1, 3, 1, 2]], ["rows", [2, 5, 9, 13]], ["ragged", [1, 3, 40, 30]]] as const) {
      const [x, w, b, dy] = inputs(r, data, [
        [`${name}.x`, shape],
        [`${name}.w`, [shape[1]]],
        [`${name}.b`, [shape[1]]],
        [`${name}.dy`, shape],
      ]) as [F32<4>, F32<1>, F32<1>, F32<4>];
      const y = d.batchNormTrain(x, w, b, 1e-5);
      const [dx, dw, db] = d.vjp([y], [dy], [x, w, b]);
      Object.assign(outputs, { [`${name}.y`]: y, [`${name}.dx`]: dx!, [`${name}.dw`]: dw!, [`${name}.db`]: db! });
    }
    const res = await differential(program(outputs), new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
  });
});

describe("matmul on the GPU agrees with the float32 interpreter", () => {
  it("products whose sizes are not multiples of the 4x4 tile or of the CPU variant's row tiles, a 1x1 result, and both gradients", async () => {
    const r = rng(53);
    const data = new Map<string, Float32Array>();
    const outputs: Record<string, Tensor> = {};
    // "tall" and "tallodd" span three CPU tiles of 32 rows, the last one ragged; "tall" takes the
    // vec4 loads (K and N multiples of 4), "tallodd" the scalar ones and a K tail.
    for (const [name, m, k, n] of [["odd", 5, 13, 7], ["dot", 1, 6, 1], ["tall", 70, 12, 36], ["tallodd", 67, 13, 9]] as const) {
      const [a, b, dy] = inputs(r, data, [
        [`${name}.a`, [m, k]],
        [`${name}.b`, [k, n]],
        [`${name}.dy`, [m, n]],
      ]) as [F32<2>, F32<2>, F32<2>];
      const y = d.matmul(a, b);
      const [da, db] = d.vjp([y], [dy], [a, b]);
      Object.assign(outputs, { [`${name}.y`]: y, [`${name}.da`]: da!, [`${name}.db`]: db! });
    }
    const res = await differential(program(outputs), new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
  });

  it("a product with enough workgroups for the CPU variant's 64-row tile, the last tile ragged", async () => {
    // 130 rows: tiles of 64, 64 and 2; 704 columns: 22 subgroups of 32, so 3 * 22 >= 64 workgroups.
    const data = new Map<string, Float32Array>();
    const [a, b] = inputs(rng(59), data, [
      ["wide.a", [130, 12]],
      ["wide.b", [12, 704]],
    ]) as [F32<2>, F32<2>];
    const res = await differential(program({ "wide.y": d.matmul(a, b) }), new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
    const cpu = variantShaders(res.gpu.compiled, "cpu");
    expect(cpu.filter((w) => w.includes("// 64 rows x 32 columns per subgroup"))).toHaveLength(1);
  });
});
