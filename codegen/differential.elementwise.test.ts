// Differential tests of the elementwise ops: generated WGSL on lavapipe against the float32
// reference interpreter, on random inputs of an awkward shape (3x5x7: primes, nothing a
// multiple of 4). Each test stacks many ops into one output, so one pointwise kernel (one
// shader to compile) checks all of them; each op is still compared, and reported, alone.
//
// Tolerance: rtol 1e-4, atol 1e-5. Both sides store f32; an op is one or a few f32
// operations on the GPU and one f64 operation rounded to f32 in the interpreter, so they
// differ by a few ulps (WGSL allows exp/log/pow/tanh errors of a few ulps, 1 ulp = 1.2e-7
// relative). The absolute floor covers results near 0 (tanh, log near 1).

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { Bool, F32, I32, Tensor } from "../dsl/index";
import { program, stack, stackMismatches } from "./testing/cases";
import { differential, gridF32, rng, uniformF32, uniformInts } from "./testing/differential";

const SHAPE = [3, 5, 7] as const;
const N = 3 * 5 * 7;
const TOL = { rtol: 1e-4, atol: 1e-5 };

const f32In = (name: string, shape: readonly number[] = SHAPE) => d.input(name, shape, "f32") as F32;
const i32In = (name: string, shape: readonly number[] = SHAPE) => d.input(name, shape, "i32") as I32;
const boolIn = (name: string, shape: readonly number[] = SHAPE) => d.input(name, shape, "bool") as Bool;

describe("elementwise ops on the GPU agree with the float32 interpreter", () => {
  it("every f32 unary op (one kernel computes them all)", async () => {
    const x = f32In("x");
    const g = f32In("g"); // on a grid of 0.25 in [-2, 2]: exact zeros for sign and relu
    const s = stack([
      { label: "neg", value: d.neg(x) },
      { label: "abs", value: d.abs(x) },
      { label: "sign", value: d.sign(g) },
      { label: "exp", value: d.exp(d.mul(x, 3)) },
      { label: "log", value: d.log(d.add(d.abs(x), 0.1)) },
      { label: "log1p", value: d.log1p(d.mul(x, 0.9)) },
      // Tiny arguments: only absolute accuracy is asked for, because WGSL's log is only
      // absolutely accurate (2^-21) near 1, which the log1p helper's formula relies on.
      { label: "log1p of tiny values", value: d.log1p(d.mul(x, 1e-6)), tol: { rtol: 0, atol: 1e-6 } },
      { label: "sqrt", value: d.sqrt(d.abs(x)) },
      { label: "rsqrt", value: d.rsqrt(d.add(d.abs(x), 0.1)) },
      { label: "relu", value: d.relu(g) },
      { label: "leakyRelu", value: d.leakyRelu(g, 0.2) },
      { label: "sigmoid", value: d.sigmoid(d.mul(x, 6)) },
      { label: "tanh", value: d.tanh(d.mul(x, 3)) },
      // Both branches of the erf helper (|x| < 0.5 and above), and GELU's tails.
      { label: "erf", value: d.erf(d.mul(x, 3)) },
      { label: "gelu", value: d.gelu(d.mul(x, 5)) },
      { label: "stopGradient", value: d.stopGradient(x) },
    ]);
    const r = rng(11);
    const data = new Map([["x", uniformF32(N, r)], ["g", gridF32(N, r, -2, 2, 0.25)]]);
    const res = await differential(program({ y: s.tensor }), new Map(), data, TOL);
    expect(res.gpu.compiled.module.phases[0]!.dispatches).toHaveLength(1);
    expect(stackMismatches(s, res.gpu.outputs.get("y"), res.reference.outputs.get("y"), TOL)).toEqual([]);
  });

  it("every f32 binary op, with broadcast operands and exact ties", async () => {
    const a = f32In("a");
    const b = f32In("b");
    const row = f32In("row", [1, 5, 1]); // broadcast along axes 0 and 2
    const ga = f32In("ga");
    const gb = f32In("gb"); // ga and gb on a coarse grid: many equal pairs for max/min
    const pos = d.add(d.abs(a), 0.5);
    const s = stack([
      { label: "add", value: d.add(a, b) },
      { label: "add broadcast", value: d.add(a, row) },
      { label: "sub", value: d.sub(a, row) },
      { label: "mul", value: d.mul(a, b) },
      { label: "mul by a scalar", value: d.mul(a, 2.5) },
      { label: "div", value: d.div(a, d.add(d.abs(b), 0.25)) },
      { label: "div of a scalar", value: d.div(1, pos) },
      { label: "pow", value: d.pow(pos, d.mul(b, 3)) },
      { label: "pow by a scalar", value: d.pow(pos, 2) },
      { label: "maximum", value: d.maximum(ga, gb) },
      { label: "minimum", value: d.minimum(ga, gb) },
      { label: "maximum broadcast", value: d.maximum(a, row) },
    ]);
    const r = rng(12);
    const data = new Map([
      ["a", uniformF32(N, r)],
      ["b", uniformF32(N, r)],
      ["row", uniformF32(5, r)],
      ["ga", gridF32(N, r, -1, 1, 0.5)],
      ["gb", gridF32(N, r, -1, 1, 0.5)],
    ]);
    const res = await differential(program({ y: s.tensor }), new Map(), data, TOL);
    expect(stackMismatches(s, res.gpu.outputs.get("y"), res.reference.outputs.get("y"), TOL)).toEqual([]);
  });

  it("comparisons of f32 and i32 values and the boolean ops give the interpreter's booleans", async () => {
    const ga = f32In("ga");
    const gb = f32In("gb");
    const ia = i32In("ia");
    const ib = i32In("ib");
    const m = boolIn("m");
    const parts: { label: string; value: Tensor }[] = [];
    const cmps = [["lt", d.lt], ["le", d.le], ["gt", d.gt], ["ge", d.ge], ["eq", d.eq], ["ne", d.ne]] as const;
    for (const [name, f] of cmps) {
      parts.push({ label: `${name} f32`, value: f(ga, gb) });
      parts.push({ label: `${name} i32`, value: f(ia, ib) });
    }
    parts.push({ label: "compare with a scalar", value: d.ge(ga, 0) });
    parts.push({ label: "and", value: d.and(d.lt(ga, gb), m) });
    parts.push({ label: "or", value: d.or(d.eq(ia, ib), m) });
    parts.push({ label: "not", value: d.not(m) });
    const s = stack(parts);
    const r = rng(13);
    const data = new Map<string, ArrayLike<number>>([
      ["ga", gridF32(N, r, -1, 1, 0.5)],
      ["gb", gridF32(N, r, -1, 1, 0.5)],
      ["ia", uniformInts(N, r, -2, 2)],
      ["ib", uniformInts(N, r, -2, 2)],
      ["m", uniformInts(N, r, 0, 1)],
    ]);
    const res = await differential(program({ y: s.tensor }), new Map(), data, { rtol: 0, atol: 0 });
    expect(stackMismatches(s, res.gpu.outputs.get("y"), res.reference.outputs.get("y"), { rtol: 0, atol: 0 })).toEqual([]);
  });

  it("i32 arithmetic, iota and where on i32 values are exact", async () => {
    const ia = i32In("ia");
    const ib = i32In("ib");
    const m = boolIn("m");
    const s = stack([
      { label: "add", value: d.add(ia, ib) },
      { label: "sub", value: d.sub(ia, ib) },
      { label: "mul", value: d.mul(ia, ib) },
      { label: "maximum", value: d.maximum(ia, ib) },
      { label: "minimum", value: d.minimum(ia, ib) },
      { label: "neg", value: d.neg(ia) },
      { label: "abs", value: d.abs(ia) },
      { label: "sign", value: d.sign(ia) },
      { label: "iota axis 0", value: d.iota(SHAPE, 0) },
      { label: "iota axis 2", value: d.iota(SHAPE, 2) },
      { label: "where i32", value: d.where(m, ia, ib) },
      { label: "where i32 with a scalar", value: d.where(m, ia, -7) },
    ]);
    const r = rng(14);
    const data = new Map<string, ArrayLike<number>>([
      ["ia", uniformInts(N, r, -1000, 1000)],
      ["ib", uniformInts(N, r, -1000, 1000)],
      ["m", uniformInts(N, r, 0, 1)],
    ]);
    const exact = { rtol: 0, atol: 0 };
    const res = await differential(program({ y: s.tensor }), new Map(), data, exact);
    expect(stackMismatches(s, res.gpu.outputs.get("y"), res.reference.outputs.get("y"), exact)).toEqual([]);
  });

  it("casts between f32, i32 and bool (f32 -> i32 truncates toward zero), and where on f32", async () => {
    const x = f32In("x"); // in [-3, 3): negative values truncate up
    const g = f32In("g"); // on a grid: exact zeros become false
    const ia = i32In("ia");
    const m = boolIn("m");
    const asF32 = stack([
      { label: "i32 -> f32", value: d.cast(ia, "f32") },
      { label: "bool -> f32", value: d.cast(m, "f32") },
      { label: "where f32", value: d.where(m, x, g) },
      { label: "where f32 with a scalar", value: d.where(d.gt(x, 0), x, 0.5) },
    ]);
    const asI32 = stack([
      { label: "f32 -> i32", value: d.cast(x, "i32") },
      { label: "bool -> i32", value: d.cast(m, "i32") },
    ]);
    const asBool = stack([
      { label: "f32 -> bool", value: d.cast(g, "bool") },
      { label: "i32 -> bool", value: d.cast(ia, "bool") },
    ]);
    const r = rng(15);
    const data = new Map<string, ArrayLike<number>>([
      ["x", uniformF32(N, r, -3, 3)],
      ["g", gridF32(N, r, -1, 1, 0.5)],
      ["ia", uniformInts(N, r, -2, 2)],
      ["m", uniformInts(N, r, 0, 1)],
    ]);
    const res = await differential(program({ f: asF32.tensor, i: asI32.tensor, b: asBool.tensor }), new Map(), data, TOL);
    const exact = { rtol: 0, atol: 0 };
    expect([
      ...stackMismatches(asF32, res.gpu.outputs.get("f"), res.reference.outputs.get("f"), exact),
      ...stackMismatches(asI32, res.gpu.outputs.get("i"), res.reference.outputs.get("i"), exact),
      ...stackMismatches(asBool, res.gpu.outputs.get("b"), res.reference.outputs.get("b"), exact),
    ]).toEqual([]);
  });

  it("i32 and bool values stored in buffers by one kernel are read back by another", async () => {
    const x = f32In("x");
    const mask = d.gt(x, 0); // bool root: stored as u32 0/1
    const bins = d.cast(d.mul(x, 4), "i32"); // i32 root
    const m = boolIn("m"); // a bool data input, written as u32 words
    // Reads both stored values (and the bool input) from their buffers.
    const y = d.where(d.and(mask, m), d.cast(bins, "f32"), d.mul(x, 10));
    const p = program({ mask, bins, y });
    const r = rng(16);
    const data = new Map<string, ArrayLike<number>>([["x", uniformF32(N, r, -2, 2)], ["m", uniformInts(N, r, 0, 1)]]);
    const res = await differential(p, new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
    // One kernel per root: y's kernel loads mask and bins instead of recomputing them.
    const dispatches = res.gpu.compiled.module.phases[0]!.dispatches;
    // mask and bins bind x and their result; y binds x, m, mask, bins and its result.
    expect(dispatches.map((k) => k.bindings.length).sort()).toEqual([2, 2, 5]);
  });

  it("large pointwise kernels take 8 elements per invocation, the last block ragged", async () => {
    const n = 7 * 5003;
    const x = d.input("x", [7, 5003], "f32") as F32<2>;
    const y = d.sub(d.mul(x, 3), d.exp(x));
    const data = new Map([["x", uniformF32(n, rng(5))]]);
    const res = await differential(program({ y }), new Map(), data, TOL);
    // The template's text of the use (its header says how many elements an invocation takes).
    const wgsl = res.gpu.compiled.kernels[0]!.stage.wgsl;
    expect(wgsl).toContain("(8 per invocation)");
    expect(res.mismatches).toEqual([]);
  });

  it("a kernel with more than 32768 workgroups (over 2M invocations) folds its grid into two dimensions", async () => {
    // A reduction over a short last axis: one invocation per output, 2105302 outputs, 32896
    // workgroups of 64. (Large pointwise kernels take 8 elements per invocation.)
    const n = 2 * 1031 * 1021 * 2;
    const x = d.input("x", [2, 1031, 1021, 2], "f32") as F32<4>;
    const y = d.sum(d.sub(d.mul(x, 3), 1), [3]);
    const data = new Map([["x", uniformF32(n, rng(17))]]);
    const res = await differential(program({ y }), new Map(), data, TOL);
    expect(res.gpu.compiled.module.phases[0]!.dispatches[0]!.variants.every((v) => v.workgroups[1] > 1)).toBe(true);
    expect(res.mismatches).toEqual([]);
  });
});
