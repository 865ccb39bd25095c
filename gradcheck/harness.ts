// Finite-difference checks of the VJP table (dsl/grad.ts, each op's record in dsl/ops/), run
// through the reference interpreter. This folder is test tooling, outside production dsl/.
//
// A case is a small graph built on `input` nodes plus a seed its input values are drawn from.
// Its outputs y_k are folded into one scalar by a fixed random projection
//   L = sum_k sum(y_k * r_k),  r_k ~ U(-1, 1) drawn from the case's seed,
// so every output element enters L with its own weight and a wrong cotangent anywhere shows
// up in dL/dx. For every element x_i of every differentiated input we compare
//   analytic:  grad(L, inputs), a graph built by grad.ts, evaluated in float64;
//   numeric:   (L(x + h e_i) - L(x - h e_i)) / 2h,  h = 1e-6, also in float64.
//
// Tolerance |a - n| <= 1e-6 + 1e-4 |n|. The central difference errs by h^2/6 |L'''| (about
// 1e-13 here) plus rounding, 2^-52 |L| / h, which is ~2e-10 |L|; every case is small and
// well-conditioned (|L| well below 100), so this is under 1e-7, an order below the absolute
// term. A wrong VJP (a missing factor, a sign, a dropped term, a misrouted index) is an error
// of the size of the gradient itself, orders above the relative term.
//
// Kinks: relu, abs, maximum, max and max-pooling are not differentiable where an input sits on
// a kink (0, or a tie). Case generators keep every such input at least 0.05 away from its kink,
// which is 5e4 steps h, so the +-h probe never crosses one; likewise log, sqrt, rsqrt, pow and
// div draw their inputs away from the poles at 0. When a case fails anyway, the report says
// whether the one-sided differences disagree, i.e. whether it is a kink the generator missed
// rather than a wrong derivative.
//
// Cases come from fast-check arbitraries (shapes, attributes, a value seed) under a fixed seed,
// with a bounded number of runs per op, so a run is deterministic and its failures replay.

import fc from "fast-check";
import { type Bool, type DType, type F32, type I32, type OpName, type Shape, type Tensor, VJP, evaluate, type Feeds, grad as reverseGrad, isDifferentiable, numel, showShape, topoSort } from "../dsl/index";
import * as op from "../dsl/ops";
import { fnv1a32, streamFor } from "../format/init";
import { type Dist, uniform } from "../dsl/ops/def";

export type { Dist };

// ---------------------------------------------------------------------------------------------
// Cases

export interface InputSpec {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly dist: Dist;
  /** Whether the check differentiates with respect to this input. */
  readonly wrt: boolean;
}

/** Typed access to a case's inputs while its graph is built; a wrong dtype or rank is a generator bug. */
export interface CaseInputs {
  f(name: string): F32;
  f4(name: string): F32<4>;
  f2(name: string): F32<2>;
  f1(name: string): F32<1>;
  f0(name: string): F32<0>;
  i(name: string): I32;
  b(name: string): Bool;
}

export interface GradCase {
  /** Shapes and attributes, enough to rebuild the case by hand. */
  readonly label: string;
  /** Seeds every input's values (per input name) and the projection. */
  readonly seed: number;
  /** Every input node the graph reads, by name, including ones the builder declares itself. */
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly build: (t: CaseInputs) => Tensor | readonly Tensor[];
}

/** One row of the report: the cases of one VJP entry, or of a composite (losses, optimizers). */
export interface OpCheck {
  readonly name: string;
  /** The VJP entry the row covers; every case's graph must contain it. */
  readonly op?: OpName;
  readonly cases: fc.Arbitrary<GradCase>;
}

/** Draws n values of a distribution from a uint32 stream. */
export function drawValues(dist: Dist, n: number, next: () => number): number[] {
  const u = () => (next() + 0.5) / 4294967296; // uniform in (0, 1)
  const int = (lo: number, hi: number) => lo + Math.min(Math.floor(u() * (hi - lo + 1)), hi - lo);
  switch (dist.kind) {
    case "uniform":
      return Array.from({ length: n }, () => dist.lo + (dist.hi - dist.lo) * u());
    case "awayFromZero":
      return Array.from({ length: n }, () => (u() < 0.5 ? -1 : 1) * (dist.margin + (dist.hi - dist.margin) * u()));
    case "lattice":
      return Array.from({ length: n }, () => dist.offset + dist.step * int(-dist.count, dist.count));
    case "distinct": {
      const ranks = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = int(0, i);
        [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
      }
      return ranks.map((r) => (r - (n - 1) / 2 + 0.5 * u()) * dist.spacing);
    }
    case "labels":
      return Array.from({ length: n }, () => (u() < dist.ignoreRate ? dist.ignoreIndex : int(0, dist.classes - 1)));
    case "mask":
      return Array.from({ length: n }, () => (u() < 0.5 ? 1 : 0));
    default: {
      const never: never = dist;
      throw new Error(`unknown distribution ${JSON.stringify(never)}`);
    }
  }
}

function storage(dtype: DType, values: readonly number[]): Float64Array | Int32Array | Uint8Array {
  return dtype === "f32" ? Float64Array.from(values) : dtype === "i32" ? Int32Array.from(values) : Uint8Array.from(values);
}

// ---------------------------------------------------------------------------------------------
// Checking one case

export interface Tolerance {
  readonly h: number;
  readonly atol: number;
  readonly rtol: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { h: 1e-6, atol: 1e-6, rtol: 1e-4 };

/** The gradient under test; `grad` from grad.ts unless a test substitutes a broken one. */
export type GradientFn = (loss: F32<0>, wrt: readonly Tensor[]) => F32[];

export interface Mismatch {
  readonly input: string;
  readonly index: number;
  readonly analytic: number;
  readonly numeric: number;
  /** The one-sided differences disagree far beyond curvature: the step crosses a kink. */
  readonly kink: boolean;
}

export interface CaseResult {
  readonly ok: boolean;
  /** max over elements of |a - n| / (atol + rtol |n|); at most 1 when the case passes. */
  readonly worst: number;
  readonly mismatches: readonly Mismatch[];
  /** Elements compared. */
  readonly elements: number;
  /** The ops of the case's graph, to confirm a row really covers its op. */
  readonly ops: ReadonlySet<OpName>;
}

/** A graph built from a case, with the projection loss and the tensors to differentiate. */
interface BuiltCase {
  readonly loss: F32<0>;
  readonly wrt: readonly { readonly name: string; readonly tensor: Tensor }[];
  readonly feeds: Map<string, Float64Array | Int32Array | Uint8Array>;
  readonly ops: ReadonlySet<OpName>;
}

function inputAccess(c: GradCase): CaseInputs {
  const made = new Map<string, Tensor>();
  const get = (name: string, dtype: DType, rank?: number): Tensor => {
    const spec = c.inputs[name];
    if (spec === undefined) throw new Error(`case ${c.label}: no input spec named ${name}`);
    if (spec.dtype !== dtype || (rank !== undefined && spec.shape.length !== rank)) {
      throw new Error(`case ${c.label}: input ${name} is ${spec.dtype} ${showShape(spec.shape)}, read as ${dtype} rank ${rank ?? "any"}`);
    }
    const t = made.get(name) ?? op.input(name, spec.shape, spec.dtype);
    made.set(name, t);
    return t;
  };
  return {
    f: (n) => get(n, "f32") as F32,
    f4: (n) => get(n, "f32", 4) as F32<4>,
    f2: (n) => get(n, "f32", 2) as F32<2>,
    f1: (n) => get(n, "f32", 1) as F32<1>,
    f0: (n) => get(n, "f32", 0) as F32<0>,
    i: (n) => get(n, "i32") as I32,
    b: (n) => get(n, "bool") as Bool,
  };
}

const PROJECTION = "__projection";

function buildCase(c: GradCase): BuiltCase {
  const built = c.build(inputAccess(c));
  const outputs = (Array.isArray(built) ? built : [built]) as readonly Tensor[];
  const feeds = new Map<string, Float64Array | Int32Array | Uint8Array>();
  const terms = outputs.map((y, k) => {
    if (y.dtype !== "f32") throw new Error(`case ${c.label}: output ${k} is ${y.dtype}, not f32`);
    const name = `${PROJECTION}${k}`;
    feeds.set(name, Float64Array.from(drawValues(uniform(-1, 1), numel(y.shape), streamFor(c.seed, name))));
    return op.sum(op.mul(y as F32, op.input(name, y.shape, "f32")));
  });
  const loss = terms.reduce((a, b) => op.add(a, b)) as F32<0>;
  const wrt: { name: string; tensor: Tensor }[] = [];
  const ops = new Set<OpName>();
  for (const t of topoSort([loss])) {
    ops.add(t.node.op);
    if (t.node.op !== "input" || t.node.attrs.name.startsWith(PROJECTION)) continue;
    const name = t.node.attrs.name;
    const spec = c.inputs[name];
    if (spec === undefined) throw new Error(`case ${c.label}: the graph reads ${name}, which has no input spec`);
    feeds.set(name, storage(spec.dtype, drawValues(spec.dist, numel(spec.shape), streamFor(c.seed, name))));
    if (spec.wrt) wrt.push({ name, tensor: t });
  }
  const unused = Object.entries(c.inputs).filter(([n, s]) => s.wrt && !wrt.some((w) => w.name === n));
  if (unused.length > 0) throw new Error(`case ${c.label}: differentiated input ${unused[0]![0]} is not in the graph`);
  return { loss, wrt, feeds, ops };
}

/** Compares the analytic gradient of a case with central differences, element by element. */
export function checkCase(c: GradCase, tol: Tolerance = DEFAULT_TOLERANCE, gradient: GradientFn = reverseGrad): CaseResult {
  const { loss, wrt, feeds, ops } = buildCase(c);
  const grads = gradient(loss, wrt.map((w) => w.tensor));
  const values = evaluate([loss, ...grads], feeds as Feeds, "f64");
  const l0 = values[0]!.data[0]!;
  const lossAt = () => evaluate([loss], feeds as Feeds, "f64")[0]!.data[0]!;
  const mismatches: Mismatch[] = [];
  let worst = 0;
  let elements = 0;
  wrt.forEach(({ name }, k) => {
    const x = feeds.get(name) as Float64Array;
    const analytic = values[k + 1]!.data;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i]!;
      x[i] = xi + tol.h;
      const up = lossAt();
      x[i] = xi - tol.h;
      const down = lossAt();
      x[i] = xi;
      const numeric = (up - down) / (2 * tol.h);
      const a = analytic[i]!;
      const bound = tol.atol + tol.rtol * Math.abs(numeric);
      const ratio = Number.isNaN(a - numeric) ? Infinity : Math.abs(a - numeric) / bound;
      worst = Math.max(worst, ratio);
      elements++;
      if (ratio > 1) {
        // Smooth L: the one-sided differences differ by h L'' (~1e-6 L''); across a kink, by
        // the jump in L' (the size of a projection weight, ~0.1-1).
        const kink = Math.abs((up - l0) / tol.h - (l0 - down) / tol.h) > 1e-3 * (1 + Math.abs(numeric));
        mismatches.push({ input: name, index: i, analytic: a, numeric, kink });
      }
    }
  });
  return { ok: mismatches.length === 0, worst, mismatches, elements, ops };
}

function describeFailure(c: GradCase, r: CaseResult): string {
  const shown = r.mismatches
    .slice(0, 3)
    .map((m) => `${m.input}[${m.index}]: analytic ${m.analytic}, numeric ${m.numeric}${m.kink ? " (step crosses a kink)" : ""}`)
    .join("; ");
  return `${c.label}, seed ${c.seed}: ${r.mismatches.length} of ${r.elements} elements differ; ${shown}`;
}

// ---------------------------------------------------------------------------------------------
// Running rows

export interface RunOptions {
  readonly seed: number;
  readonly numRuns: number;
  readonly tolerance?: Tolerance;
  readonly gradient?: GradientFn;
}

export interface RowResult {
  readonly name: string;
  readonly op: OpName | undefined;
  readonly seed: number;
  readonly cases: number;
  readonly elements: number;
  readonly worst: number;
  /** Undefined when the row passed; else the (shrunk) failing case and how to replay it. */
  readonly failure: string | undefined;
  readonly ms: number;
}

/** Each row's own fast-check seed, so adding a row leaves the cases of the others unchanged. */
export const rowSeed = (seed: number, name: string): number => (seed ^ fnv1a32(name)) | 0;

export function runCheck(check: OpCheck, opts: RunOptions): RowResult {
  const started = performance.now();
  const seed = rowSeed(opts.seed, check.name);
  let worst = 0;
  let elements = 0;
  const property = fc.property(check.cases, (c) => {
    const r = checkCase(c, opts.tolerance, opts.gradient);
    if (check.op !== undefined && !r.ops.has(check.op)) {
      throw new Error(`${c.label}: the graph does not contain ${check.op} (a builder elided it)`);
    }
    if (!r.ok) throw new Error(describeFailure(c, r));
    worst = Math.max(worst, r.worst);
    elements += r.elements;
  });
  const details = fc.check(property, { seed, numRuns: opts.numRuns });
  const failure = details.failed
    ? `${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)} ` +
      `(fast-check seed ${details.seed}, path ${details.counterexamplePath})`
    : undefined;
  return { name: check.name, op: check.op, seed, cases: details.numRuns, elements, worst, failure, ms: performance.now() - started };
}

/** Differentiable ops (not marked nondifferentiable in VJP) that no check covers. */
export function uncoveredOps(checks: readonly OpCheck[]): OpName[] {
  const covered = new Set(checks.map((c) => c.op));
  return (Object.keys(VJP) as OpName[]).filter((name) => isDifferentiable(name) && !covered.has(name));
}

export interface GradcheckReport {
  readonly rows: readonly RowResult[];
  readonly uncovered: readonly OpName[];
  readonly cases: number;
  /** Failed rows plus differentiable ops without a row. */
  readonly failed: number;
}

export function runGradcheck(checks: readonly OpCheck[], opts: RunOptions, onRow?: (r: RowResult) => void): GradcheckReport {
  const rows = checks.map((check) => {
    const row = runCheck(check, opts);
    onRow?.(row);
    return row;
  });
  const uncovered = uncoveredOps(checks);
  const failed = rows.filter((r) => r.failure !== undefined).length + uncovered.length;
  return { rows, uncovered, cases: rows.reduce((s, r) => s + r.cases, 0), failed };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries for shapes and attributes
