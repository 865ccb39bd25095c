// Depthwise convolution: shape errors that name the operand, and the float64 reference and its
// gradients against PyTorch 1.13's F.conv2d(..., groups=C) (dsl/fixtures/depthwise.json, written
// by scripts/make_depthwise_fixture.py): stride 1, stride 2, and dilation 2 with an asymmetric
// kernel, stride and padding.

import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type F32, type Pair, type Shape, ShapeError, evaluate, grad, input, tryBuild } from "../index";
import * as op from "../ops";

interface FixtureCase {
  readonly name: string;
  readonly x: [number, number, number, number];
  readonly kernel: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly bias: boolean;
  readonly y_shape: number[];
  readonly x_data: number[];
  readonly w: number[];
  readonly b?: number[];
  readonly y: number[];
  readonly g: number[];
  readonly dx: number[];
  readonly dw: number[];
  readonly db?: number[];
}

const fixture = JSON.parse(readFileSync(new URL("../fixtures/depthwise.json", import.meta.url), "utf8")) as { cases: FixtureCase[] };

/**
 * Elements further apart than 1e-12 relative: float64 sums of at most a few hundred products in
 * another order than PyTorch's differ by ~1e-15 of their terms' size. Values near zero (after
 * cancellation) are compared on the scale of the terms, 1e-2 here.
 */
const far = (a: ArrayLike<number>, b: readonly number[]) =>
  b.flatMap((v, i) => (Math.abs(a[i]! - v) <= 1e-12 * Math.max(Math.abs(v), 1e-2) ? [] : [`[${i}] ${a[i]} vs ${v}`]));

const f4 = (name: string, shape: Shape) => input(name, shape, "f32") as F32<4>;

describe("depthwiseConv2d matches PyTorch's grouped conv2d (groups = C) in float64", () => {
  for (const c of fixture.cases) {
    const C = c.x[1];
    const x = f4("x", c.x);
    const w = f4("w", [C, 1, ...c.kernel]);
    const b = c.bias ? (input("b", [C], "f32") as F32<1>) : undefined;
    const g = f4("g", c.y_shape);
    const feeds = { x: c.x_data, w: c.w, g: c.g, ...(c.b ? { b: c.b } : {}) };
    const y = op.depthwiseConv2d(x, w, b, c);

    it(`${c.name}: the output`, () => {
      expect(y.shape).toEqual(c.y_shape);
      expect(far(evaluate([y], feeds)[0]!.data, c.y)).toEqual([]);
    });

    it(`${c.name}: the gradients of sum(g * y) in x, w${c.bias ? " and b" : ""}`, () => {
      const grads = grad(op.sum(op.mul(y, g)), b ? [x, w, b] : [x, w]);
      const values = evaluate(grads, feeds);
      expect(far(values[0]!.data, c.dx)).toEqual([]);
      expect(far(values[1]!.data, c.dw)).toEqual([]);
      if (c.db) expect(far(values[2]!.data, c.db)).toEqual([]);
    });

    it(`${c.name}: the adjoint ops on their own give the same gradients`, () => {
      const dx = op.depthwiseConv2dInputGrad(g, w, [c.x[2], c.x[3]], c);
      const dw = op.depthwiseConv2dWeightGrad(x, g, c.kernel, c);
      expect(dw.shape).toEqual([C, 1, ...c.kernel]);
      const [vx, vw] = evaluate([dx, dw], feeds);
      expect(far(vx!.data, c.dx)).toEqual([]);
      expect(far(vw!.data, c.dw)).toEqual([]);
    });
  }
});

/** The message of the ShapeError a build raises. */
function errorOf(build: () => unknown): string {
  const r = tryBuild(build);
  if (E.isRight(r)) throw new Error("expected a ShapeError, the build succeeded");
  expect(r.left).toBeInstanceOf(ShapeError);
  return r.left.message;
}

describe("depthwise shape errors name the op and the operand at fault", () => {
  const x = f4("x", [1, 4, 8, 8]);

  it("a weight that is not [C, 1, KH, KW]: a regular conv2d weight, or one filter per another channel count", () => {
    expect(errorOf(() => op.depthwiseConv2d(x, f4("w", [4, 4, 3, 3])))).toMatch(/depthwiseConv2d[\s\S]*weight must be \[4,1,KH,KW\][\s\S]*got \[4,4,3,3\]/);
    expect(errorOf(() => op.depthwiseConv2d(x, f4("w", [3, 1, 3, 3])))).toMatch(/weight must be \[4,1,KH,KW\]/);
  });

  it("rank and dtype of each operand", () => {
    expect(errorOf(() => op.depthwiseConv2d(input("x", [4, 8, 8], "f32") as never, f4("w", [4, 1, 3, 3])))).toMatch(/input must have rank 4/);
    expect(errorOf(() => op.depthwiseConv2d(x, input("w", [4, 3, 3], "f32") as never))).toMatch(/weight must have rank 4/);
    expect(errorOf(() => op.depthwiseConv2d(x, input("w", [4, 1, 3, 3], "i32") as never))).toMatch(/weight has dtype i32/);
  });

  it("a bias of the wrong length", () => {
    expect(errorOf(() => op.depthwiseConv2d(x, f4("w", [4, 1, 3, 3]), input("b", [3], "f32") as F32<1>))).toMatch(/bias must be \[4\]/);
  });

  it("a window that does not fit, and a zero stride", () => {
    expect(errorOf(() => op.depthwiseConv2d(f4("x", [1, 4, 2, 2]), f4("w", [4, 1, 3, 3]), undefined, { dilation: 2, padding: 1 }))).toMatch(/window does not fit/);
    expect(errorOf(() => op.depthwiseConv2d(x, f4("w", [4, 1, 3, 3]), undefined, { stride: [0, 1] }))).toMatch(/stride and dilation must be positive/);
  });

  it("adjoints: a gradOutput whose size the input size does not give, and mismatched batches or channels", () => {
    const w = f4("w", [4, 1, 3, 3]);
    expect(errorOf(() => op.depthwiseConv2dInputGrad(f4("dy", [1, 4, 5, 5]), w, [8, 8], { padding: 1 }))).toMatch(/depthwiseConv2dInputGrad[\s\S]*an input of 8x8 gives 8x8, not 5x5/);
    expect(errorOf(() => op.depthwiseConv2dInputGrad(f4("dy", [1, 3, 8, 8]), w, [8, 8], { padding: 1 }))).toMatch(/weight must be \[3,1,KH,KW\]/);
    expect(errorOf(() => op.depthwiseConv2dWeightGrad(x, f4("dy", [2, 4, 8, 8]), [3, 3], { padding: 1 }))).toMatch(/depthwiseConv2dWeightGrad[\s\S]*batch sizes differ/);
    expect(errorOf(() => op.depthwiseConv2dWeightGrad(x, f4("dy", [1, 5, 8, 8]), [3, 3], { padding: 1 }))).toMatch(/input has 4 channels, gradOutput 5/);
  });
});
