// Elementwise binary ops (and `where`): operands broadcast to one shape by the builders, so
// every binary node sees two operands of its own shape.

import type { Bool, DType, F32, Tensor } from "../ir";
import { broadcastShapes } from "../shape";
import { type MaxRank, type Numeric, fail, node, requireDType, wrapI32 } from "./build";
import { type Evaluate, NONDIFF, type OpDef, awayFromZero, evenLattice, oddLattice, standard, uniform } from "./def";
// Cycles between family files are safe: other families' builders are only called inside rules
// and builders, never while a module is loaded.
import { log, neg } from "./unary";
import { broadcastTo } from "./views";
import { scalar } from "./sources";

export interface BinaryAttrs {
  add: {};
  sub: {};
  mul: {};
  div: {};
  pow: {};
  maximum: {};
  minimum: {};
  lt: {};
  le: {};
  gt: {};
  ge: {};
  eq: {};
  ne: {};
  and: {};
  or: {};
  where: {};
}

type ArithName = "add" | "sub" | "mul" | "div" | "pow" | "maximum" | "minimum";
type CompareName = "lt" | "le" | "gt" | "ge" | "eq" | "ne";

/** A binary op with broadcasting; a plain number takes the tensor operand's dtype. */
export interface BinaryOp<Allowed extends DType> {
  <R extends number, D extends Allowed>(a: Tensor<R, D>, b: number): Tensor<R, D>;
  <R extends number, D extends Allowed>(a: number, b: Tensor<R, D>): Tensor<R, D>;
  <RA extends number, RB extends number, D extends Allowed>(a: Tensor<RA, D>, b: Tensor<RB, NoInfer<D>>): Tensor<MaxRank<RA, RB>, D>;
}

export interface CompareOp {
  <R extends number, D extends Numeric>(a: Tensor<R, D>, b: number): Bool<R>;
  <R extends number, D extends Numeric>(a: number, b: Tensor<R, D>): Bool<R>;
  <RA extends number, RB extends number, D extends Numeric>(a: Tensor<RA, D>, b: Tensor<RB, NoInfer<D>>): Bool<MaxRank<RA, RB>>;
}

function asTensor<D extends DType>(v: Tensor<number, D> | number, dtype: D): Tensor<number, D> {
  return typeof v === "number" ? scalar(v, dtype) : v;
}

function broadcastPair(op: string, a0: Tensor | number, b0: Tensor | number): [Tensor, Tensor] {
  const dtype = typeof a0 === "number" ? (b0 as Tensor).dtype : a0.dtype;
  const a = asTensor(a0, dtype);
  const b = asTensor(b0, dtype);
  if (a.dtype !== b.dtype) fail(op, [["a", a], ["b", b]], {}, `dtypes differ: ${a.dtype} and ${b.dtype}`);
  const shape = broadcastShapes(a.shape, b.shape);
  if (shape === undefined) fail(op, [["a", a], ["b", b]], {}, `shapes do not broadcast`);
  return [broadcastTo(a, shape), broadcastTo(b, shape)];
}

function binaryOp<Allowed extends DType>(op: ArithName, allowed: readonly Allowed[]): BinaryOp<Allowed> {
  return ((a0: Tensor | number, b0: Tensor | number) => {
    const [a, b] = broadcastPair(op, a0, b0);
    requireDType(op, "a", a, allowed, [["a", a], ["b", b]]);
    return node({ op, inputs: [a, b], attrs: {} }, a.shape, a.dtype);
  }) as BinaryOp<Allowed>;
}

function compareOp(op: CompareName): CompareOp {
  return ((a0: Tensor | number, b0: Tensor | number) => {
    const [a, b] = broadcastPair(op, a0, b0);
    requireDType(op, "a", a, ["f32", "i32"], [["a", a], ["b", b]]);
    return node({ op, inputs: [a, b], attrs: {} }, a.shape, "bool");
  }) as CompareOp;
}

/** a + b */
export const add = binaryOp("add", ["f32", "i32"]);
/** a - b */
export const sub = binaryOp("sub", ["f32", "i32"]);
/** a * b */
export const mul = binaryOp("mul", ["f32", "i32"]);
/** a / b (f32 only: integer division is not needed by any model here) */
export const div = binaryOp("div", ["f32"]);
/** a ^ b, IEEE pow */
export const pow = binaryOp("pow", ["f32"]);
/** max(a, b); the gradient goes to a on ties */
export const maximum = binaryOp("maximum", ["f32", "i32"]);
/** min(a, b); the gradient goes to a on ties */
export const minimum = binaryOp("minimum", ["f32", "i32"]);

export const lt = compareOp("lt");
export const le = compareOp("le");
export const gt = compareOp("gt");
export const ge = compareOp("ge");
export const eq = compareOp("eq");
export const ne = compareOp("ne");

export function and<RA extends number, RB extends number>(a: Bool<RA>, b: Bool<RB>): Bool<MaxRank<RA, RB>> {
  const [x, y] = broadcastPair("and", a, b);
  return node({ op: "and", inputs: [x, y], attrs: {} }, x.shape, "bool");
}

export function or<RA extends number, RB extends number>(a: Bool<RA>, b: Bool<RB>): Bool<MaxRank<RA, RB>> {
  const [x, y] = broadcastPair("or", a, b);
  return node({ op: "or", inputs: [x, y], attrs: {} }, x.shape, "bool");
}

/** cond ? a : b, elementwise, all three broadcast together. */
export function where<RC extends number, R extends number, D extends Numeric>(
  cond: Bool<RC>,
  a: Tensor<R, D> | number,
  b: Tensor<number, NoInfer<D>> | number,
): Tensor<MaxRank<RC, R>, D> {
  requireDType("where", "cond", cond, ["bool"]);
  const dtype: DType = typeof a !== "number" ? a.dtype : typeof b !== "number" ? b.dtype : "f32";
  const ta = asTensor(a as Tensor | number, dtype);
  const tb = asTensor(b as Tensor | number, dtype);
  if (ta.dtype !== tb.dtype) fail("where", [["a", ta], ["b", tb]], {}, `dtypes differ: ${ta.dtype} and ${tb.dtype}`);
  const s1 = broadcastShapes(cond.shape, ta.shape);
  const shape = s1 && broadcastShapes(s1, tb.shape);
  if (shape === undefined) fail("where", [["cond", cond], ["a", ta], ["b", tb]], {}, "shapes do not broadcast");
  return node(
    { op: "where", inputs: [broadcastTo(cond, shape), broadcastTo(ta, shape), broadcastTo(tb, shape)], attrs: {} },
    shape,
    ta.dtype as D,
  );
}

/** y[i] = f(a[i], b[i]); i32 results wrap as on the GPU. */
function pointwise2<K extends keyof BinaryAttrs>(fn: (a: number, b: number) => number): Evaluate<K> {
  return (_n, [a, b], out, _shape, dtype) => {
    const wrap = dtype === "i32" ? wrapI32 : (v: number) => v;
    for (let i = 0; i < out.length; i++) out[i] = wrap(fn(a!.data[i]!, b!.data[i]!));
  };
}

/** An operator between the two operands, `(a op b)`; the operands in order. */
const infix = (operator: string) => (c: { arg(i: number): string }) => {
  const a = c.arg(0);
  return `(${a} ${operator} ${c.arg(1)})`;
};

/** A comparison: bool, no gradient. */
function comparison<K extends CompareName>(fn: (a: number, b: number) => boolean, operator: string): OpDef<K> {
  return {
    evaluate: pointwise2((a, b) => (fn(a, b) ? 1 : 0)),
    vjp: NONDIFF,
    lowering: { kind: "elementwise", wgsl: infix(operator) },
    gradcheck: { kind: "none" },
  };
}

const f = (t: Tensor) => t as F32;

export const BINARY_OPS = {
  add: {
    evaluate: pointwise2((a, b) => a + b),
    vjp: (_n, dy) => [dy, dy],
    lowering: { kind: "elementwise", wgsl: infix("+") },
    gradcheck: { kind: "binary", a: standard, b: standard },
  },
  sub: {
    evaluate: pointwise2((a, b) => a - b),
    vjp: (_n, dy) => [dy, neg(dy)],
    lowering: { kind: "elementwise", wgsl: infix("-") },
    gradcheck: { kind: "binary", a: standard, b: standard },
  },
  // d(ab) = b dy, a dy
  mul: {
    evaluate: pointwise2((a, b) => a * b),
    vjp: (n, dy) => [mul(dy, f(n.inputs[1]!)), mul(dy, f(n.inputs[0]!))],
    lowering: { kind: "elementwise", wgsl: infix("*") },
    gradcheck: { kind: "binary", a: standard, b: standard },
  },
  // d(a/b) = dy/b, -dy a/b^2 = -dy y/b
  div: {
    evaluate: pointwise2((a, b) => a / b),
    vjp: (n, dy, y) => [div(dy, f(n.inputs[1]!)), neg(div(mul(dy, f(y)), f(n.inputs[1]!)))],
    lowering: { kind: "elementwise", wgsl: infix("/") },
    gradcheck: { kind: "binary", a: standard, b: awayFromZero(0.5) },
  },
  // d a^b = b a^(b-1) dy, a^b ln(a) dy
  pow: {
    evaluate: pointwise2((a, b) => Math.pow(a, b)),
    vjp: (n, dy, y) => {
      const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
      return [mul(dy, mul(b, pow(a, sub(b, 1)))), mul(dy, mul(f(y), log(a)))];
    },
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        // IEEE pow for the cases WGSL leaves undefined: x < 0 with an integer exponent (the sign
        // of x^y is that of x when y is odd), and 0^0 = 1. Non-integer powers of negatives are NaN.
        c.define(
          "pow",
          `fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0f) { return 1.0f; }
  if (x >= 0.0f) { return pow(x, y); }
  if (y != round(y)) { return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); } // NaN, built at run time
  let m = pow(-x, y);
  return select(m, -m, abs(y % 2.0f) == 1.0f);
}`,
        );
        const a = c.arg(0);
        return `pow_(${a}, ${c.arg(1)})`;
      },
    },
    gradcheck: { kind: "binary", a: uniform(0.5, 2), b: standard },
  },
  // NaN in either operand gives NaN, as PyTorch's maximum; WGSL's max may return the other
  // operand, so f32 uses the NaN-propagating helper (i32 max is exact). The larger operand
  // takes the gradient; ties go to the first operand. An operand loses dy only to a comparison
  // that holds, so when either is NaN both take dy, as in PyTorch.
  maximum: {
    evaluate: pointwise2((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a >= b ? a : b)),
    vjp: (n, dy) => {
      const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
      return [where(lt(a, b), 0, dy), where(ge(a, b), 0, dy)];
    },
    lowering: { kind: "elementwise", wgsl: (c) => extremum(c, "max") },
    gradcheck: { kind: "binary", a: evenLattice, b: oddLattice },
  },
  minimum: {
    evaluate: pointwise2((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a <= b ? a : b)),
    vjp: (n, dy) => {
      const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
      return [where(gt(a, b), 0, dy), where(le(a, b), 0, dy)];
    },
    lowering: { kind: "elementwise", wgsl: (c) => extremum(c, "min") },
    gradcheck: { kind: "binary", a: evenLattice, b: oddLattice },
  },
  lt: comparison((a, b) => a < b, "<"),
  le: comparison((a, b) => a <= b, "<="),
  gt: comparison((a, b) => a > b, ">"),
  ge: comparison((a, b) => a >= b, ">="),
  eq: comparison((a, b) => a === b, "=="),
  ne: comparison((a, b) => a !== b, "!="),
  and: {
    evaluate: pointwise2((a, b) => (a && b ? 1 : 0)),
    vjp: NONDIFF,
    lowering: { kind: "elementwise", wgsl: infix("&&") },
    gradcheck: { kind: "none" },
  },
  or: {
    evaluate: pointwise2((a, b) => (a || b ? 1 : 0)),
    vjp: NONDIFF,
    lowering: { kind: "elementwise", wgsl: infix("||") },
    gradcheck: { kind: "none" },
  },
  // cond ? a : b; the cotangent goes to the branch taken.
  where: {
    evaluate: (_n, [c, a, b], out) => {
      for (let i = 0; i < out.length; i++) out[i] = c!.data[i] ? a!.data[i]! : b!.data[i]!;
    },
    vjp: (n, dy) => {
      const c = n.inputs[0]! as Tensor<number, "bool">;
      return [undefined, where(c, dy, 0), where(c, 0, dy)];
    },
    lowering: {
      kind: "elementwise",
      // WGSL's select(false, true, cond); the operands are reached in the order b, a, cond.
      wgsl: (c) => {
        const b = c.arg(2);
        const a = c.arg(1);
        return `select(${b}, ${a}, ${c.arg(0)})`;
      },
    },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof BinaryAttrs]: OpDef<K> };

function extremum(c: { dtype: DType; arg(i: number): string; helper(name: "max" | "min"): void }, which: "max" | "min"): string {
  const a = c.arg(0);
  const b = c.arg(1);
  if (c.dtype !== "f32") return `${which}(${a}, ${b})`;
  c.helper(which);
  return `${which}_(${a}, ${b})`;
}
