// Views: ops that only move elements (reshape, permute, broadcast, slice, pad, concat). Codegen
// never stores them: a view rewrites the index at which its operand is read.

import type { DType, F32, Pair, Shape, Tensor } from "../ir";
import { numel, stridesOf } from "../ir";
import { ShapeError, broadcastShapes, normAxis, showShape } from "../shape";
import { fail, forEachIndex, node, sameShape } from "./build";
import type { OpDef } from "./def";
import { sum } from "./reductions";

export interface ViewAttrs {
  reshape: { readonly shape: Shape };
  permute: { readonly perm: readonly number[] };
  broadcastTo: { readonly shape: Shape };
  slice: { readonly starts: readonly number[]; readonly ends: readonly number[] };
  pad: { readonly pads: readonly Pair[]; readonly value: number };
  concat: { readonly axis: number };
}

/** Same elements in row-major order, new shape; one entry may be -1 (inferred). */
export function reshape<const S extends Shape, D extends DType>(x: Tensor<number, D>, shape: S): Tensor<S["length"], D> {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1 || known.some((d) => !Number.isInteger(d) || d < 0)) fail("reshape", [["x", x]], { shape }, "invalid target shape");
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

/**
 * NumPy broadcasting of `x` to `shape`: missing leading axes are added (a reshape), then axes
 * of length 1 are repeated (a broadcastTo node). Anything else is a ShapeError.
 */
export function broadcastTo<const S extends Shape, D extends DType>(x: Tensor<number, D>, shape: S): Tensor<S["length"], D> {
  if (sameShape(x.shape, shape)) return x as Tensor<S["length"], D>;
  const b = broadcastShapes(x.shape, shape);
  if (b === undefined || !sameShape(b, shape)) {
    fail("broadcastTo", [["x", x]], { shape }, `cannot broadcast ${showShape(x.shape)} to ${showShape(shape)}`);
  }
  const lifted = x.rank === shape.length ? x : reshape(x, [...new Array<number>(shape.length - x.rank).fill(1), ...x.shape]);
  if (sameShape(lifted.shape, shape)) return lifted as Tensor<S["length"], D>;
  return node({ op: "broadcastTo", inputs: [lifted], attrs: { shape } }, shape, x.dtype);
}

/** x[starts[0]:ends[0], ...] with step 1. Negative indices count from the end. */
export function slice<R extends number, D extends DType>(x: Tensor<R, D>, starts: readonly number[], ends: readonly number[]): Tensor<R, D> {
  if (starts.length !== x.rank || ends.length !== x.rank) fail("slice", [["x", x]], { starts, ends }, "starts and ends need one entry per axis");
  const s = starts.map((v, i) => (v < 0 ? v + x.shape[i]! : v));
  const e = ends.map((v, i) => (v < 0 ? v + x.shape[i]! : v));
  s.forEach((v, i) => {
    if (!(0 <= v && v < e[i]! && e[i]! <= x.shape[i]!)) fail("slice", [["x", x]], { starts, ends }, `empty or out-of-range slice on axis ${i}`);
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
  return node({ op: "pad", inputs: [x], attrs: { pads, value } }, x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]), x.dtype);
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

/** The adjoint of slicing: zero padding back to the input shape. */
function unslice(dy: F32, x: Tensor, starts: readonly number[], ends: readonly number[]): F32 {
  return pad(dy, starts.map((s, i): Pair => [s, x.shape[i]! - ends[i]!]));
}

const sliceAxis = (t: F32, axis: number, from: number, to: number): F32 =>
  slice(t, t.shape.map((_, i) => (i === axis ? from : 0)), t.shape.map((d, i) => (i === axis ? to : d)));

/** An index clamped into [0, n): views read in range even where a select discards the value. */
const clampIdx = (e: string, n: number) => (n === 1 ? "0i" : `clamp(${e}, 0i, ${n - 1}i)`);

export const VIEW_OPS = {
  // Row-major order is kept: the flat offset in the output is the flat offset in the input.
  reshape: {
    evaluate: (_n, [x], out) => out.set(x!.data),
    vjp: (n, dy) => [reshape(dy, n.inputs[0]!.shape)],
    lowering: {
      kind: "view",
      wgsl: (c) => {
        const flatExpr = c.flatIndex(c.shape, c.idx);
        const flat = /^\w+$/.test(flatExpr) ? flatExpr : c.bind("flat", "f", flatExpr);
        return c.arg(0, c.unflatten(c.node.inputs[0]!.shape, flat));
      },
    },
    gradcheck: { kind: "cases" },
  },
  permute: {
    evaluate: (n, [x], out, shape) => {
      const xs = stridesOf(x!.shape);
      const perm = n.attrs.perm;
      forEachIndex(shape, (flat, idx) => {
        let src = 0;
        for (let k = 0; k < perm.length; k++) src += idx[k]! * xs[perm[k]!]!;
        out[flat] = x!.data[src]!;
      });
    },
    vjp: (n, dy) => [permute(dy, n.attrs.perm.map((_, i) => n.attrs.perm.indexOf(i)))],
    lowering: {
      kind: "view",
      wgsl: (c) => {
        const at = new Array<string>(c.idx.length);
        c.node.attrs.perm.forEach((p, i) => (at[p] = c.idx[i]!));
        return c.arg(0, at);
      },
    },
    gradcheck: { kind: "cases" },
  },
  // Broadcasting repeats axes of length 1: their cotangent is the sum over the repeats.
  broadcastTo: {
    evaluate: (_n, [x], out, shape) => {
      const xs = stridesOf(x!.shape).map((s, i) => (x!.shape[i] === 1 ? 0 : s));
      forEachIndex(shape, (flat, idx) => {
        let src = 0;
        for (let a = 0; a < idx.length; a++) src += idx[a]! * xs[a]!;
        out[flat] = x!.data[src]!;
      });
    },
    vjp: (n, dy) => {
      const x = n.inputs[0]!;
      return [sum(dy, x.shape.flatMap((d, i) => (d === 1 && n.attrs.shape[i] !== 1 ? [i] : [])), { keepdims: true })];
    },
    lowering: { kind: "view", wgsl: (c) => c.arg(0, c.node.inputs[0]!.shape.map((d, a) => (d === 1 ? "0i" : c.idx[a]!))) },
    gradcheck: { kind: "cases" },
  },
  slice: {
    evaluate: (n, [x], out, shape) => {
      const xs = stridesOf(x!.shape);
      forEachIndex(shape, (flat, idx) => {
        let src = 0;
        for (let a = 0; a < idx.length; a++) src += (idx[a]! + n.attrs.starts[a]!) * xs[a]!;
        out[flat] = x!.data[src]!;
      });
    },
    vjp: (n, dy) => [unslice(dy, n.inputs[0]!, n.attrs.starts, n.attrs.ends)],
    lowering: {
      kind: "view",
      wgsl: (c) => c.arg(0, c.idx.map((e, a) => (c.node.attrs.starts[a] === 0 ? e : `(${e} + ${c.node.attrs.starts[a]}i)`))),
    },
    gradcheck: { kind: "cases" },
  },
  // Outside the input the value is the pad value; its cotangent is the slice of the input.
  pad: {
    evaluate: (n, [x], out, shape) => {
      const xs = stridesOf(x!.shape);
      forEachIndex(shape, (flat, idx) => {
        let src = 0;
        for (let a = 0; a < idx.length; a++) {
          const i = idx[a]! - n.attrs.pads[a]![0];
          if (i < 0 || i >= x!.shape[a]!) {
            out[flat] = n.attrs.value;
            return;
          }
          src += i * xs[a]!;
        }
        out[flat] = x!.data[src]!;
      });
    },
    vjp: (n, dy) => {
      const x = n.inputs[0]!;
      return [slice(dy, n.attrs.pads.map((p) => p[0]), n.attrs.pads.map((p, i) => p[0] + x.shape[i]!))];
    },
    lowering: {
      kind: "view",
      wgsl: (c) => {
        const { pads, value } = c.node.attrs;
        const src = c.node.inputs[0]!;
        const shifted = c.idx.map((e, a) => (pads[a]![0] === 0 ? e : `(${e} - ${pads[a]![0]}i)`));
        const conds = shifted.flatMap((e, a) => (pads[a]![0] === 0 && pads[a]![1] === 0 ? [] : [`${e} >= 0i`, `${e} < ${src.shape[a]}i`]));
        const inner = c.arg(0, shifted.map((e, a) => clampIdx(e, src.shape[a]!)));
        return c.value(`select(${c.literal(value, c.dtype)}, ${inner}, ${conds.join(" && ")})`);
      },
    },
    gradcheck: { kind: "cases" },
  },
  // Each operand's cotangent is its slice of dy.
  concat: {
    evaluate: (n, args, out, shape) => {
      const os = stridesOf(shape);
      const axis = n.attrs.axis;
      let offset = 0;
      for (const v of args) {
        forEachIndex(v.shape, (flat, idx) => {
          let dst = 0;
          for (let a = 0; a < idx.length; a++) dst += (idx[a]! + (a === axis ? offset : 0)) * os[a]!;
          out[dst] = v.data[flat]!;
        });
        offset += v.shape[axis]!;
      }
    },
    vjp: (n, dy) => {
      let at = 0;
      return n.inputs.map((x) => {
        const part = sliceAxis(dy, n.attrs.axis, at, at + x.shape[n.attrs.axis]!);
        at += x.shape[n.attrs.axis]!;
        return part;
      });
    },
    lowering: {
      kind: "view",
      // A chain of selects on the concatenation axis, each operand read at its local index.
      wgsl: (c) => {
        const axis = c.node.attrs.axis;
        let at = 0;
        const parts = c.node.inputs.map((x, i) => {
          const from = at;
          at += x.shape[axis]!;
          const local = c.idx.map((e, a) => (a === axis ? clampIdx(from === 0 ? e : `(${e} - ${from}i)`, x.shape[axis]!) : e));
          return { value: c.arg(i, local), end: at };
        });
        let expr = parts[parts.length - 1]!.value;
        for (let i = parts.length - 2; i >= 0; i--) expr = `select(${expr}, ${parts[i]!.value}, ${c.idx[axis]} < ${parts[i]!.end}i)`;
        return c.value(expr);
      },
    },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof ViewAttrs]: OpDef<K> };
