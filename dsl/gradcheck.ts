// Finite-difference checks of the VJP table (grad.ts), run through the reference interpreter.
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
import { type Bool, type DType, type F32, type I32, type OpName, type Shape, type Tensor, numel, topoSort } from "./ir";
import { type Feeds, evaluate } from "./interpret";
import { VJP, grad as reverseGrad, isDifferentiable } from "./grad";
import { fnv1a32, streamFor } from "../format/init";
import * as op from "./ops";
import { convOutSize, showShape } from "./shape";
import * as losses from "./losses";
import * as nn from "./nn";
import * as optim from "./optim";
import { constant, declareModel, param } from "./params";
import { StateThread } from "./program";

// ---------------------------------------------------------------------------------------------
// Cases

/** How an input's values are drawn. Margins keep inputs off kinks and poles (see above). */
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

const f32In = (shape: Shape, dist: Dist, wrt = true): InputSpec => ({ shape, dtype: "f32", dist, wrt });
const uniform = (lo: number, hi: number): Dist => ({ kind: "uniform", lo, hi });
const awayFromZero = (margin = 0.05, hi = 2): Dist => ({ kind: "awayFromZero", margin, hi });
const distinct = (spacing = 0.1): Dist => ({ kind: "distinct", spacing });
const standard = uniform(-2, 2);

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

const dim = (lo: number, hi: number) => fc.integer({ min: lo, max: hi });
const seedA = fc.nat();
const shapeA = (minRank: number, maxRank: number, maxDim: number) =>
  fc.array(dim(1, maxDim), { minLength: minRank, maxLength: maxRank });

/** A shape that broadcasts to `full`: some leading axes dropped and some axes set to 1. */
const broadcastVariantA = (full: Shape) =>
  fc
    .tuple(dim(0, full.length), fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }))
    .map(([drop, ones]) => full.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

/** Two shapes that broadcast together (NumPy rules), often differently. */
const broadcastPairA = shapeA(0, 4, 3).chain((full) => fc.tuple(broadcastVariantA(full), broadcastVariantA(full)));

/** A subset of the axes of a rank, possibly written with negative indices. */
const axesA = (rank: number) =>
  fc
    .subarray(Array.from({ length: rank }, (_, i) => i))
    .chain((axes) => fc.tuple(...axes.map((a) => fc.constantFrom(a, a - rank))).map((xs) => [...xs]));

const pairA = (arb: fc.Arbitrary<number>) => fc.tuple(arb, arb);

/** Dilations used by DeepLab's ASPP (6) and the residual layers (2, 4), and 1 and 3. */
const dilationA = fc.constantFrom(1, 2, 3, 4, 6);

interface ConvCase {
  readonly n: number;
  readonly c: number;
  readonly o: number;
  readonly size: readonly [number, number];
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly out: readonly [number, number];
  readonly seed: number;
}

/**
 * Convolutions with strides 1-2, dilations up to 6 and padding up to max(2, dilation) (the
 * "same" padding of a dilated 3x3 is its dilation), whose windows fit the padded input.
 */
const convCaseA: fc.Arbitrary<ConvCase> = fc
  .record({
    n: dim(1, 2),
    c: dim(1, 3),
    o: dim(1, 3),
    size: pairA(dim(1, 6)),
    kernel: pairA(dim(1, 3)),
    stride: pairA(dim(1, 2)),
    padFraction: pairA(fc.double({ min: 0, max: 1, noNaN: true })),
    dilation: pairA(dilationA),
    seed: seedA,
  })
  .map(({ padFraction, ...r }) => {
    const padding = [0, 1].map((a) => Math.round(padFraction[a]! * Math.max(2, r.dilation[a]!))) as [number, number];
    const out = [0, 1].map((a) => convOutSize(r.size[a]!, r.kernel[a]!, r.stride[a]!, padding[a]!, r.dilation[a]!)) as [number, number];
    return { ...r, padding, out };
  })
  .filter((r) => r.out[0] >= 1 && r.out[1] >= 1);

const convLabel = (r: ConvCase) =>
  `N${r.n} C${r.c} O${r.o} size ${r.size} kernel ${r.kernel} stride ${r.stride} padding ${r.padding} dilation ${r.dilation}`;

// ---------------------------------------------------------------------------------------------
// The rows

function unaryCheck(name: OpName, dist: Dist, f: (x: F32) => F32, extraLabel = ""): OpCheck {
  return {
    name: extraLabel ? `${name} ${extraLabel}` : name,
    op: name,
    cases: fc.record({ shape: shapeA(0, 4, 4), seed: seedA }).map(({ shape, seed }) => ({
      label: `x ${showShape(shape)}`,
      seed,
      inputs: { x: f32In(shape, dist) },
      build: (t) => f(t.f("x")),
    })),
  };
}

function binaryCheck(name: OpName, distA: Dist, distB: Dist, f: (a: F32, b: F32) => F32): OpCheck {
  return {
    name,
    op: name,
    cases: fc.record({ shapes: broadcastPairA, seed: seedA }).map(({ shapes: [sa, sb], seed }) => ({
      label: `a ${showShape(sa)}, b ${showShape(sb)}`,
      seed,
      inputs: { a: f32In(sa, distA), b: f32In(sb, distB) },
      build: (t) => f(t.f("a"), t.f("b")),
    })),
  };
}

/** Lattices offset by half a step: |a - b| >= 0.1 for every pair, so maximum never ties. */
const evenLattice: Dist = { kind: "lattice", step: 0.2, offset: 0, count: 8 };
const oddLattice: Dist = { kind: "lattice", step: 0.2, offset: 0.1, count: 8 };

const elementwiseChecks: OpCheck[] = [
  unaryCheck("neg", standard, (x) => op.neg(x)),
  unaryCheck("abs", awayFromZero(), (x) => op.abs(x)),
  unaryCheck("exp", standard, (x) => op.exp(x)),
  unaryCheck("log", uniform(0.2, 3), (x) => op.log(x)),
  unaryCheck("log1p", uniform(-0.5, 2), (x) => op.log1p(x)),
  unaryCheck("sqrt", uniform(0.2, 3), (x) => op.sqrt(x)),
  unaryCheck("rsqrt", uniform(0.2, 3), (x) => op.rsqrt(x)),
  unaryCheck("relu", awayFromZero(), (x) => op.relu(x)),
  // slope > 0 masks on the output, slope <= 0 on the input (grad.ts): both branches.
  unaryCheck("leakyRelu", awayFromZero(), (x) => op.leakyRelu(x, 0.2), "slope 0.2"),
  unaryCheck("leakyRelu", awayFromZero(), (x) => op.leakyRelu(x, -0.5), "slope -0.5"),
  unaryCheck("sigmoid", uniform(-3, 3), (x) => op.sigmoid(x)),
  unaryCheck("tanh", uniform(-3, 3), (x) => op.tanh(x)),
  binaryCheck("add", standard, standard, (a, b) => op.add(a, b)),
  binaryCheck("sub", standard, standard, (a, b) => op.sub(a, b)),
  binaryCheck("mul", standard, standard, (a, b) => op.mul(a, b)),
  binaryCheck("div", standard, awayFromZero(0.5), (a, b) => op.div(a, b)),
  binaryCheck("pow", uniform(0.5, 2), standard, (a, b) => op.pow(a, b)),
  binaryCheck("maximum", evenLattice, oddLattice, (a, b) => op.maximum(a, b)),
  binaryCheck("minimum", evenLattice, oddLattice, (a, b) => op.minimum(a, b)),
  {
    name: "where",
    op: "where",
    cases: fc
      .record({ full: shapeA(0, 4, 3), seed: seedA })
      .chain(({ full, seed }) =>
        fc.tuple(broadcastVariantA(full), broadcastVariantA(full), broadcastVariantA(full)).map(([sc, sa, sb]) => ({
          label: `cond ${showShape(sc)}, a ${showShape(sa)}, b ${showShape(sb)}`,
          seed,
          inputs: { cond: { shape: sc, dtype: "bool", dist: { kind: "mask" }, wrt: false }, a: f32In(sa, standard), b: f32In(sb, standard) },
          build: (t: CaseInputs) => op.where(t.b("cond"), t.f("a"), t.f("b")),
        })),
      ),
  },
];

function reduceCheck(name: "sum" | "mean" | "max", dist: Dist): OpCheck {
  const f = (x: F32, axes: readonly number[] | undefined, keepdims: boolean): F32 =>
    name === "sum" ? op.sum(x, axes, { keepdims }) : name === "mean" ? op.mean(x, axes, { keepdims }) : op.max(x, axes, { keepdims });
  return {
    name,
    op: name,
    cases: fc
      .record({ shape: shapeA(1, 4, 4), keepdims: fc.boolean(), all: fc.boolean(), seed: seedA })
      .chain((r) => axesA(r.shape.length).map((axes) => ({ ...r, axes: r.all ? undefined : axes })))
      .map(({ shape, keepdims, axes, seed }) => ({
        label: `x ${showShape(shape)}, axes ${axes === undefined ? "all" : showShape(axes)}, keepdims ${keepdims}`,
        seed,
        inputs: { x: f32In(shape, dist) },
        build: (t: CaseInputs) => f(t.f("x"), axes, keepdims),
      })),
  };
}

/** Target shapes with the same element count, all different from `shape`. */
function reshapeTargets(shape: Shape): Shape[] {
  const n = numel(shape);
  const candidates: Shape[] = [[n], [...shape, 1], [1, ...shape], [...shape].reverse(), [-1, shape[shape.length - 1]!]];
  const resolved = (s: Shape) => s.map((d) => (d === -1 ? n / numel(s.filter((e) => e !== -1)) : d));
  return candidates.filter((s) => showShape(resolved(s)) !== showShape(shape));
}

const viewChecks: OpCheck[] = [
  reduceCheck("sum", standard),
  reduceCheck("mean", standard),
  reduceCheck("max", distinct()),
  {
    name: "reshape",
    op: "reshape",
    cases: fc
      .record({ shape: shapeA(1, 4, 4), seed: seedA })
      .chain((r) => fc.constantFrom(...reshapeTargets(r.shape)).map((target) => ({ ...r, target })))
      .map(({ shape, target, seed }) => ({
        label: `x ${showShape(shape)} to ${showShape(target)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.reshape(t.f("x"), target),
      })),
  },
  {
    name: "permute",
    op: "permute",
    cases: fc
      .record({ shape: shapeA(2, 4, 4), seed: seedA })
      .chain((r) => {
        const axes = r.shape.map((_, i) => i);
        const perm = fc.shuffledSubarray(axes, { minLength: axes.length, maxLength: axes.length });
        return perm.filter((p) => p.some((a, i) => a !== i)).map((perm) => ({ ...r, perm }));
      })
      .map(({ shape, perm, seed }) => ({
        label: `x ${showShape(shape)}, perm ${showShape(perm)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.permute(t.f("x"), perm),
      })),
  },
  {
    name: "broadcastTo",
    op: "broadcastTo",
    cases: fc
      .record({ target: shapeA(1, 4, 3), seed: seedA })
      .chain((r) => broadcastVariantA(r.target).map((shape) => ({ ...r, shape })))
      .filter(({ target, shape }) => {
        // Some axis must actually repeat, or the builder returns a reshape (or x itself).
        const lifted = [...new Array<number>(target.length - shape.length).fill(1), ...shape];
        return lifted.some((d, i) => d === 1 && target[i]! > 1);
      })
      .map(({ target, shape, seed }) => ({
        label: `x ${showShape(shape)} to ${showShape(target)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.broadcastTo(t.f("x"), target),
      })),
  },
  {
    name: "slice",
    op: "slice",
    cases: fc
      .record({ shape: shapeA(1, 4, 5), seed: seedA })
      .chain((r) =>
        fc
          .tuple(...r.shape.map((d) => fc.tuple(dim(0, d - 1), dim(1, d), fc.boolean()).map(([a, b, neg]) => [Math.min(a, b - 1), b, neg] as const)))
          .map((bounds) => ({ ...r, bounds })),
      )
      .filter(({ shape, bounds }) => bounds.some(([s, e], i) => s > 0 || e < shape[i]!))
      .map(({ shape, bounds, seed }) => {
        // Negative indices count from the end; half of the bounds are written that way.
        const starts = bounds.map(([s, , neg], i) => (neg && s > 0 ? s - shape[i]! : s));
        const ends = bounds.map(([, e, neg], i) => (neg && e < shape[i]! ? e - shape[i]! : e));
        return {
          label: `x ${showShape(shape)}, starts ${showShape(starts)}, ends ${showShape(ends)}`,
          seed,
          inputs: { x: f32In(shape, standard) },
          build: (t: CaseInputs) => op.slice(t.f("x"), starts, ends),
        };
      }),
  },
  {
    name: "pad",
    op: "pad",
    cases: fc
      .record({ shape: shapeA(1, 4, 3), value: fc.constantFrom(0, -1.5), seed: seedA })
      .chain((r) => fc.tuple(...r.shape.map(() => pairA(dim(0, 2)))).map((pads) => ({ ...r, pads })))
      .filter(({ pads }) => pads.some(([a, b]) => a + b > 0))
      .map(({ shape, pads, value, seed }) => ({
        label: `x ${showShape(shape)}, pads ${JSON.stringify(pads)}, value ${value}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.pad(t.f("x"), pads, value),
      })),
  },
  {
    name: "concat",
    op: "concat",
    cases: fc
      .record({ shape: shapeA(1, 4, 3), parts: dim(2, 3), seed: seedA })
      .chain((r) =>
        fc
          .tuple(dim(0, r.shape.length - 1), fc.boolean(), fc.array(dim(1, 3), { minLength: r.parts, maxLength: r.parts }))
          .map(([axis, negative, lengths]) => ({ ...r, axis, written: negative ? axis - r.shape.length : axis, lengths })),
      )
      .map(({ shape, axis, written, lengths, seed }) => {
        const shapes = lengths.map((l) => shape.map((d, i) => (i === axis ? l : d)));
        return {
          label: `${shapes.map(showShape).join(" ++ ")} on axis ${written}`,
          seed,
          inputs: Object.fromEntries(shapes.map((s, k) => [`x${k}`, f32In(s, standard)])),
          build: (t: CaseInputs) => op.concat(shapes.map((_, k) => t.f(`x${k}`)), written),
        };
      }),
  },
];

function convCheck(name: string, withBias: boolean): OpCheck {
  return {
    name,
    op: "conv2d",
    cases: convCaseA.map((r) => ({
      label: convLabel(r) + (withBias ? ", bias" : ""),
      seed: r.seed,
      inputs: {
        x: f32In([r.n, r.c, ...r.size], standard),
        w: f32In([r.o, r.c, ...r.kernel], standard),
        ...(withBias ? { bias: f32In([r.o], standard) } : {}),
      },
      build: (t) => op.conv2d(t.f4("x"), t.f4("w"), withBias ? t.f1("bias") : undefined, r),
    })),
  };
}

const convChecks: OpCheck[] = [
  convCheck("conv2d", false),
  convCheck("conv2d bias", true),
  {
    name: "conv2dInputGrad",
    op: "conv2dInputGrad",
    cases: convCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { dy: f32In([r.n, r.o, ...r.out], standard), w: f32In([r.o, r.c, ...r.kernel], standard) },
      build: (t) => op.conv2dInputGrad(t.f4("dy"), t.f4("w"), r.size, r),
    })),
  },
  {
    name: "conv2dWeightGrad",
    op: "conv2dWeightGrad",
    cases: convCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { x: f32In([r.n, r.c, ...r.size], standard), dy: f32In([r.n, r.o, ...r.out], standard) },
      build: (t) => op.conv2dWeightGrad(t.f4("x"), t.f4("dy"), r.kernel, r),
    })),
  },
];

/** Max pooling, PyTorch's size rule; distinct values, so every window has one clear maximum. */
function maxPoolCheck(ceilMode: boolean): OpCheck {
  return {
    name: `maxPool2d ceilMode ${ceilMode}`,
    op: "maxPool2d",
    cases: fc
      .record({
        n: dim(1, 2),
        c: dim(1, 2),
        size: pairA(dim(1, 9)),
        kernel: pairA(dim(1, 3)),
        stride: fc.option(pairA(dim(1, 2)), { nil: undefined }),
        padFraction: pairA(fc.double({ min: 0, max: 1, noNaN: true })),
        seed: seedA,
      })
      .map(({ padFraction, ...r }) => ({
        ...r,
        padding: [0, 1].map((a) => Math.round(padFraction[a]! * Math.floor(r.kernel[a]! / 2))) as [number, number],
      }))
      .filter((r) =>
        [0, 1].every((a) => {
          const s = r.stride?.[a] ?? r.kernel[a]!;
          return convOutSize(r.size[a]!, r.kernel[a]!, s, r.padding[a]!, 1) >= 1;
        }),
      )
      .map((r) => ({
        label: `N${r.n} C${r.c} size ${r.size} kernel ${r.kernel} stride ${r.stride ?? "= kernel"} padding ${r.padding}`,
        seed: r.seed,
        inputs: { x: f32In([r.n, r.c, ...r.size], distinct()) },
        build: (t: CaseInputs) => op.maxPool2d(t.f4("x"), { kernel: r.kernel, stride: r.stride, padding: r.padding, ceilMode }),
      })),
  };
}

function resizeCheck(name: "resize" | "resizeGrad", alignCorners: boolean): OpCheck {
  return {
    name: `${name} alignCorners ${alignCorners}`,
    op: name,
    // Sizes 1-6 each way: upsampling, downsampling, equal sizes and outputs of size 1.
    cases: fc.record({ n: dim(1, 2), c: dim(1, 2), from: pairA(dim(1, 6)), to: pairA(dim(1, 6)), seed: seedA }).map((r) => ({
      label: `N${r.n} C${r.c} ${r.from.join("x")} -> ${r.to.join("x")}`,
      seed: r.seed,
      inputs: { x: f32In([r.n, r.c, ...r.from], standard) },
      build: (t) => (name === "resize" ? op.resize : op.resizeGrad)(t.f4("x"), r.to, { alignCorners }),
    })),
  };
}

function softmaxCheck(name: "softmax" | "logSoftmax"): OpCheck {
  return {
    name,
    op: name,
    cases: fc
      .record({ shape: shapeA(1, 4, 4), seed: seedA })
      .chain((r) => dim(-r.shape.length, r.shape.length - 1).map((axis) => ({ ...r, axis })))
      .map(({ shape, axis, seed }) => ({
        label: `x ${showShape(shape)}, axis ${axis}`,
        seed,
        inputs: { x: f32In(shape, uniform(-3, 3)) },
        build: (t: CaseInputs) => (name === "softmax" ? op.softmax : op.logSoftmax)(t.f("x"), axis),
      })),
  };
}

const bnShapeA = fc.record({ n: dim(1, 3), c: dim(1, 3), h: dim(1, 3), w: dim(1, 3), eps: fc.constantFrom(1e-5, 0.1), seed: seedA });

const normChecks: OpCheck[] = [
  maxPoolCheck(false),
  maxPoolCheck(true),
  resizeCheck("resize", true),
  resizeCheck("resize", false),
  resizeCheck("resizeGrad", true),
  resizeCheck("resizeGrad", false),
  softmaxCheck("softmax"),
  softmaxCheck("logSoftmax"),
  {
    name: "batchNormEval",
    op: "batchNormEval",
    cases: bnShapeA.map((r) => ({
      label: `x [${r.n},${r.c},${r.h},${r.w}], eps ${r.eps}`,
      seed: r.seed,
      inputs: {
        x: f32In([r.n, r.c, r.h, r.w], standard),
        weight: f32In([r.c], standard),
        bias: f32In([r.c], standard),
        mean: f32In([r.c], standard),
        var: f32In([r.c], uniform(0.3, 2)),
      },
      build: (t) => op.batchNormEval(t.f4("x"), t.f1("weight"), t.f1("bias"), t.f1("mean"), t.f1("var"), r.eps),
    })),
  },
  {
    name: "batchNormTrain",
    op: "batchNormTrain",
    // Distinct values keep each channel's variance at least spacing^2 / 16, away from the eps floor.
    cases: bnShapeA
      .filter((r) => r.n * r.h * r.w >= 2)
      .map((r) => ({
        label: `x [${r.n},${r.c},${r.h},${r.w}], eps ${r.eps}`,
        seed: r.seed,
        inputs: { x: f32In([r.n, r.c, r.h, r.w], distinct(0.3)), weight: f32In([r.c], standard), bias: f32In([r.c], standard) },
        build: (t) => op.batchNormTrain(t.f4("x"), t.f1("weight"), t.f1("bias"), r.eps),
      })),
  },
  {
    name: "matmul",
    op: "matmul",
    cases: fc.record({ m: dim(1, 4), k: dim(1, 4), n: dim(1, 4), seed: seedA }).map((r) => ({
      label: `[${r.m},${r.k}] x [${r.k},${r.n}]`,
      seed: r.seed,
      inputs: { a: f32In([r.m, r.k], standard), b: f32In([r.k, r.n], standard) },
      build: (t) => op.matmul(t.f2("a"), t.f2("b")),
    })),
  },
  {
    name: "softmaxCrossEntropy",
    op: "softmaxCrossEntropy",
    // Ignore rates 0, some, and all (the loss and its gradient are then exactly 0).
    cases: fc
      .record({
        n: dim(1, 2),
        classes: dim(1, 4),
        spatial: shapeA(0, 2, 3),
        ignoreIndex: fc.constantFrom(255, -100, 1),
        ignoreRate: fc.constantFrom(0, 0.3, 1),
        seed: seedA,
      })
      .map((r) => ({
        label: `logits [${r.n},${r.classes},${r.spatial}], ignoreIndex ${r.ignoreIndex}, ignore rate ${r.ignoreRate}`,
        seed: r.seed,
        inputs: {
          logits: f32In([r.n, r.classes, ...r.spatial], uniform(-3, 3)),
          labels: { shape: [r.n, ...r.spatial], dtype: "i32", dist: { kind: "labels", classes: r.classes, ignoreIndex: r.ignoreIndex, ignoreRate: r.ignoreRate }, wrt: false },
        },
        build: (t) => op.softmaxCrossEntropy(t.f("logits"), t.i("labels"), { ignoreIndex: r.ignoreIndex }),
      })),
  },
];

/** Composites: losses, the BN layer with its running statistics, and the optimizer updates. */
const compositeChecks: OpCheck[] = [
  {
    name: "losses.bceWithLogits",
    cases: fc.record({ shape: shapeA(0, 4, 3), constantTarget: fc.constantFrom(undefined, 0, 1), seed: seedA }).map((r) => ({
      label: `x ${showShape(r.shape)}, target ${r.constantTarget ?? "tensor"}`,
      seed: r.seed,
      // |x| >= 0.05 keeps off the kinks of relu(x) and |x| in the stable form.
      inputs: {
        x: f32In(r.shape, awayFromZero(0.05, 4)),
        ...(r.constantTarget === undefined ? { z: f32In(r.shape, uniform(0, 1)) } : {}),
      },
      build: (t) => losses.bceWithLogits(t.f("x"), r.constantTarget ?? t.f("z")),
    })),
  },
  {
    name: "losses.mse",
    cases: fc.record({ shapes: broadcastPairA, seed: seedA }).map(({ shapes: [sx, sz], seed }) => ({
      label: `x ${showShape(sx)}, target ${showShape(sz)}`,
      seed,
      inputs: { x: f32In(sx, standard), z: f32In(sz, standard) },
      build: (t) => losses.mse(t.f("x"), t.f("z")),
    })),
  },
  {
    name: "losses.entropyLoss",
    cases: fc.record({ n: dim(1, 2), c: dim(2, 4), h: dim(1, 3), w: dim(1, 3), seed: seedA }).map((r) => ({
      label: `prob [${r.n},${r.c},${r.h},${r.w}]`,
      seed: r.seed,
      inputs: { prob: f32In([r.n, r.c, r.h, r.w], uniform(0.05, 1)) },
      build: (t) => losses.entropyLoss(t.f4("prob")),
    })),
  },
  {
    // Output and running statistics; x is not differentiated, because the statistics see it
    // through stopGradient (their finite difference in x is not 0, their gradient is).
    name: "nn.batchNorm2d train",
    cases: bnShapeA
      .filter((r) => r.n * r.h * r.w >= 2)
      .map((r) => {
        const x = [r.n, r.c, r.h, r.w];
        return {
          label: `x ${showShape(x)}, eps ${r.eps}`,
          seed: r.seed,
          inputs: {
            x: f32In(x, distinct(0.3), false),
            "bn/weight": f32In([r.c], standard),
            "bn/bias": f32In([r.c], standard),
            "bn/running_mean": f32In([r.c], standard),
            "bn/running_var": f32In([r.c], uniform(0.3, 2)),
          },
          build: (t) => {
            const bn = declareModel("bn", nn.batchNormSpec(r.c)).p;
            const thread = new StateThread();
            const y = nn.batchNorm2d(t.f4("x"), bn, { mode: "train", eps: r.eps, thread });
            return [y, ...Object.values(thread.updates())];
          },
        };
      }),
  },
  ...[true, false].map(
    (inPlace): OpCheck => ({
      name: `optim.sgd weightDecayInPlace ${inPlace}`,
      cases: fc.record({ shape: shapeA(0, 3, 3), visits: dim(1, 3), seed: seedA }).map((r) => ({
        label: `p ${showShape(r.shape)}, visits ${r.visits}`,
        seed: r.seed,
        inputs: {
          "m/w": f32In(r.shape, standard),
          g: f32In(r.shape, standard),
          "sgd/m.w": f32In(r.shape, standard),
          lr: f32In([], uniform(0.01, 0.5)),
        },
        build: (t) => {
          const m = declareModel("m", { w: param(r.shape, { init: constant(0) }) });
          const res = optim.sgd("sgd", [{ entry: m.entries[0]!, grad: t.f("g") }], {
            lr: () => t.f0("lr"),
            momentum: 0.9,
            weightDecay: 0.05,
            visits: () => r.visits,
            weightDecayInPlace: inPlace,
          });
          return Object.values(res.updates);
        },
      })),
    }),
  ),
  ...(["pytorch1", "pytorch0.4"] as const).map(
    (epsPlacement): OpCheck => ({
      name: `optim.adam eps ${epsPlacement}`,
      cases: fc.record({ shape: shapeA(0, 3, 3), seed: seedA }).map((r) => ({
        label: `p ${showShape(r.shape)}`,
        seed: r.seed,
        inputs: {
          "m/w": f32In(r.shape, standard),
          g: f32In(r.shape, standard),
          "adam/m.w.exp_avg": f32In(r.shape, standard),
          // v is a running mean of squares: positive, and away from sqrt's pole at 0.
          "adam/m.w.exp_avg_sq": f32In(r.shape, uniform(0.1, 2)),
          lr: f32In([], uniform(0.01, 0.5)),
          step: f32In([], uniform(1, 5)),
        },
        build: (t) => {
          const m = declareModel("m", { w: param(r.shape, { init: constant(0) }) });
          const res = optim.adam("adam", [{ entry: m.entries[0]!, grad: t.f("g") }], {
            lr: t.f0("lr"),
            beta1: 0.9,
            beta2: 0.99,
            eps: 0.01,
            step: t.f0("step"),
            epsPlacement,
          });
          return Object.values(res.updates);
        },
      })),
    }),
  ),
];

/** Every row: the differentiable primitives first, then the composites. */
export const OP_CHECKS: readonly OpCheck[] = [...elementwiseChecks, ...viewChecks, ...convChecks, ...normChecks, ...compositeChecks];
