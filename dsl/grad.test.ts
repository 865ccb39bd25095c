// Reverse-mode autodiff as a graph transformation: what it accumulates, what it blocks, and
// which nodes it builds. Derivative values of each op are checked by gradcheck.test.ts; these
// tests cover the walk over the graph.

import { describe, expect, it } from "vitest";
import { type F32, type I32, type OpName, type Tensor, topoSort } from "./ir";
import { evaluate } from "./interpret";
import { VJP, dependsOn, grad, isDifferentiable, vjp } from "./grad";
import * as op from "./ops";

const f32 = (name: string, shape: readonly number[]) => op.input(name, shape, "f32") as F32;
const values = (ts: readonly Tensor[], feeds: Record<string, number[]>) => evaluate(ts, feeds).map((v) => [...v.data]);
const opsOf = (ts: readonly Tensor[]): Set<OpName> => new Set(topoSort(ts).map((t) => t.node.op));

describe("grad accumulates and blocks cotangents", () => {
  it("sums the cotangents of a value used several times (fan-out)", () => {
    // L = sum(x*x + 3x + exp(x)): dL/dx = 2x + 3 + e^x, x reaching the loss along four edges.
    const x = f32("x", [3]);
    const loss = op.sum(op.add(op.add(op.mul(x, x), op.mul(x, 3)), op.exp(x)));
    const [dx] = values(grad(loss, [x]), { x: [0, 1, -2] });
    [0, 1, -2].forEach((v, i) => expect(dx![i]).toBeCloseTo(2 * v + 3 + Math.exp(v), 12));
  });

  it("sums over a broadcast: a bias added to every pixel gets the sum of their cotangents", () => {
    const x = f32("x", [2, 3]);
    const b = f32("b", [3]);
    const loss = op.sum(op.mul(op.add(x, b), f32("r", [2, 3])));
    const [db] = values(grad(loss, [b]), { x: [0, 0, 0, 0, 0, 0], b: [0, 0, 0], r: [1, 2, 3, 10, 20, 30] });
    expect(db).toEqual([11, 22, 33]);
  });

  it("stopGradient blocks: d(x * sg(x))/dx = sg(x), not 2x", () => {
    const x = f32("x", [2]);
    const loss = op.sum(op.mul(x, op.stopGradient(x)));
    expect(values(grad(loss, [x]), { x: [3, -4] })[0]).toEqual([3, -4]);
  });

  it("stopGradient on the only path leaves a zero gradient that reads no input", () => {
    const x = f32("x", [2]);
    const [dx] = grad(op.sum(op.exp(op.stopGradient(x))), [x]);
    expect(values([dx!], { x: [1, 2] })[0]).toEqual([0, 0]);
    expect(topoSort([dx!]).some((t) => t.node.op === "input")).toBe(false);
  });

  it("integer inputs get no gradient, even when cast into the loss", () => {
    const x = f32("x", [3]);
    const labels = op.input("labels", [3], "i32") as I32;
    const loss = op.sum(op.mul(x, op.cast(labels, "f32")));
    const [dx, dl] = grad(loss, [x, labels]);
    expect(values([dx!, dl!], { x: [1, 2, 3], labels: [4, 5, 6] })).toEqual([
      [4, 5, 6],
      [0, 0, 0],
    ]);
    expect(opsOf([dl!])).toEqual(new Set(["constant", "broadcastTo", "reshape"]));
  });

  it("labels of the cross-entropy get no gradient", () => {
    const logits = f32("logits", [1, 3, 2]);
    const labels = op.input("labels", [1, 2], "i32") as I32;
    const [, dl] = grad(op.softmaxCrossEntropy(logits, labels), [logits, labels]);
    expect(opsOf([dl!]).has("softmaxCrossEntropyGrad")).toBe(false);
  });

  it("a wrt the loss does not depend on gets zeros of its shape", () => {
    const x = f32("x", [2]);
    const unrelated = f32("u", [2, 2]);
    const [du] = grad(op.sum(x), [unrelated]);
    expect(du!.shape).toEqual([2, 2]);
    expect(values([du!], {})[0]).toEqual([0, 0, 0, 0]);
  });

  it("differentiates with respect to intermediate values too", () => {
    const x = f32("x", [2]);
    const h = op.mul(x, 2);
    const loss = op.sum(op.mul(h, h));
    // dL/dh = 2h = 4x; dL/dx = 2 * 4x.
    expect(values(grad(loss, [h, x]), { x: [1, 3] })).toEqual([
      [4, 12],
      [8, 24],
    ]);
  });

  it("vjp seeds several outputs with their own cotangents", () => {
    const x = f32("x", [2]);
    const [dx] = vjp([op.mul(x, x), op.exp(x)], [f32("c1", [2]), f32("c2", [2])], [x]);
    const [got] = values([dx!], { x: [0, 1], c1: [1, 1], c2: [2, 0] });
    expect(got![0]).toBeCloseTo(2 * 0 * 1 + 2 * Math.exp(0), 12);
    expect(got![1]).toBeCloseTo(2 * 1 * 1 + 0, 12);
  });

  it("rejects a loss that is not an f32 scalar", () => {
    const x = f32("x", [2]);
    expect(() => grad(x as unknown as F32<0>, [x])).toThrow("grad: the loss must be an f32 scalar, got f32 [2]");
  });
});

describe("ties and kinks follow PyTorch", () => {
  it("tied maxima of a reduction share the gradient equally (amax)", () => {
    const x = f32("x", [4]);
    expect(values(grad(op.max(x), [x]), { x: [1, 3, 3, 2] })[0]).toEqual([0, 0.5, 0.5, 0]);
  });

  it("maximum and minimum send a tie's gradient to the first operand", () => {
    const a = f32("a", [1]);
    const b = f32("b", [1]);
    expect(values(grad(op.sum(op.maximum(a, b)), [a, b]), { a: [2], b: [2] })).toEqual([[1], [0]]);
    expect(values(grad(op.sum(op.minimum(a, b)), [a, b]), { a: [2], b: [2] })).toEqual([[1], [0]]);
  });

  it("relu and abs have derivative 0 at 0", () => {
    const x = f32("x", [3]);
    expect(values(grad(op.sum(op.relu(x)), [x]), { x: [-1, 0, 1] })[0]).toEqual([0, 0, 1]);
    expect(values(grad(op.sum(op.abs(x)), [x]), { x: [-1, 0, 1] })[0]).toEqual([-1, 0, 1]);
  });

  it("max pooling sends each window's gradient to its first maximum in scan order", () => {
    const x = op.input("x", [1, 1, 2, 2], "f32") as F32<4>;
    const y = op.maxPool2d(x, { kernel: 2 });
    expect(values(grad(op.sum(y), [x]), { x: [5, 5, 5, 5] })[0]).toEqual([1, 0, 0, 0]);
  });
});

describe("dependsOn", () => {
  const x = f32("x", [2]);
  const y = f32("y", [2]);

  it("follows differentiable ops", () => {
    expect(dependsOn(op.sum(op.exp(op.mul(x, y))), x)).toBe(true);
    expect(dependsOn(x, x)).toBe(true);
  });

  it("is false across stopGradient, argmax, comparisons and casts to integers", () => {
    expect(dependsOn(op.sum(op.stopGradient(x)), x)).toBe(false);
    expect(dependsOn(op.cast(op.argmax(x, 0), "f32"), x)).toBe(false);
    expect(dependsOn(op.where(op.gt(x, 0), y, 0), x)).toBe(false);
    expect(dependsOn(op.where(op.gt(x, 0), y, 0), y)).toBe(true);
    expect(dependsOn(op.cast(op.cast(x, "i32"), "f32"), x)).toBe(false);
  });

  it("is false for values that do not read x at all", () => {
    expect(dependsOn(op.sum(y), x)).toBe(false);
  });
});

describe("only what the requested gradients need is reachable", () => {
  const x = op.input("x", [1, 2, 6, 6], "f32") as F32<4>;
  const w = op.input("w", [3, 2, 3, 3], "f32") as F32<4>;
  const b = op.input("b", [3], "f32") as F32<1>;
  const loss = op.sum(op.relu(op.conv2d(x, w, b, { stride: 2, padding: 1 })));

  it("the input gradient alone builds no weight gradient", () => {
    const ops = opsOf(grad(loss, [x]));
    expect(ops.has("conv2dInputGrad")).toBe(true);
    expect(ops.has("conv2dWeightGrad")).toBe(false);
  });

  it("the weight gradient alone builds no input gradient", () => {
    const ops = opsOf(grad(loss, [w]));
    expect(ops.has("conv2dWeightGrad")).toBe(true);
    expect(ops.has("conv2dInputGrad")).toBe(false);
  });

  it("the bias gradient reads neither convolution adjoint", () => {
    const ops = opsOf(grad(loss, [b]));
    expect(ops.has("conv2dWeightGrad") || ops.has("conv2dInputGrad")).toBe(false);
  });

  it("a branch that does not reach the loss adds nothing", () => {
    const side = op.resize(x, [12, 12], { alignCorners: true }); // built, never used by the loss
    const ops = opsOf(grad(loss, [x]));
    expect(side.shape).toEqual([1, 2, 12, 12]);
    expect(ops.has("resize") || ops.has("resizeGrad")).toBe(false);
  });

  it("a frozen parameter's subgraph gets no backward nodes", () => {
    // The first conv's weight is not requested and x needs no gradient: nothing flows back
    // through conv1 (DeepLab's frozen BN affine parameters are the same situation).
    const h = op.conv2d(x, w, undefined, { padding: 1 });
    const w2 = op.input("w2", [1, 3, 1, 1], "f32") as F32<4>;
    const l2 = op.sum(op.conv2d(op.relu(h), w2));
    const ops = opsOf(grad(l2, [w2]));
    expect(ops.has("conv2dWeightGrad")).toBe(true);
    expect(ops.has("conv2dInputGrad")).toBe(false);
  });
});

describe("the VJP table", () => {
  it("has an entry for every op, and marks the piecewise-constant ones nondifferentiable", () => {
    const nondiff = (Object.keys(VJP) as OpName[]).filter((k) => !isDifferentiable(k));
    expect(nondiff.sort()).toEqual(
      ["and", "argmax", "cast", "constant", "eq", "ge", "gt", "input", "iota", "le", "lt", "maxPool2dGrad", "ne", "not", "or", "sign", "softmaxCrossEntropyGrad", "stopGradient"].sort(),
    );
  });
});
