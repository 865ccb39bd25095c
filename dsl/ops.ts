// The primitive ops of the DSL: builders that check shapes and dtypes and create nodes.
//
// Each builder states the op's math once, here. The interpreter (interpret.ts) implements
// exactly that math, the VJP table (grad.ts) differentiates it, and codegen lowers it.
// Conventions follow PyTorch: NCHW layout, floor division for window sizes, ties in argmax to
// the first index.

import {
  type Bool,
  type DType,
  type F32,
  type I32,
  type InputRole,
  type Node,
  type Pair,
  type Shape,
  type Tensor,
  makeTensor,
  numel,
} from "./ir";
import { ShapeError, broadcastShapes, convOutSize, normAxis, poolOutSize, showShape } from "./shape";

export type Numeric = "f32" | "i32";

// ---------------------------------------------------------------------------------------------
// Type-level rank arithmetic: enough to give `add(rank4, rank1)` the type rank 4.

type Tuple<N extends number, A extends unknown[] = []> = A["length"] extends N
  ? A
  : A["length"] extends 9
    ? unknown[]
    : Tuple<N, [...A, 0]>;

/** The larger of two ranks; `number` when either is unknown. */
export type MaxRank<A extends number, B extends number> = number extends A
  ? number
  : number extends B
    ? number
    : Tuple<A> extends [...Tuple<B>, ...unknown[]]
      ? A
      : B;

function node<R extends number, D extends DType>(n: Node, shape: Shape, dtype: D): Tensor<R, D> {
  return makeTensor<R, D>(n, shape, dtype);
}

function fail(
  op: string,
  operands: readonly (readonly [string, Tensor])[],
  attrs: Record<string, unknown>,
  reason: string,
): never {
  throw new ShapeError(
    op,
    operands.map(([n, t]) => [n, t.shape] as const),
    attrs,
    reason,
  );
}

type Operands = readonly (readonly [string, Tensor])[];

// Both name every operand of the op (`operands`, default just `t`), as a ShapeError must.
function requireDType(op: string, name: string, t: Tensor, allowed: readonly DType[], operands: Operands = [[name, t]], attrs = {}): void {
  if (!allowed.includes(t.dtype)) {
    fail(op, operands, attrs, `${name} has dtype ${t.dtype}, expected ${allowed.join(" or ")}`);
  }
}

function requireRank(op: string, name: string, t: Tensor, rank: number, attrs = {}, operands: Operands = [[name, t]]): void {
  if (t.rank !== rank) fail(op, operands, attrs, `${name} must have rank ${rank}`);
}

const sameShape = (a: Shape, b: Shape): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

// ---------------------------------------------------------------------------------------------
// Sources

/** A named value supplied when the program runs: data input, parameter or state. */
export function input<const S extends Shape, D extends DType>(
  name: string,
  shape: S,
  dtype: D,
  role: InputRole = "input",
): Tensor<S["length"], D> {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new ShapeError("input", [[name, shape]], {}, `dimension ${d} is not a positive integer`);
    }
  }
  return node({ op: "input", inputs: [], attrs: { name, role } }, shape, dtype);
}

/** A constant scalar (rank 0). Broadcasting gives it any shape for free. */
export function scalar<D extends DType = "f32">(value: number, dtype?: D): Tensor<0, D> {
  const dt = (dtype ?? "f32") as D;
  if (dt === "i32" && !Number.isInteger(value)) {
    throw new ShapeError("scalar", [], { value }, "an i32 constant must be an integer");
  }
  return node({ op: "constant", inputs: [], attrs: { value } }, [], dt);
}

/** out[i0..] = i_axis: the index along one axis, as i32 (one-hot masks, class ids). */
export function iota<const S extends Shape>(shape: S, axis: number): I32<S["length"]> {
  const a = normAxis(axis, shape.length);
  if (a === undefined) throw new ShapeError("iota", [["shape", shape]], { axis }, "axis out of range");
  return node({ op: "iota", inputs: [], attrs: { axis: a } }, shape, "i32");
}

// ---------------------------------------------------------------------------------------------
// Broadcasting (explicit in the graph: binary primitives always see one shape)

/**
 * NumPy broadcasting of `x` to `shape`: missing leading axes are added (a reshape), then axes
 * of length 1 are repeated (a broadcastTo node). Anything else is a ShapeError.
 */
export function broadcastTo<const S extends Shape, D extends DType>(
  x: Tensor<number, D>,
  shape: S,
): Tensor<S["length"], D> {
  if (sameShape(x.shape, shape)) return x as Tensor<S["length"], D>;
  const b = broadcastShapes(x.shape, shape);
  if (b === undefined || !sameShape(b, shape)) {
    fail("broadcastTo", [["x", x]], { shape }, `cannot broadcast ${showShape(x.shape)} to ${showShape(shape)}`);
  }
  const lifted =
    x.rank === shape.length
      ? x
      : reshape(x, [...new Array<number>(shape.length - x.rank).fill(1), ...x.shape]);
  if (sameShape(lifted.shape, shape)) return lifted as Tensor<S["length"], D>;
  return node({ op: "broadcastTo", inputs: [lifted], attrs: { shape } }, shape, x.dtype);
}

function asTensor<D extends DType>(v: Tensor<number, D> | number, dtype: D): Tensor<number, D> {
  return typeof v === "number" ? scalar(v, dtype) : v;
}

type BinaryName = "add" | "sub" | "mul" | "div" | "pow" | "maximum" | "minimum";
type CompareName = "lt" | "le" | "gt" | "ge" | "eq" | "ne";

/** A binary op with broadcasting; a plain number takes the tensor operand's dtype. */
export interface BinaryOp<Allowed extends DType> {
  <R extends number, D extends Allowed>(a: Tensor<R, D>, b: number): Tensor<R, D>;
  <R extends number, D extends Allowed>(a: number, b: Tensor<R, D>): Tensor<R, D>;
  <RA extends number, RB extends number, D extends Allowed>(
    a: Tensor<RA, D>,
    b: Tensor<RB, NoInfer<D>>,
  ): Tensor<MaxRank<RA, RB>, D>;
}

export interface CompareOp {
  <R extends number, D extends Numeric>(a: Tensor<R, D>, b: number): Bool<R>;
  <R extends number, D extends Numeric>(a: number, b: Tensor<R, D>): Bool<R>;
  <RA extends number, RB extends number, D extends Numeric>(
    a: Tensor<RA, D>,
    b: Tensor<RB, NoInfer<D>>,
  ): Bool<MaxRank<RA, RB>>;
}

function broadcastPair(
  op: string,
  a0: Tensor | number,
  b0: Tensor | number,
): [Tensor, Tensor] {
  const dtype = typeof a0 === "number" ? (b0 as Tensor).dtype : a0.dtype;
  const a = asTensor(a0, dtype);
  const b = asTensor(b0, dtype);
  if (a.dtype !== b.dtype) {
    fail(op, [["a", a], ["b", b]], {}, `dtypes differ: ${a.dtype} and ${b.dtype}`);
  }
  const shape = broadcastShapes(a.shape, b.shape);
  if (shape === undefined) {
    fail(op, [["a", a], ["b", b]], {}, `shapes do not broadcast`);
  }
  return [broadcastTo(a, shape), broadcastTo(b, shape)];
}

function binaryOp<Allowed extends DType>(op: BinaryName, allowed: readonly Allowed[]): BinaryOp<Allowed> {
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

export function not<R extends number>(x: Bool<R>): Bool<R> {
  requireDType("not", "x", x, ["bool"]);
  return node({ op: "not", inputs: [x], attrs: {} }, x.shape, "bool");
}

/** cond ? a : b, elementwise, all three broadcast together. */
export function where<RC extends number, R extends number, D extends Numeric>(
  cond: Bool<RC>,
  a: Tensor<R, D> | number,
  b: Tensor<number, NoInfer<D>> | number,
): Tensor<MaxRank<RC, R>, D> {
  requireDType("where", "cond", cond, ["bool"]);
  const dtype: DType =
    typeof a !== "number" ? a.dtype : typeof b !== "number" ? b.dtype : "f32";
  const ta = asTensor(a as Tensor | number, dtype);
  const tb = asTensor(b as Tensor | number, dtype);
  if (ta.dtype !== tb.dtype) {
    fail("where", [["a", ta], ["b", tb]], {}, `dtypes differ: ${ta.dtype} and ${tb.dtype}`);
  }
  const s1 = broadcastShapes(cond.shape, ta.shape);
  const shape = s1 && broadcastShapes(s1, tb.shape);
  if (shape === undefined) {
    fail("where", [["cond", cond], ["a", ta], ["b", tb]], {}, "shapes do not broadcast");
  }
  return node(
    { op: "where", inputs: [broadcastTo(cond, shape), broadcastTo(ta, shape), broadcastTo(tb, shape)], attrs: {} },
    shape,
    ta.dtype as D,
  );
}

/** Converts dtype: f32 -> i32 truncates toward zero; bool -> number gives 0/1; number -> bool is x != 0. */
export function cast<R extends number, To extends DType>(x: Tensor<R>, to: To): Tensor<R, To> {
  if (x.dtype === to) return x as unknown as Tensor<R, To>;
  return node({ op: "cast", inputs: [x], attrs: { to } }, x.shape, to);
}

// ---------------------------------------------------------------------------------------------
// Elementwise unary

type UnaryName =
  | "neg"
  | "abs"
  | "sign"
  | "exp"
  | "log"
  | "log1p"
  | "sqrt"
  | "rsqrt"
  | "relu"
  | "sigmoid"
  | "tanh";

function unaryOp<Allowed extends DType>(op: UnaryName, allowed: readonly Allowed[]) {
  return <R extends number, D extends Allowed>(x: Tensor<R, D>): Tensor<R, D> => {
    requireDType(op, "x", x, allowed);
    return node({ op, inputs: [x], attrs: {} }, x.shape, x.dtype);
  };
}

/** -x */
export const neg = unaryOp("neg", ["f32", "i32"]);
/** |x|; its derivative is sign(x) (0 at 0, as PyTorch) */
export const abs = unaryOp("abs", ["f32", "i32"]);
/** -1, 0 or 1; derivative 0 */
export const sign = unaryOp("sign", ["f32", "i32"]);
/** e^x */
export const exp = unaryOp("exp", ["f32"]);
/** ln x */
export const log = unaryOp("log", ["f32"]);
/** ln(1 + x), accurate for small x */
export const log1p = unaryOp("log1p", ["f32"]);
/** sqrt x */
export const sqrt = unaryOp("sqrt", ["f32"]);
/** 1 / sqrt x */
export const rsqrt = unaryOp("rsqrt", ["f32"]);
/** max(x, 0); derivative 1 where x > 0, else 0 */
export const relu = unaryOp("relu", ["f32"]);
/** 1 / (1 + e^-x) */
export const sigmoid = unaryOp("sigmoid", ["f32"]);
/** tanh x */
export const tanh = unaryOp("tanh", ["f32"]);

/** x if x > 0 else slope * x */
export function leakyRelu<R extends number>(x: F32<R>, slope: number): F32<R> {
  requireDType("leakyRelu", "x", x, ["f32"]);
  return node({ op: "leakyRelu", inputs: [x], attrs: { slope } }, x.shape, "f32");
}

// ---------------------------------------------------------------------------------------------
// Reductions

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
  <R extends number, D extends Allowed>(
    x: Tensor<R, D>,
    axes: readonly number[] | undefined,
    opts: { readonly keepdims: true },
  ): Tensor<R, D>;
  <D extends Allowed>(x: Tensor<number, D>, axes?: readonly number[], opts?: ReduceOpts): Tensor<number, D>;
}

function reduceOp<Allowed extends DType>(op: "sum" | "mean" | "max", allowed: readonly Allowed[]): ReduceOp<Allowed> {
  return ((x: Tensor, axes?: readonly number[], opts?: ReduceOpts) => {
    requireDType(op, "x", x, allowed);
    const ax = reduceAxes(op, x, axes);
    const keepdims = opts?.keepdims ?? false;
    if (op !== "sum" && ax.some((a) => x.shape[a] === 0)) {
      fail(op, [["x", x]], { axes: ax }, "reduction over an empty axis");
    }
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

// ---------------------------------------------------------------------------------------------
// Views

/** Same elements in row-major order, new shape; one entry may be -1 (inferred). */
export function reshape<const S extends Shape, D extends DType>(x: Tensor<number, D>, shape: S): Tensor<S["length"], D> {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1 || known.some((d) => !Number.isInteger(d) || d < 0)) {
    fail("reshape", [["x", x]], { shape }, "invalid target shape");
  }
  const n = numel(x.shape);
  const k = numel(known);
  const full = shape.map((d) => (d === -1 ? n / k : d));
  if (numel(full) !== n || full.some((d) => !Number.isInteger(d))) {
    fail("reshape", [["x", x]], { shape }, `cannot reshape ${n} elements to ${showShape(shape)}`);
  }
  if (sameShape(full, x.shape)) return x as Tensor<S["length"], D>;
  return node({ op: "reshape", inputs: [x], attrs: { shape: full } }, full, x.dtype);
}

/** out[i_perm[0], i_perm[1], ...] = x[i_0, i_1, ...]: axis k of the result is axis perm[k] of x. */
export function permute<R extends number, D extends DType>(x: Tensor<R, D>, perm: readonly number[]): Tensor<R, D> {
  const ok = perm.length === x.rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  if (!ok) fail("permute", [["x", x]], { perm }, "perm must be a permutation of the axes");
  if (perm.every((p, i) => p === i)) return x;
  return node({ op: "permute", inputs: [x], attrs: { perm } }, perm.map((p) => x.shape[p]!), x.dtype);
}

/** x[starts[0]:ends[0], ...] with step 1. Negative indices count from the end. */
export function slice<R extends number, D extends DType>(
  x: Tensor<R, D>,
  starts: readonly number[],
  ends: readonly number[],
): Tensor<R, D> {
  if (starts.length !== x.rank || ends.length !== x.rank) {
    fail("slice", [["x", x]], { starts, ends }, "starts and ends need one entry per axis");
  }
  const s = starts.map((v, i) => (v < 0 ? v + x.shape[i]! : v));
  const e = ends.map((v, i) => (v < 0 ? v + x.shape[i]! : v));
  s.forEach((v, i) => {
    if (!(0 <= v && v < e[i]! && e[i]! <= x.shape[i]!)) {
      fail("slice", [["x", x]], { starts, ends }, `empty or out-of-range slice on axis ${i}`);
    }
  });
  if (s.every((v, i) => v === 0 && e[i] === x.shape[i])) return x;
  return node({ op: "slice", inputs: [x], attrs: { starts: s, ends: e } }, s.map((v, i) => e[i]! - v), x.dtype);
}

/** Constant padding: pads[i] = [before, after] elements on axis i, filled with `value`. */
export function pad<R extends number, D extends DType>(x: Tensor<R, D>, pads: readonly Pair[], value = 0): Tensor<R, D> {
  if (pads.length !== x.rank || pads.some(([a, b]) => a < 0 || b < 0 || !Number.isInteger(a + b))) {
    fail("pad", [["x", x]], { pads }, "one non-negative [before, after] pair per axis");
  }
  if (pads.every(([a, b]) => a === 0 && b === 0)) return x;
  return node(
    { op: "pad", inputs: [x], attrs: { pads, value } },
    x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]),
    x.dtype,
  );
}

/** true when T is a union: the rank or dtype inferred from tensors that do not agree. */
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/** Joins tensors along an axis; all other axes must agree (and ranks and dtypes, in the types). */
export function concat<R extends number, D extends DType>(
  xs: readonly Tensor<R, D>[] & (true extends IsUnion<R> | IsUnion<D> ? never : unknown),
  axis: number,
): Tensor<R, D> {
  const first = xs[0];
  if (first === undefined) throw new ShapeError("concat", [], { axis }, "needs at least one tensor");
  const a = normAxis(axis, first.rank);
  const named = xs.map((t, i) => [`x${i}`, t] as const);
  if (a === undefined) fail("concat", named, { axis }, "axis out of range");
  for (const t of xs) {
    if (t.dtype !== first.dtype) fail("concat", named, { axis }, "dtypes differ");
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      fail("concat", named, { axis }, "shapes differ off the concatenation axis");
    }
  }
  if (xs.length === 1) return first;
  const shape = first.shape.map((d, i) => (i === a ? xs.reduce((s, t) => s + t.shape[a]!, 0) : d));
  return node({ op: "concat", inputs: xs, attrs: { axis: a } }, shape, first.dtype);
}

// ---------------------------------------------------------------------------------------------
// Convolution

export interface ConvOpts {
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly dilation?: number | Pair;
}

const pair = (v: number | Pair | undefined, dflt: number): Pair =>
  v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : v;

function convAttrs(opts: ConvOpts) {
  return { stride: pair(opts.stride, 1), padding: pair(opts.padding, 0), dilation: pair(opts.dilation, 1) };
}

function checkConvAttrs(op: string, operands: [string, Tensor][], a: ReturnType<typeof convAttrs>): void {
  const bad = [...a.stride, ...a.dilation].some((v) => !Number.isInteger(v) || v < 1) ||
    a.padding.some((v) => !Number.isInteger(v) || v < 0);
  if (bad) fail(op, operands, a, "stride and dilation must be positive integers, padding non-negative");
}

/**
 * 2-D cross-correlation, NCHW, groups 1:
 *   y[n,o,i,j] = b[o] + sum_{c,u,v} x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w] * w[o,c,u,v]
 * with x read as 0 outside the input. Output size: convOutSize.
 */
export function conv2d(x: F32<4>, w: F32<4>, bias?: F32<1>, opts: ConvOpts = {}): F32<4> {
  const a = convAttrs(opts);
  const operands: [string, Tensor][] = [["input", x], ["weight", w]];
  if (bias) operands.push(["bias", bias]);
  requireRank("conv2d", "input", x, 4, a, operands);
  requireRank("conv2d", "weight", w, 4, a, operands);
  checkConvAttrs("conv2d", operands, a);
  for (const [name, t] of operands) requireDType("conv2d", name, t, ["f32"], operands, a);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, ci, kh, kw] = w.shape as [number, number, number, number];
  if (c !== ci) fail("conv2d", operands, a, `input has ${c} channels, weight expects ${ci}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) fail("conv2d", operands, a, `bias must be [${o}]`);
  const oh = convOutSize(h, kh, a.stride[0], a.padding[0], a.dilation[0]);
  const ow = convOutSize(wd, kw, a.stride[1], a.padding[1], a.dilation[1]);
  if (oh < 1 || ow < 1) fail("conv2d", operands, a, `output would be ${oh}x${ow}: the window does not fit`);
  return node({ op: "conv2d", inputs: bias ? [x, w, bias] : [x, w], attrs: a }, [n, o, oh, ow], "f32");
}

/**
 * The input-gradient of conv2d (the adjoint in x), a first-class op:
 *   dx[n,c,h,w] = sum_{o,u,v : i = (h + p_h - u*d_h)/s_h integral and in range, likewise j}
 *                 dy[n,o,i,j] * w[o,c,u,v]
 * `inputSize` fixes H and W, which the forward size rule cannot recover when strides floor.
 */
export function conv2dInputGrad(dy: F32<4>, w: F32<4>, inputSize: Pair, opts: ConvOpts = {}): F32<4> {
  const a = { ...convAttrs(opts), inputSize };
  const operands: [string, Tensor][] = [["gradOutput", dy], ["weight", w]];
  requireRank("conv2dInputGrad", "gradOutput", dy, 4, a, operands);
  requireRank("conv2dInputGrad", "weight", w, 4, a, operands);
  checkConvAttrs("conv2dInputGrad", operands, a);
  const [n, o, oh, ow] = dy.shape as [number, number, number, number];
  const [wo, c, kh, kw] = w.shape as [number, number, number, number];
  if (o !== wo) fail("conv2dInputGrad", operands, a, `gradOutput has ${o} channels, weight has ${wo} outputs`);
  const eh = convOutSize(inputSize[0], kh, a.stride[0], a.padding[0], a.dilation[0]);
  const ew = convOutSize(inputSize[1], kw, a.stride[1], a.padding[1], a.dilation[1]);
  if (eh !== oh || ew !== ow) {
    fail("conv2dInputGrad", operands, a, `an input of ${inputSize.join("x")} gives ${eh}x${ew}, not ${oh}x${ow}`);
  }
  return node({ op: "conv2dInputGrad", inputs: [dy, w], attrs: a }, [n, c, inputSize[0], inputSize[1]], "f32");
}

/**
 * The weight-gradient of conv2d (the adjoint in w), a first-class op:
 *   dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j] * x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w]
 */
export function conv2dWeightGrad(x: F32<4>, dy: F32<4>, kernel: Pair, opts: ConvOpts = {}): F32<4> {
  const a = { ...convAttrs(opts), kernel };
  const operands: [string, Tensor][] = [["input", x], ["gradOutput", dy]];
  requireRank("conv2dWeightGrad", "input", x, 4, a, operands);
  requireRank("conv2dWeightGrad", "gradOutput", dy, 4, a, operands);
  checkConvAttrs("conv2dWeightGrad", operands, a);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [dn, o, oh, ow] = dy.shape as [number, number, number, number];
  if (n !== dn) fail("conv2dWeightGrad", operands, a, "batch sizes differ");
  const eh = convOutSize(h, kernel[0], a.stride[0], a.padding[0], a.dilation[0]);
  const ew = convOutSize(wd, kernel[1], a.stride[1], a.padding[1], a.dilation[1]);
  if (eh !== oh || ew !== ow) fail("conv2dWeightGrad", operands, a, `input gives ${eh}x${ew}, not ${oh}x${ow}`);
  return node({ op: "conv2dWeightGrad", inputs: [x, dy], attrs: a }, [o, c, kernel[0], kernel[1]], "f32");
}

// ---------------------------------------------------------------------------------------------
// Pooling and resizing

export interface PoolOpts {
  readonly kernel: number | Pair;
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly ceilMode?: boolean;
}

/**
 * Max pooling, NCHW: y[n,c,i,j] = max over the window at (i*s - p, j*s - p) of the valid input
 * positions (padding never wins). Output size: poolOutSize (PyTorch's rule, ceil mode included).
 */
export function maxPool2d(x: F32<4>, opts: PoolOpts): F32<4> {
  const kernel = pair(opts.kernel, 1);
  const a = { kernel, stride: pair(opts.stride, kernel[0]), padding: pair(opts.padding, 0), ceilMode: opts.ceilMode ?? false };
  requireRank("maxPool2d", "input", x, 4, a);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (a.padding[0] * 2 > kernel[0] || a.padding[1] * 2 > kernel[1]) {
    fail("maxPool2d", [["input", x]], a, "padding must be at most half the kernel");
  }
  const oh = poolOutSize(h, kernel[0], a.stride[0], a.padding[0], 1, a.ceilMode);
  const ow = poolOutSize(w, kernel[1], a.stride[1], a.padding[1], 1, a.ceilMode);
  if (oh < 1 || ow < 1) fail("maxPool2d", [["input", x]], a, `output would be ${oh}x${ow}`);
  return node({ op: "maxPool2d", inputs: [x], attrs: a }, [n, c, oh, ow], "f32");
}

/**
 * Gradient of maxPool2d in gather form: dx[p] = sum of dy over the windows whose (first, in
 * scan order) maximum is p. Each input position gathers; nothing is scattered.
 */
export function maxPool2dGrad(x: F32<4>, dy: F32<4>, attrs: import("./ir").PoolAttrs): F32<4> {
  const expected = maxPool2d(x, attrs).shape;
  if (!sameShape(expected, dy.shape)) {
    fail("maxPool2dGrad", [["input", x], ["gradOutput", dy]], { ...attrs }, `gradOutput must be ${showShape(expected)}`);
  }
  return node({ op: "maxPool2dGrad", inputs: [x, dy], attrs }, x.shape, "f32");
}

/**
 * Bilinear resize of the last two axes, PyTorch's `interpolate(mode='bilinear')`.
 * alignCorners: src = dst * (in-1)/(out-1) (0 when out = 1).
 * otherwise:    src = max((dst + 0.5) * in/out - 0.5, 0).
 * Then i0 = floor(src), i1 = min(i0+1, in-1), l = src - i0; y = (1-l) x[i0] + l x[i1], per axis.
 */
export function resize(x: F32<4>, size: Pair, opts: { readonly alignCorners: boolean }): F32<4> {
  const a = { size, alignCorners: opts.alignCorners };
  requireRank("resize", "input", x, 4, a);
  if (size.some((d) => !Number.isInteger(d) || d < 1)) fail("resize", [["input", x]], a, "size must be positive integers");
  const [n, c] = x.shape as [number, number];
  return node({ op: "resize", inputs: [x], attrs: a }, [n, c, size[0], size[1]], "f32");
}

/** The adjoint of resize (linear in dy), back to the input size `size`, in gather form. */
export function resizeGrad(dy: F32<4>, size: Pair, opts: { readonly alignCorners: boolean }): F32<4> {
  const a = { size, alignCorners: opts.alignCorners };
  requireRank("resizeGrad", "gradOutput", dy, 4, a);
  const [n, c] = dy.shape as [number, number];
  return node({ op: "resizeGrad", inputs: [dy], attrs: a }, [n, c, size[0], size[1]], "f32");
}

// ---------------------------------------------------------------------------------------------
// Normalisation, classification, contraction

/** softmax along an axis: e^(x - max) / sum e^(x - max). */
export function softmax<R extends number>(x: F32<R>, axis: number): F32<R> {
  const a = normAxis(axis, x.rank);
  if (a === undefined) fail("softmax", [["x", x]], { axis }, "axis out of range");
  return node({ op: "softmax", inputs: [x], attrs: { axis: a } }, x.shape, "f32");
}

/** log softmax along an axis: x - max - log sum e^(x - max). */
export function logSoftmax<R extends number>(x: F32<R>, axis: number): F32<R> {
  const a = normAxis(axis, x.rank);
  if (a === undefined) fail("logSoftmax", [["x", x]], { axis }, "axis out of range");
  return node({ op: "logSoftmax", inputs: [x], attrs: { axis: a } }, x.shape, "f32");
}

function checkChannelVectors(op: string, x: Tensor, vecs: [string, Tensor][], eps: number): void {
  requireRank(op, "input", x, 4, { eps }, [["input", x], ...vecs]);
  const c = x.shape[1]!;
  for (const [name, v] of vecs) {
    if (v.rank !== 1 || v.shape[0] !== c) fail(op, [["input", x], ...vecs], { eps }, `${name} must be [${c}]`);
  }
}

/**
 * Batch norm with fixed statistics (PyTorch eval mode):
 *   y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
 */
export function batchNormEval(x: F32<4>, weight: F32<1>, bias: F32<1>, runningMean: F32<1>, runningVar: F32<1>, eps = 1e-5): F32<4> {
  checkChannelVectors("batchNormEval", x, [["weight", weight], ["bias", bias], ["runningMean", runningMean], ["runningVar", runningVar]], eps);
  return node({ op: "batchNormEval", inputs: [x, weight, bias, runningMean, runningVar], attrs: { eps } }, x.shape, "f32");
}

/**
 * Batch norm with batch statistics (PyTorch train mode), per channel c over n, h, w (M values):
 *   mu = mean x,  var = mean (x - mu)^2 (biased),  y = (x - mu) / sqrt(var + eps) * weight + bias.
 * The running-statistics update is a separate expression (nn.ts: batchNorm2d).
 */
export function batchNormTrain(x: F32<4>, weight: F32<1>, bias: F32<1>, eps = 1e-5): F32<4> {
  checkChannelVectors("batchNormTrain", x, [["weight", weight], ["bias", bias]], eps);
  const m = x.shape[0]! * x.shape[2]! * x.shape[3]!;
  if (m < 2) fail("batchNormTrain", [["input", x], ["weight", weight], ["bias", bias]], { eps }, "needs more than one value per channel");
  return node({ op: "batchNormTrain", inputs: [x, weight, bias], attrs: { eps } }, x.shape, "f32");
}

/** Matrix product [M,K] x [K,N] -> [M,N]. */
export function matmul(a: F32<2>, b: F32<2>): F32<2> {
  requireRank("matmul", "a", a, 2, {}, [["a", a], ["b", b]]);
  requireRank("matmul", "b", b, 2, {}, [["a", a], ["b", b]]);
  if (a.shape[1] !== b.shape[0]) fail("matmul", [["a", a], ["b", b]], {}, "inner dimensions differ");
  return node({ op: "matmul", inputs: [a, b], attrs: {} }, [a.shape[0]!, b.shape[1]!], "f32");
}

/** Identity in the forward pass; no gradient flows through it (PyTorch's detach). */
export function stopGradient<R extends number, D extends DType>(x: Tensor<R, D>): Tensor<R, D> {
  return node({ op: "stopGradient", inputs: [x], attrs: {} }, x.shape, x.dtype);
}

function checkCrossEntropy(op: string, logits: Tensor, labels: Tensor, ignoreIndex: number): void {
  const operands: [string, Tensor][] = [["logits", logits], ["labels", labels]];
  requireDType(op, "logits", logits, ["f32"], operands, { ignoreIndex });
  requireDType(op, "labels", labels, ["i32"], operands, { ignoreIndex });
  const expected = [logits.shape[0], ...logits.shape.slice(2)];
  if (logits.rank < 2 || !sameShape(expected as number[], labels.shape)) {
    fail(op, operands, { ignoreIndex }, "labels must be logits' shape without the class axis 1");
  }
}

/**
 * Softmax cross-entropy over the class axis 1, PyTorch's CrossEntropyLoss(ignore_index):
 *   loss = sum_{p valid} -log softmax(x_p)[label_p] / #valid,  valid = label != ignoreIndex,
 * and 0 (not NaN) when no pixel is valid, as the official CrossEntropy2d. A label outside
 * [0, C) that is not ignoreIndex counts as invalid.
 */
export function softmaxCrossEntropy(logits: F32, labels: I32, opts: { readonly ignoreIndex?: number } = {}): F32<0> {
  const ignoreIndex = opts.ignoreIndex ?? 255;
  checkCrossEntropy("softmaxCrossEntropy", logits, labels, ignoreIndex);
  return node({ op: "softmaxCrossEntropy", inputs: [logits, labels], attrs: { ignoreIndex } }, [], "f32");
}

/** d softmaxCrossEntropy / d logits = (softmax(x) - onehot(label)) * valid / max(#valid, 1). */
export function softmaxCrossEntropyGrad(logits: F32, labels: I32, opts: { readonly ignoreIndex?: number } = {}): F32 {
  const ignoreIndex = opts.ignoreIndex ?? 255;
  checkCrossEntropy("softmaxCrossEntropyGrad", logits, labels, ignoreIndex);
  return node({ op: "softmaxCrossEntropyGrad", inputs: [logits, labels], attrs: { ignoreIndex } }, logits.shape, "f32");
}
