// Differential tests of the views (reshape, permute, broadcastTo, slice, pad, concat, resize):
// codegen never stores a view, it rewrites the index of whatever the view reads, so each test
// composes views of buffers, of inlined values and of other kernels' results, and stacks them
// into one output (one pointwise kernel). Views move values without arithmetic: they must be
// exact, except resize (a bilinear blend: rtol 1e-4, atol 1e-5, a few f32 roundings).

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, I32 } from "../dsl/index";
import { program, stack, stackMismatches } from "./testing/cases";
import { differential, rng, uniformF32, uniformInts } from "./testing/differential";

const EXACT = { rtol: 0, atol: 0 };
const ULPS = { rtol: 5e-7, atol: 0 };
const RESIZE = { rtol: 1e-4, atol: 1e-5 };
const X = [2, 3, 5, 7] as const;
const NX = 2 * 3 * 5 * 7;

describe("views on the GPU agree with the float32 interpreter", () => {
  it("reshape, permute, broadcastTo, slice, pad and concat of buffers and of inlined values", async () => {
    const x = d.input("x", X, "f32") as F32<4>;
    const y = d.input("y", [2, 4, 5, 7], "f32") as F32<4>;
    const row = d.input("row", [1, 3, 1, 7], "f32") as F32<4>;
    const vec = d.input("vec", [7], "f32") as F32<1>;
    const e = d.exp(x); // inlined: views must rewrite the index of an expression too
    const s = stack([
      { label: "permute", value: d.permute(x, [3, 1, 0, 2]) },
      { label: "reshape then permute", value: d.permute(d.reshape(x, [6, 5, 7]), [2, 0, 1]) },
      { label: "permute then reshape (non-contiguous)", value: d.reshape(d.permute(x, [0, 2, 1, 3]), [10, 21]) },
      { label: "broadcastTo over axes 0 and 2", value: d.broadcastTo(row, X) },
      { label: "broadcastTo of a lower-rank vector", value: d.broadcastTo(vec, X) },
      { label: "slice", value: d.slice(x, [0, 1, 1, 2], [2, 3, 4, 7]) },
      { label: "slice with negative indices", value: d.slice(x, [-1, 0, -3, -4], [2, 2, -1, -1]) },
      { label: "pad with a value", value: d.pad(x, [[0, 0], [1, 0], [2, 3], [0, 1]], -1.5) },
      { label: "concat along axis 1", value: d.concat([x, y], 1) },
      { label: "concat of three along the last axis", value: d.concat([x, d.neg(x), d.slice(x, [0, 0, 0, 0], [2, 3, 5, 2])], 3) },
      // exp itself may differ by an ulp or two (WGSL's exp is not correctly rounded).
      { label: "pad of an inlined value", value: d.pad(e, [[1, 1], [0, 0], [0, 0], [3, 0]], 0.25), tol: ULPS },
      { label: "slice of a permuted inlined value", value: d.slice(d.permute(e, [1, 0, 3, 2]), [1, 0, 2, 1], [3, 2, 7, 4]), tol: ULPS },
      { label: "concat of a padded and a broadcast value", value: d.concat([d.pad(row, [[0, 1], [0, 0], [2, 2], [0, 0]]), d.broadcastTo(row, [2, 3, 1, 7])], 2) },
    ]);
    const r = rng(21);
    const data = new Map([
      ["x", uniformF32(NX, r)],
      ["y", uniformF32(2 * 4 * 5 * 7, r)],
      ["row", uniformF32(21, r)],
      ["vec", uniformF32(7, r)],
    ]);
    const res = await differential(program({ v: s.tensor }), new Map(), data, EXACT);
    expect(res.gpu.compiled.module.phases[0]!.dispatches).toHaveLength(1);
    expect(stackMismatches(s, res.gpu.outputs.get("v"), res.reference.outputs.get("v"), EXACT)).toEqual([]);
  });

  it("views of i32 and bool values, and views of another kernel's stored result", async () => {
    const k = d.input("k", [3, 1, 5], "i32") as I32<3>;
    const x = d.input("x", X, "f32") as F32<4>;
    const ints = stack([
      { label: "permute i32", value: d.permute(k, [2, 0, 1]) },
      { label: "pad i32 with 7", value: d.pad(k, [[1, 0], [0, 2], [0, 0]], 7) },
      { label: "broadcastTo i32", value: d.broadcastTo(k, [3, 4, 5]) },
      { label: "concat of bool casts", value: d.cast(d.concat([d.gt(k, 0), d.lt(k, -1)], 1), "i32") },
    ]);
    const total = d.sum(x, [1, 3], { keepdims: true }); // its own kernel: [2,1,5,1] in a buffer
    const viewsOfStored = stack([
      { label: "permute of a stored reduction", value: d.permute(total, [2, 0, 3, 1]) },
      { label: "broadcast of a stored reduction", value: d.broadcastTo(total, [2, 3, 5, 4]) },
      { label: "pad of a stored reduction", value: d.pad(total, [[0, 0], [1, 1], [0, 2], [1, 0]], 3) },
    ]);
    const r = rng(22);
    const data = new Map<string, ArrayLike<number>>([["k", uniformInts(15, r, -3, 3)], ["x", uniformF32(NX, r)]]);
    // The reduction sums 21 values: f32 rounding differs from the interpreter's f64 sum.
    const tol = { rtol: 1e-5, atol: 1e-6 };
    const res = await differential(program({ ints: ints.tensor, stored: viewsOfStored.tensor }), new Map(), data, tol);
    expect([
      ...stackMismatches(ints, res.gpu.outputs.get("ints"), res.reference.outputs.get("ints"), EXACT),
      ...stackMismatches(viewsOfStored, res.gpu.outputs.get("stored"), res.reference.outputs.get("stored"), tol),
    ]).toEqual([]);
  });

  it("bilinear resize up and down, with and without alignCorners, to and from 1x1", async () => {
    const x = d.input("x", X, "f32") as F32<4>;
    const dot = d.input("dot", [1, 2, 1, 1], "f32") as F32<4>;
    const parts = [true, false].flatMap((alignCorners) => {
      const tag = alignCorners ? "alignCorners" : "half-pixel";
      const up = (t: F32<4>, size: readonly [number, number]) => d.resize(t, size, { alignCorners });
      return [
        { label: `${tag}: up 5x7 -> 13x11`, value: up(x, [13, 11]) },
        { label: `${tag}: down 5x7 -> 3x4`, value: up(x, [3, 4]) },
        { label: `${tag}: mixed 5x7 -> 8x2`, value: up(x, [8, 2]) },
        { label: `${tag}: to 1x1`, value: up(x, [1, 1]) },
        { label: `${tag}: from 1x1 to 4x5`, value: up(dot, [4, 5]) },
        { label: `${tag}: resize of an inlined relu`, value: up(d.relu(x), [9, 10]) },
      ];
    });
    const s = stack(parts);
    const r = rng(23);
    const data = new Map([["x", uniformF32(NX, r)], ["dot", uniformF32(2, r)]]);
    const res = await differential(program({ v: s.tensor }), new Map(), data, RESIZE);
    expect(stackMismatches(s, res.gpu.outputs.get("v"), res.reference.outputs.get("v"), RESIZE)).toEqual([]);
  });
});
