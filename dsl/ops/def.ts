// What the registry holds for each op: one record with everything every stage needs.
//
// An op is declared once, in the family file that builds it (sources.ts, unary.ts, binary.ts,
// reductions.ts, views.ts, conv.ts, depthwise.ts, sampling.ts, normalization.ts): its
// attributes (an interface merged into ir.ts's OpAttrs), its builder with the shape rule, and
// this record:
//   evaluate   the reference evaluation (the interpreter is a loop over these);
//   vjp        the derivative, in DSL ops (grad.ts walks the graph with these);
//   lowering   how codegen computes it: an inline WGSL expression (elementwise ops and views),
//              a kernel template, or a decomposition into other ops before scheduling;
//   gradcheck  how the finite-difference check draws its inputs (gradcheck/).
// Each family's table is typed `{ [K in keyof FamilyAttrs]: OpDef<K> }`, and the registry
// (registry.ts) `{ [K in OpName]: OpDef<K> }`: an op without a record, or a record without a
// lowering or a gradient check, does not compile.

import type { DType, NodeOf, OpName, Shape, Tensor, F32 } from "../ir";

export type Data = Float64Array | Float32Array | Int32Array | Uint8Array;

/** A tensor's value in the reference interpreter. */
export interface Value {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly data: Data;
}

/** Writes node n's value, of shape `shape` and dtype `dtype`, into `out` (preallocated). */
export type Evaluate<K extends OpName> = (n: NodeOf<K>, args: readonly Value[], out: Data, shape: Shape, dtype: DType) => void;

/** Cotangents of the inputs, in input order; undefined: no gradient flows to that input. */
export type Cotangents = readonly (Tensor | undefined)[];

/** (node, output cotangent dy, output y) -> input cotangents, written in DSL ops. */
export type Vjp<K extends OpName> = (n: NodeOf<K>, dy: F32, y: Tensor) => Cotangents;

export const NONDIFF = "nondifferentiable" as const;
export type Nondifferentiable = typeof NONDIFF;

/** WGSL helpers codegen shares between ops and templates (codegen/wgsl/expr.ts: HELPERS). */
export type SharedHelper = "isnan" | "max" | "min" | "relu";

/**
 * What an inline lowering sees: the value's index (one i32 WGSL expression per axis) and ways
 * to reach its operands. Codegen implements it (codegen/wgsl/expr.ts: valueAt).
 */
export interface InlineContext<K extends OpName> {
  readonly node: NodeOf<K>;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly idx: readonly string[];
  /** Operand i's WGSL expression at `at` (default: the value's own index). */
  arg(i: number, at?: readonly string[]): string;
  /** A WGSL literal of the dtype (f32 values print their exact float32). */
  literal(value: number, dtype: DType): string;
  /** Includes a shared helper function in the kernel. */
  helper(name: SharedHelper): void;
  /** Includes this op's own helper function `text`, named `name` (emitted once, sorted by name). */
  define(name: string, text: string): void;
  /** Binds expr to a fresh `let` named prefix_N in the current scope, memoised under `key`. */
  bind(key: string, prefix: string, expr: string): string;
  /** Binds a finished value (`let v_N = expr`) and returns its name: a view that computes. */
  value(expr: string): string;
  /** Row-major flat offset of idx in shape, and its inverse. */
  flatIndex(shape: Shape, idx: readonly string[]): string;
  unflatten(shape: Shape, flat: string): string[];
}

/** The WGSL expression of the value at ctx.idx. Elementwise results are bound by the caller. */
export type InlineLowering<K extends OpName> = (ctx: InlineContext<K>) => string;

/**
 * How codegen computes an op.
 *  load         read from the buffer it is fed into (inputs, parameters, state);
 *  source       a value with no operands, computed where read (a constant, an index);
 *  elementwise  an expression of its operands at the same index, recomputed where read;
 *  view         an index rewrite of its operands (or a small gather like bilinear resize);
 *  template     its own kernel (codegen/wgsl/templates/); `operands: "buffers"` when the
 *               template indexes operands many times per output (rule M3 in fusion.ts), and
 *               `epilogue` when it can apply an elementwise epilogue before its store (E1);
 *  decomposed   rewritten into other ops before scheduling (codegen/canonical.ts).
 */
export type Lowering<K extends OpName> =
  | { readonly kind: "load" }
  | { readonly kind: "source"; readonly wgsl: InlineLowering<K> }
  | { readonly kind: "elementwise"; readonly wgsl: InlineLowering<K> }
  | { readonly kind: "view"; readonly wgsl: InlineLowering<K> }
  | { readonly kind: "template"; readonly operands: "buffers" | "expressions"; readonly epilogue: boolean }
  | { readonly kind: "decomposed"; readonly into: (n: NodeOf<K>, inputs: readonly Tensor[], t: Tensor) => Tensor };

/** How gradcheck draws an input's values. Margins keep inputs off kinks and poles. */
export type Dist =
  | { readonly kind: "uniform"; readonly lo: number; readonly hi: number }
  /** |x| in [margin, hi] with a random sign: off the kink of relu, abs, leakyRelu at 0. */
  | { readonly kind: "awayFromZero"; readonly margin: number; readonly hi: number }
  /** offset + step k, k uniform in [-count, count]: two lattices with offsets differing by step/2 never meet. */
  | { readonly kind: "lattice"; readonly step: number; readonly offset: number; readonly count: number }
  /** A random permutation of {0, 1, ..., n-1} spacing, centred, plus jitter below spacing/2: no two values within spacing/2. */
  | { readonly kind: "distinct"; readonly spacing: number }
  /** Class ids in [0, classes), each replaced by ignoreIndex with probability ignoreRate. */
  | { readonly kind: "labels"; readonly classes: number; readonly ignoreIndex: number; readonly ignoreRate: number }
  /** Booleans, true with probability 1/2. */
  | { readonly kind: "mask" };

export const uniform = (lo: number, hi: number): Dist => ({ kind: "uniform", lo, hi });
export const awayFromZero = (margin = 0.05, hi = 2): Dist => ({ kind: "awayFromZero", margin, hi });
export const distinct = (spacing = 0.1): Dist => ({ kind: "distinct", spacing });
export const standard = uniform(-2, 2);
/** Lattices offset by half a step: |a - b| >= 0.1 for every pair, so maximum never ties. */
export const evenLattice: Dist = { kind: "lattice", step: 0.2, offset: 0, count: 8 };
export const oddLattice: Dist = { kind: "lattice", step: 0.2, offset: 0.1, count: 8 };

/**
 * How the finite-difference check covers an op.
 *  none     nondifferentiable (the VJP is NONDIFF): nothing to check;
 *  unary    x drawn from dist, checked once per attribute set in `attrs` (default: {});
 *  binary   a and b drawn from their dists, over broadcast shape pairs;
 *  cases    shapes and attributes need their own generator: gradcheck/cases.ts has one,
 *           keyed by op name, so a missing generator does not compile.
 */
export type Gradcheck<K extends OpName> =
  | { readonly kind: "none" }
  | { readonly kind: "unary"; readonly dist: Dist; readonly attrs?: readonly NodeOf<K>["attrs"][] }
  | { readonly kind: "binary"; readonly a: Dist; readonly b: Dist }
  | { readonly kind: "cases" };

/** The one record of an op. */
export interface OpDef<K extends OpName> {
  readonly evaluate: Evaluate<K>;
  readonly vjp: Vjp<K> | Nondifferentiable;
  readonly lowering: Lowering<K>;
  readonly gradcheck: Gradcheck<K>;
}
