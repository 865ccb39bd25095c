// Reductions over axes: sum, mean, max (amax), argmax.

import type { DType, F32, I32, NodeOf, Shape, Tensor } from "../ir";
import { numel, stridesOf } from "../ir";
import { normAxis } from "../shape";
import { type Numeric, fail, forEachIndex, node, requireDType } from "./build";
import { type Evaluate, NONDIFF, type OpDef, type Value } from "./def";
import { div, eq, mul } from "./binary";
import { cast } from "./unary";
import { broadcastTo, reshape } from "./views";

export interface ReductionAttrs {
  sum: { readonly axes: readonly number[]; readonly keepdims: boolean };
  mean: { readonly axes: readonly number[]; readonly keepdims: boolean };
  max: { readonly axes: readonly number[]; readonly keepdims: boolean };
  argmax: { readonly axis: number; readonly keepdims: boolean };
}

function reduceAxes(op: string, x: Tensor, axes: readonly number[] | undefined): number[] {
  const list = axes ?? x.shape.map((_, i) => i);
  const out: number[] = [];
  for (const a of list) {
    const n = normAxis(a, x.rank);
    if (n === undefined) fail(op, [["x", x]], { axes: list }, `axis ${a} out of range`);
    if (out.includes(n)) fail(op, [["x", x]], { axes: list }, `axis ${a} repeated`);
    out.push(n);
  }
  return out.sort((p, q) => p - q);
}

function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

export interface ReduceOpts {
  readonly keepdims?: boolean;
}

export interface ReduceOp<Allowed extends DType> {
  <D extends Allowed>(x: Tensor<number, D>): Tensor<0, D>;
  <R extends number, D extends Allowed>(x: Tensor<R, D>, axes: readonly number[] | undefined, opts: { readonly keepdims: true }): Tensor<R, D>;
  <D extends Allowed>(x: Tensor<number, D>, axes?: readonly number[], opts?: ReduceOpts): Tensor<number, D>;
}

function reduceOp<Allowed extends DType>(op: "sum" | "mean" | "max", allowed: readonly Allowed[]): ReduceOp<Allowed> {
  return ((x: Tensor, axes?: readonly number[], opts?: ReduceOpts) => {
    requireDType(op, "x", x, allowed);
    const ax = reduceAxes(op, x, axes);
    const keepdims = opts?.keepdims ?? false;
    if (op !== "sum" && ax.some((a) => x.shape[a] === 0)) fail(op, [["x", x]], { axes: ax }, "reduction over an empty axis");
    return node({ op, inputs: [x], attrs: { axes: ax, keepdims } }, reducedShape(x.shape, ax, keepdims), x.dtype);
  }) as ReduceOp<Allowed>;
}

/** Sum over axes (all when omitted). */
export const sum = reduceOp("sum", ["f32", "i32"]);
/** Arithmetic mean over axes. */
export const mean = reduceOp("mean", ["f32"]);
/** Maximum over axes; the gradient is shared equally among tied maxima (PyTorch's amax). */
export const max = reduceOp("max", ["f32", "i32"]);

/** Index of the maximum along one axis, ties to the first index (NumPy and PyTorch CPU). */
export function argmax<D extends Numeric>(x: Tensor<number, D>, axis: number, opts?: ReduceOpts): I32 {
  const a = normAxis(axis, x.rank);
  if (a === undefined) fail("argmax", [["x", x]], { axis }, "axis out of range");
  const keepdims = opts?.keepdims ?? false;
  return node({ op: "argmax", inputs: [x], attrs: { axis: a, keepdims } }, reducedShape(x.shape, [a], keepdims), "i32");
}

/** Sum, mean or max over `axes`, accumulated in float64; max is NaN over a NaN (amax). */
function reduceEvaluate<K extends "sum" | "mean" | "max">(op: K): Evaluate<K> {
  return (n, [x], out) => reduceInto(op, x!, (n as NodeOf<"sum" | "mean" | "max">).attrs.axes, out);
}

function reduceInto(op: "sum" | "mean" | "max", x: Value, axes: readonly number[], out: Value["data"]): void {
  // Output index = input index with the reduced axes dropped (keepdims only changes the shape).
  const keptShape = x.shape.filter((_, i) => !axes.includes(i));
  const keptStrides = stridesOf(keptShape);
  const acc = new Float64Array(out.length).fill(op === "max" ? -Infinity : 0);
  const count = numel(axes.map((a) => x.shape[a]!));
  forEachIndex(x.shape, (flat, idx) => {
    let o = 0;
    let k = 0;
    for (let a = 0; a < idx.length; a++) if (!axes.includes(a)) o += idx[a]! * keptStrides[k++]!;
    const v = x.data[flat]!;
    if (op === "max") acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]!) ? NaN : Math.max(acc[o]!, v);
    else acc[o]! += v;
  });
  for (let i = 0; i < out.length; i++) out[i] = op === "mean" ? acc[i]! / count : acc[i]!;
}

/** Expands a reduced cotangent back over the reduced axes (reshape to keepdims, broadcast). */
function unreduce(dy: F32, x: Tensor, axes: readonly number[]): F32 {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return broadcastTo(reshape(dy, kept), x.shape);
}

const f = (t: Tensor) => t as F32;

export const REDUCTION_OPS = {
  // The cotangent is spread back over the reduced axes.
  sum: {
    evaluate: reduceEvaluate("sum"),
    vjp: (n, dy) => [unreduce(dy, n.inputs[0]!, n.attrs.axes)],
    lowering: { kind: "template", operands: "expressions", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // mean(x) = sum(x) * (1/n): one reduction template, the scale an epilogue.
  mean: {
    evaluate: reduceEvaluate("mean"),
    vjp: (n, dy) => {
      const x = n.inputs[0]!;
      const count = numel(n.attrs.axes.map((a) => x.shape[a]!));
      return [div(unreduce(dy, x, n.attrs.axes), count)];
    },
    lowering: {
      kind: "decomposed",
      into: (n, [x]) => {
        const count = n.attrs.axes.reduce((p, a) => p * x!.shape[a]!, 1);
        return mul(sum(f(x!), n.attrs.axes, { keepdims: n.attrs.keepdims }), 1 / count);
      },
    },
    gradcheck: { kind: "cases" },
  },
  // amax: tied maxima share the gradient equally, (dy / #ties) * mask as PyTorch writes it,
  // so a group whose maximum is NaN (no element equals it: 0 ties) gets NaN everywhere.
  max: {
    evaluate: reduceEvaluate("max"),
    vjp: (n, dy, y) => {
      const x = f(n.inputs[0]!);
      const mask = cast(eq(x, unreduce(f(y), x, n.attrs.axes)), "f32");
      const ties = sum(mask, n.attrs.axes, { keepdims: true });
      return [mul(div(unreduce(dy, x, n.attrs.axes), ties), mask)];
    },
    lowering: { kind: "template", operands: "expressions", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // The first index of the maximum; a NaN counts as the maximum (its first occurrence).
  argmax: {
    evaluate: (n, [x], out) => {
      const axis = n.attrs.axis;
      const len = x!.shape[axis]!;
      const inner = numel(x!.shape.slice(axis + 1));
      const outer = numel(x!.shape.slice(0, axis));
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let best = -Infinity;
          let arg = 0;
          for (let k = 0; k < len; k++) {
            const v = x!.data[(o * len + k) * inner + i]!;
            if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
              best = v;
              arg = k;
            }
          }
          out[o * inner + i] = arg;
        }
    },
    vjp: NONDIFF,
    lowering: { kind: "template", operands: "expressions", epilogue: false },
    gradcheck: { kind: "none" },
  },
} satisfies { readonly [K in keyof ReductionAttrs]: OpDef<K> };
