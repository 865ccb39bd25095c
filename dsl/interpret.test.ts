// The interpreter against PyTorch 1.13 on the semantics that are easy to get subtly wrong.
// Reference values come from scripts/make_fixtures.py (float64 throughout) and are stored in
// dsl/fixtures/; these tests only read the JSON. Gradients are checked as vector-Jacobian
// products: grad(sum(y * dy)) with the stored dy, through the VJP table.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type F32, type I32, type Pair, type Shape, type Tensor } from "./ir";
import { MissingInputError, evaluate, evaluateScalar } from "./interpret";
import { grad } from "./grad";
import * as op from "./ops";
import * as nn from "./nn";
import * as losses from "./losses";
import { declareModel } from "./params";
import { StateThread } from "./program";
import { poolOutSize } from "./shape";

interface Stored {
  readonly shape: number[];
  readonly data: number[];
}

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as T;
}

/** Float64 fixtures: PyTorch computes in float64 too; only summation order differs. */
const TOL_F64 = 1e-10;
/**
 * Float32 fixtures (resize): the taps agree to the bit, and the interpreter then sums four
 * products in float64 where PyTorch rounds each step to float32: a few ulps, 2^-23 ~ 1.2e-7 each.
 */
const TOL_F32 = 1e-6;

/** Indices where |a - e| > tol (1 + |e|), with the shapes compared first. */
function mismatches(actual: { readonly shape: Shape; readonly data: ArrayLike<number> }, expected: Stored, tol = TOL_F64): string[] {
  if (actual.shape.join(",") !== expected.shape.join(",")) return [`shape [${actual.shape}] != [${expected.shape}]`];
  const out: string[] = [];
  expected.data.forEach((e, i) => {
    const a = actual.data[i]!;
    if (!(Math.abs(a - e) <= tol * (1 + Math.abs(e)))) out.push(`[${i}] ${a} != ${e}`);
  });
  return out.slice(0, 5);
}

const inputOf = (name: string, s: Stored) => op.input(name, s.shape, "f32") as F32<4>;
const pairOf = (v: number[]): Pair => [v[0]!, v[1]!];

/** Evaluates tensors given stored values for the named inputs. */
function run(outputs: readonly Tensor[], feeds: Record<string, Stored>) {
  return evaluate(outputs, Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data])));
}

/** The VJP of `y` at the stored dy, with respect to `wrt`. */
function vjpOf(y: F32, dyName: string, dy: Stored, wrt: readonly Tensor[]): F32[] {
  return grad(op.sum(op.mul(y, op.input(dyName, dy.shape, "f32"))), wrt);
}

describe("maxPool2d matches PyTorch", () => {
  interface Case {
    name: string;
    kernel: number[];
    stride: number[];
    padding: number[];
    ceilMode: boolean;
    x: Stored;
    y: Stored;
    dy: Stored;
    dx: Stored;
  }
  const { cases } = fixture<{ cases: Case[] }>("max_pool.json");

  it.each(cases.map((c) => [c.name, c] as const))("%s: output size, values, and gradient to the first maximum", (_, c) => {
    const x = inputOf("x", c.x);
    const y = op.maxPool2d(x, { kernel: pairOf(c.kernel), stride: pairOf(c.stride), padding: pairOf(c.padding), ceilMode: c.ceilMode });
    const [dx] = vjpOf(y, "dy", c.dy, [x]);
    const [yv, dxv] = run([y, dx!], { x: c.x, dy: c.dy });
    expect(mismatches(yv!, c.y)).toEqual([]);
    expect(mismatches(dxv!, c.dx)).toEqual([]);
  });

  it("poolOutSize drops the window that would start past the input and its left padding", () => {
    // 5 + 2 - 2 = 5 spans ceil(5/2) + 1 = 4 windows, but the 4th would start at 6 >= 5 + 1.
    expect(poolOutSize(5, 2, 2, 1, 1, true)).toBe(3);
    expect(poolOutSize(6, 3, 2, 1, 1, true)).toBe(4);
    expect(poolOutSize(129, 3, 2, 1, 1, true)).toBe(65);
    expect(poolOutSize(7, 3, 2, 0, 1, false)).toBe(3);
  });
});

describe("bilinear resize matches PyTorch's interpolate", () => {
  interface Case {
    name: string;
    size: number[];
    alignCorners: boolean;
    x: Stored;
    y: Stored;
    dy: Stored;
    dx: Stored;
  }
  const { dtype, cases } = fixture<{ dtype: string; cases: Case[] }>("resize.json");

  it("covers both corner conventions, up- and downsampling, and size 1", () => {
    expect(dtype).toBe("float32");
    expect(new Set(cases.map((c) => c.alignCorners))).toEqual(new Set([true, false]));
    expect(cases.some((c) => c.size.every((d) => d === 1))).toBe(true);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s: values and adjoint", (_, c) => {
    const x = inputOf("x", c.x);
    const y = op.resize(x, pairOf(c.size), { alignCorners: c.alignCorners });
    const [dx] = vjpOf(y, "dy", c.dy, [x]);
    const [yv, dxv] = run([y, dx!], { x: c.x, dy: c.dy });
    expect(mismatches(yv!, c.y, TOL_F32)).toEqual([]);
    expect(mismatches(dxv!, c.dx, TOL_F32)).toEqual([]);
  });
});

describe("softmax cross-entropy matches the official CrossEntropy2d", () => {
  interface Case {
    name: string;
    ignoreIndex: number;
    logits: Stored;
    labels: Stored;
    loss: number;
    dlogits: Stored;
  }
  const { cases } = fixture<{ cases: Case[] }>("cross_entropy.json");

  it.each(cases.map((c) => [c.name, c] as const))("%s: loss and gradient", (_, c) => {
    const logits = op.input("logits", c.logits.shape, "f32") as F32;
    const labels = op.input("labels", c.labels.shape, "i32") as I32;
    const loss = losses.crossEntropy(logits, labels, c.ignoreIndex);
    const [dlogits] = grad(loss, [logits]);
    const [lv, dv] = run([loss, dlogits!], { logits: c.logits, labels: c.labels });
    expect(mismatches(lv!, { shape: [], data: [c.loss] })).toEqual([]);
    expect(mismatches(dv!, c.dlogits)).toEqual([]);
  });

  it("is exactly 0, not NaN, when every label is ignored", () => {
    const c = cases.find((k) => k.labels.data.every((l) => l === k.ignoreIndex))!;
    const logits = op.input("logits", c.logits.shape, "f32") as F32;
    const loss = losses.crossEntropy(logits, op.input("labels", c.labels.shape, "i32") as I32, c.ignoreIndex);
    expect(evaluateScalar(loss, { logits: c.logits.data, labels: c.labels.data })).toBe(0);
  });
});

describe("batch norm in train mode matches nn.BatchNorm2d", () => {
  interface Fixture {
    eps: number;
    momentum: number;
    initial: Record<"weight" | "bias" | "running_mean" | "running_var", Stored>;
    x1: Stored;
    y1: Stored;
    dy1: Stored;
    dx1: Stored;
    dweight: Stored;
    dbias: Stored;
    after1: Record<"running_mean" | "running_var", Stored>;
    x2: Stored;
    y2: Stored;
    after2: Record<"running_mean" | "running_var", Stored>;
    yEval: Stored;
  }
  const fx = fixture<Fixture>("batch_norm.json");
  const c = fx.initial.weight.shape[0]!;

  /** A source pass then a target pass through one BN layer, threading the running statistics. */
  function twoPasses() {
    const bn = declareModel("bn", nn.batchNormSpec(c)).p;
    const thread = new StateThread();
    const x1 = inputOf("x1", fx.x1);
    const x2 = inputOf("x2", fx.x2);
    const opts = { mode: "train", eps: fx.eps, momentum: fx.momentum, thread } as const;
    const y1 = nn.batchNorm2d(x1, bn, opts);
    const after1 = [thread.read(bn.running_mean), thread.read(bn.running_var)];
    const y2 = nn.batchNorm2d(x2, bn, opts);
    const after2 = [thread.read(bn.running_mean), thread.read(bn.running_var)];
    const yEval = nn.batchNorm2d(x2, bn, { ...opts, mode: "eval" });
    const feeds = {
      x1: fx.x1,
      x2: fx.x2,
      dy1: fx.dy1,
      "bn/weight": fx.initial.weight,
      "bn/bias": fx.initial.bias,
      "bn/running_mean": fx.initial.running_mean,
      "bn/running_var": fx.initial.running_var,
    };
    return { bn, thread, x1, y1, y2, yEval, after1, after2, feeds };
  }

  it("normalises with the batch's biased variance", () => {
    const { y1, y2, feeds } = twoPasses();
    const [v1, v2] = run([y1, y2], feeds);
    expect(mismatches(v1!, fx.y1)).toEqual([]);
    expect(mismatches(v2!, fx.y2)).toEqual([]);
  });

  it("updates running statistics with momentum and the unbiased variance, pass after pass", () => {
    const { after1, after2, feeds } = twoPasses();
    const [m1, v1, m2, v2] = run([...after1, ...after2] as Tensor[], feeds);
    expect(mismatches(m1!, fx.after1.running_mean)).toEqual([]);
    expect(mismatches(v1!, fx.after1.running_var)).toEqual([]);
    expect(mismatches(m2!, fx.after2.running_mean)).toEqual([]);
    expect(mismatches(v2!, fx.after2.running_var)).toEqual([]);
  });

  it("reports both passes' statistics as the phase's updates (the last write wins)", () => {
    const { thread, after2 } = twoPasses();
    expect(Object.keys(thread.updates()).sort()).toEqual(["bn/running_mean", "bn/running_var"]);
    expect(thread.updates()["bn/running_var"]).toBe(after2[1]);
  });

  it("eval mode uses the updated running statistics", () => {
    const { yEval, feeds } = twoPasses();
    expect(mismatches(run([yEval], feeds)[0]!, fx.yEval)).toEqual([]);
  });

  it("gradients of input, weight and bias match autograd (statistics are not differentiated)", () => {
    const { bn, x1, y1, feeds } = twoPasses();
    const grads = vjpOf(y1, "dy1", fx.dy1, [x1, bn.weight, bn.bias]);
    const [dx, dw, db] = run(grads, feeds);
    expect(mismatches(dx!, fx.dx1)).toEqual([]);
    expect(mismatches(dw!, fx.dweight)).toEqual([]);
    expect(mismatches(db!, fx.dbias)).toEqual([]);
  });
});

describe("conv2d and its input and weight gradients match PyTorch", () => {
  interface Case {
    name: string;
    stride: number[];
    padding: number[];
    dilation: number[];
    x: Stored;
    w: Stored;
    b?: Stored;
    y: Stored;
    dy: Stored;
    dx: Stored;
    dw: Stored;
    db?: Stored;
  }
  const { cases } = fixture<{ cases: Case[] }>("conv2d.json");

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const x = inputOf("x", c.x);
    const w = inputOf("w", c.w);
    const b = c.b ? (op.input("b", c.b.shape, "f32") as F32<1>) : undefined;
    const y = op.conv2d(x, w, b, { stride: pairOf(c.stride), padding: pairOf(c.padding), dilation: pairOf(c.dilation) });
    const grads = vjpOf(y, "dy", c.dy, b ? [x, w, b] : [x, w]);
    const values = run([y, ...grads], { x: c.x, w: c.w, dy: c.dy, ...(c.b ? { b: c.b } : {}) });
    expect(mismatches(values[0]!, c.y)).toEqual([]);
    expect(mismatches(values[1]!, c.dx)).toEqual([]);
    expect(mismatches(values[2]!, c.dw)).toEqual([]);
    if (c.db) expect(mismatches(values[3]!, c.db)).toEqual([]);
  });
});

describe("softmax and log-softmax match PyTorch", () => {
  interface Case {
    name: string;
    op: "softmax" | "logSoftmax";
    axis: number;
    x: Stored;
    y: Stored;
    dy: Stored;
    dx: Stored;
  }
  const { cases } = fixture<{ cases: Case[] }>("softmax.json");

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const x = op.input("x", c.x.shape, "f32") as F32;
    const y = c.op === "softmax" ? op.softmax(x, c.axis) : op.logSoftmax(x, c.axis);
    const [dx] = vjpOf(y, "dy", c.dy, [x]);
    const [yv, dxv] = run([y, dx!], { x: c.x, dy: c.dy });
    expect(mismatches(yv!, c.y)).toEqual([]);
    expect(mismatches(dxv!, c.dx)).toEqual([]);
  });
});

describe("BCE-with-logits and MSE match PyTorch", () => {
  interface Case {
    name: string;
    loss: "bceWithLogits" | "mse";
    x: Stored;
    target: Stored | number;
    value: number;
    dx: Stored;
  }
  const { cases } = fixture<{ cases: Case[] }>("losses.json");

  it.each(cases.map((c) => [c.name, c] as const))("%s (logits up to 80 stay finite)", (_, c) => {
    const x = op.input("x", c.x.shape, "f32") as F32;
    const target = typeof c.target === "number" ? c.target : (op.input("z", c.target.shape, "f32") as F32);
    const loss = c.loss === "bceWithLogits" ? losses.bceWithLogits(x, target) : losses.mse(x, target);
    const [dx] = grad(loss, [x]);
    const [lv, dxv] = run([loss, dx!], { x: c.x, ...(typeof c.target === "number" ? {} : { z: c.target }) });
    expect(mismatches(lv!, { shape: [], data: [c.value] })).toEqual([]);
    expect(mismatches(dxv!, c.dx)).toEqual([]);
  });
});

describe("interpreter mechanics", () => {
  it("rounds every stored f32 value to single precision in f32 mode, not in f64 mode", () => {
    const x = op.input("x", [1], "f32");
    const y = op.add(x, 1e-8);
    expect(evaluate([y], { x: [1] }, "f32")[0]!.data[0]).toBe(1);
    expect(evaluate([y], { x: [1] }, "f64")[0]!.data[0]).toBe(1 + 1e-8);
  });

  it("wraps i32 arithmetic like two's complement", () => {
    const i = op.input("i", [1], "i32");
    expect(evaluate([op.add(i, 1)], { i: [2147483647] })[0]!.data[0]).toBe(-2147483648);
  });

  it("casts f32 to i32 toward zero and bool to 0/1", () => {
    const x = op.input("x", [3], "f32");
    expect([...evaluate([op.cast(x, "i32")], { x: [-1.7, 1.7, 0.2] })[0]!.data]).toEqual([-1, 1, 0]);
    expect([...evaluate([op.cast(op.gt(x, 0), "f32")], { x: [-1.7, 1.7, 0.2] })[0]!.data]).toEqual([0, 1, 1]);
  });

  it("argmax breaks ties toward the first index", () => {
    const x = op.input("x", [2, 3], "f32");
    expect([...evaluate([op.argmax(x, 1)], { x: [1, 3, 3, 2, 2, 0] })[0]!.data]).toEqual([1, 0]);
  });

  it("iota counts along its axis", () => {
    expect([...evaluate([op.iota([2, 3], 1)], {})[0]!.data]).toEqual([0, 1, 2, 0, 1, 2]);
    expect([...evaluate([op.iota([2, 3], 0)], {})[0]!.data]).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it("names a missing input and its role", () => {
    const w = op.input("m/w", [2, 2], "f32", "param");
    expect(() => evaluate([op.neg(w)], {})).toThrow(MissingInputError);
    expect(() => evaluate([op.neg(w)], {})).toThrow('no value fed for param "m/w" of shape [2,2]');
  });

  it("rejects a feed of the wrong length", () => {
    const x = op.input("x", [2, 2], "f32");
    expect(() => evaluate([op.neg(x)], { x: [1, 2, 3] })).toThrow(/expects 4 values .* got 3/);
  });

  it("reads both Map and record feeds", () => {
    const x = op.input("x", [2], "f32");
    const y = op.sum(x);
    expect(evaluateScalar(y, new Map([["x", [1, 2]]]))).toBe(3);
    expect(evaluateScalar(y, { x: [1, 2] })).toBe(3);
  });
});
