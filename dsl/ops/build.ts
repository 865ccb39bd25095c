// What every builder shares: node creation and the checks that name the operand at fault.

import { type DType, type Node, type Pair, type Shape, type Tensor, makeTensor } from "../ir";
import { ShapeError } from "../shape";

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

export function node<R extends number, D extends DType>(n: Node, shape: Shape, dtype: D): Tensor<R, D> {
  return makeTensor<R, D>(n, shape, dtype);
}

export type Operands = readonly (readonly [string, Tensor])[];

export function fail(op: string, operands: Operands, attrs: Record<string, unknown>, reason: string): never {
  throw new ShapeError(
    op,
    operands.map(([n, t]) => [n, t.shape] as const),
    attrs,
    reason,
  );
}

// Both name every operand of the op (`operands`, default just `t`), as a ShapeError must.
export function requireDType(op: string, name: string, t: Tensor, allowed: readonly DType[], operands: Operands = [[name, t]], attrs = {}): void {
  if (!allowed.includes(t.dtype)) {
    fail(op, operands, attrs, `${name} has dtype ${t.dtype}, expected ${allowed.join(" or ")}`);
  }
}

export function requireRank(op: string, name: string, t: Tensor, rank: number, attrs = {}, operands: Operands = [[name, t]]): void {
  if (t.rank !== rank) fail(op, operands, attrs, `${name} must have rank ${rank}`);
}

export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Integer results of i32 arithmetic wrap like the GPU's two's complement. */
export const wrapI32 = (v: number): number => v | 0;

/** An attribute given as one number or a pair, as a pair (PyTorch's `int or tuple`). */
export const pair = (v: number | Pair | undefined, dflt: number): Pair => (v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : v);

/**
 * Sums `visit`'s terms into float64 slots, one per element of `out` (rounded once, on store):
 * the reference's accumulation for convolutions and their adjoints.
 */
export function accumulate(out: { readonly length: number }, visit: (add: (at: number, v: number) => void) => void): Float64Array {
  const acc = new Float64Array(out.length);
  visit((at, v) => {
    acc[at]! += v;
  });
  return acc;
}

/** Calls `f(flatIndex, multiIndex)` for every element of `shape` in row-major order. */
export function forEachIndex(shape: Shape, f: (flat: number, idx: number[]) => void): void {
  let n = 1;
  for (const d of shape) n *= d;
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(flat, idx);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
}
