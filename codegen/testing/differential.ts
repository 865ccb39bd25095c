// Differential testing: a program run through generated kernels on Dawn against the
// reference interpreter in float32.

import * as E from "fp-ts/lib/Either.js";
import { type Program, type StateValues, mulberry32, numel, runProgram } from "../../dsl/index";
import { type AcquiredDevice } from "../../runtime/device";
import type { AdapterClass, GeneratedModule } from "../../format/module";
import { acquireNodeDevice } from "../../runtime/node-gpu";
import { type Instance, chooseVariant, deviceFeatures as runtimeDeviceFeatures, instantiate } from "../../runtime/runner";
import { type Compiled, compileProgram } from "../compile";
import type { KernelPlan } from "../fusion";
import { canonicalisePhase } from "../passes/canonicalise";
import { fusePhase } from "../passes/fuse";
import { schedulePhase } from "../passes/schedule";

let shared: AcquiredDevice | undefined;

/** One device per process, with the adapter's maximum limits (the generated modules vary). */
export async function device(): Promise<AcquiredDevice> {
  if (shared) return shared;
  const acquired = await acquireNodeDevice({ maxStorageBufferBindingSize: 256, maxBufferSize: 256, maxStorageBuffersPerShaderStage: 8 })();
  if (E.isLeft(acquired)) throw new Error(acquired.left.message);
  shared = acquired.right;
  return shared;
}

export interface GpuRun {
  readonly compiled: Compiled;
  readonly instance: Instance;
  /** Each phase's outputs after the steps, by name. */
  readonly outputs: Map<string, Float32Array | Int32Array | Uint32Array>;
  /** Every param and state value after the steps. */
  readonly state: Map<string, Float32Array | Int32Array | Uint32Array>;
}

/** Compiles and runs `steps` steps of `program` on the GPU from the given state and data. */
export async function runOnGpu(program: Program, state: StateValues, data: ReadonlyMap<string, ArrayLike<number>>, steps = 1, adapterClass?: "cpu" | "gpu"): Promise<GpuRun> {
  return runCompiled(compileProgram(program), state, data, steps, adapterClass);
}

/** Instantiates an already compiled module on the shared device; throws on any failure. */
export async function instantiateCompiled(compiled: Compiled, adapterClass?: AdapterClass): Promise<Instance> {
  const dev = await device();
  const made = await instantiate(dev.device, compiled.module, adapterClass ?? dev.adapterClass);
  if (E.isLeft(made)) throw new Error(made.left.message);
  return made.right;
}

/** Names of the params and state of a module (the slots a step may change). */
export const stateNames = (module: GeneratedModule): string[] => module.tensors.filter((t) => t.role === "param" || t.role === "state").map((t) => t.name);

/**
 * Runs `steps` steps of an already compiled module on a fresh instance (kernel variants chosen
 * for `adapterClass`, the device's own class by default). The caller owns `instance`.
 */
export async function runCompiled(
  compiled: Compiled,
  state: StateValues,
  data: ReadonlyMap<string, ArrayLike<number>>,
  steps = 1,
  adapterClass?: AdapterClass,
): Promise<GpuRun> {
  const instance = await instantiateCompiled(compiled, adapterClass);
  for (const [name, value] of state) instance.write(name, value as Float32Array);
  for (const [name, value] of data) instance.write(name, Array.from(value));
  instance.step(steps);
  const outNames = compiled.module.phases.flatMap((p) => p.outputs);
  const names = stateNames(compiled.module);
  const values = await instance.readMany([...outNames, ...names]);
  const outputs = new Map(outNames.map((n, i) => [n, values[i]!]));
  const after = new Map(names.map((n, i) => [n, values[outNames.length + i]!]));
  return { compiled, instance, outputs, state: after };
}

/** The interpreter's result of `steps` steps, in float32. */
export function runOnInterpreter(program: Program, state: StateValues, data: ReadonlyMap<string, ArrayLike<number>>, steps = 1) {
  let current: StateValues = new Map(state);
  let outputs: Record<string, { data: ArrayLike<number> }> = {};
  for (let s = 0; s < steps; s++) {
    const r = runProgram(program, current, data as Map<string, ArrayLike<number>>, "f32");
    outputs = Object.assign({}, ...r.outputs);
    current = r.state;
  }
  return { outputs: new Map(Object.entries(outputs).map(([k, v]) => [k, v.data])), state: current };
}

/** Largest |a - b| / (atol/rtol scale) over two arrays; <= 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Infinity;
    worst = Math.max(worst, d / (atol + rtol * Math.abs(b[i]!)));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Comparing, with messages that say where and by how much.

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

/**
 * undefined when |actual - expected| <= atol + rtol |expected| everywhere (NaN matches nothing);
 * otherwise one line naming the worst element, both values and how many elements fail.
 */
export function mismatch(label: string, actual: ArrayLike<number> | undefined, expected: ArrayLike<number> | undefined, tol: Tolerance): string | undefined {
  if (actual === undefined || expected === undefined) return `${label}: ${actual === undefined ? "no GPU value" : "no reference value"}`;
  if (actual.length !== expected.length) return `${label}: ${actual.length} values, expected ${expected.length}`;
  let worst = 0;
  let at = -1;
  let failing = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    // Equal values (infinities included) always match; NaN matches nothing.
    const ratio = actual[i] === expected[i] ? 0 : Number.isNaN(d) ? Infinity : d / (tol.atol + tol.rtol * Math.abs(expected[i]!));
    if (ratio > 1) failing++;
    if (ratio > worst || at < 0) {
      worst = ratio;
      at = i;
    }
  }
  if (failing === 0) return undefined;
  return `${label}: ${failing}/${actual.length} elements differ; worst at [${at}]: got ${actual[at]}, expected ${expected[at]} (${worst.toFixed(1)}x the tolerance rtol ${tol.rtol}, atol ${tol.atol})`;
}

/** f32 data as its bit patterns (so -0 and NaN payloads count); other data as is. */
const bitsOf = (x: ArrayLike<number>): ArrayLike<number> => (x instanceof Float32Array ? new Uint32Array(x.buffer, x.byteOffset, x.length) : x);

/** undefined when two arrays hold the same values bit for bit; else the first differing index. */
export function bitMismatch(label: string, a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): string | undefined {
  if (a === undefined || b === undefined) return `${label}: missing`;
  if (a.length !== b.length) return `${label}: ${a.length} vs ${b.length} values`;
  const [ba, bb] = [bitsOf(a), bitsOf(b)];
  for (let i = 0; i < a.length; i++) {
    if (Object.is(ba[i], bb[i])) continue;
    const show = (x: ArrayLike<number>, bits: ArrayLike<number>) => (x === bits ? `${x[i]}` : `${x[i]} (0x${bits[i]!.toString(16).padStart(8, "0")})`);
    return `${label}: differs at [${i}]: ${show(a, ba)} vs ${show(b, bb)}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Random inputs, seeded.

/** Uniform in [0, 1). */
export type Rng = () => number;

/** A seeded generator of uniform values in [0, 1) (mulberry32 gives uint32 words). */
export function rng(seed: number): Rng {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

/** Uniform float32 values in [lo, hi). */
export function uniformF32(n: number, r: Rng, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** Uniform integers in [lo, hi]. */
export function uniformInts(n: number, r: Rng, lo: number, hi: number): Int32Array {
  return Int32Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
}

/** Values on a coarse grid (multiples of `step` in [lo, hi]): ties and equal pairs are common. */
export function gridF32(n: number, r: Rng, lo: number, hi: number, step: number): Float32Array {
  const levels = Math.floor((hi - lo) / step) + 1;
  return Float32Array.from({ length: n }, () => lo + step * Math.floor(r() * levels));
}

/**
 * A random value for every param and state entry of a program: uniform in [-1, 1), except
 * entries whose name ends with `running_var` (positive, in [0.5, 1.5)) and `exp_avg_sq`
 * (Adam's second moment: non-negative).
 */
export function randomState(program: Program, r: Rng, scale = 1): StateValues {
  const state: StateValues = new Map();
  for (const e of program.params) {
    const n = numel(e.spec.shape);
    if (e.spec.dtype !== "f32") state.set(e.name, uniformInts(n, r, 0, 3));
    else if (/running_var$/.test(e.name)) state.set(e.name, uniformF32(n, r, 0.5, 1.5));
    else if (/exp_avg_sq$/.test(e.name)) state.set(e.name, uniformF32(n, r, 0, 0.01));
    else state.set(e.name, uniformF32(n, r, -scale, scale));
  }
  return state;
}

/** Random data for every data input of a program: f32 in [-1, 1), i32 in [0, 3], bool 0/1. */
export function randomData(program: Program, r: Rng): Map<string, ArrayLike<number>> {
  const data = new Map<string, ArrayLike<number>>();
  for (const t of program.inputs) {
    if (t.node.op !== "input") continue;
    const n = numel(t.shape);
    data.set(t.node.attrs.name, t.dtype === "f32" ? uniformF32(n, r) : t.dtype === "i32" ? uniformInts(n, r, 0, 3) : uniformInts(n, r, 0, 1));
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// A whole program against the interpreter.

export interface Differential {
  /** The run with the device's own adapter class. */
  readonly gpu: GpuRun;
  readonly reference: ReturnType<typeof runOnInterpreter>;
  /** The adapter classes whose kernel variants ran (both when any dispatch has two). */
  readonly classes: readonly AdapterClass[];
  /** One line per output or state value that is not close (empty when all agree). */
  readonly mismatches: string[];
}

/** The features of the shared device, which decide (with the adapter class) the variant run. */
export async function deviceFeatures(): Promise<ReadonlySet<string>> {
  return runtimeDeviceFeatures((await device()).device);
}

/**
 * Whether some dispatch of the module runs a different variant on "cpu" and "gpu" adapters
 * with `features` (the shared device's, as instantiate uses them).
 */
export function hasDistinctVariants(module: GeneratedModule, features: ReadonlySet<string>): boolean {
  return module.phases.some((p) =>
    p.dispatches.some((d) => {
      const [a, b] = [chooseVariant(d, "cpu", features), chooseVariant(d, "gpu", features)];
      return E.isRight(a) && E.isRight(b) && a.right !== b.right;
    }),
  );
}

/**
 * Compiles `program`, runs `steps` steps on the GPU and in the float32 interpreter, and
 * compares every output and every param/state value. When the module has kernel variants for
 * another adapter class than the device's, they run too (on this device) and are compared
 * with the interpreter as well: every variant must agree. `tolerance` may depend on the name.
 * GPU instances are destroyed before returning.
 */
export async function differential(
  program: Program,
  state: StateValues,
  data: ReadonlyMap<string, ArrayLike<number>>,
  tolerance: Tolerance | ((name: string) => Tolerance),
  opts: { readonly steps?: number; readonly compiled?: Compiled } = {},
): Promise<Differential> {
  const steps = opts.steps ?? 1;
  const compiled = opts.compiled ?? compileProgram(program);
  const own = (await device()).adapterClass;
  const classes: AdapterClass[] = hasDistinctVariants(compiled.module, await deviceFeatures()) ? [own, own === "cpu" ? "gpu" : "cpu"] : [own];
  const reference = runOnInterpreter(program, state, data, steps);
  const tol = typeof tolerance === "function" ? tolerance : () => tolerance;
  const mismatches: string[] = [];
  let first: GpuRun | undefined;
  for (const adapterClass of classes) {
    const gpu = await runCompiled(compiled, state, data, steps, adapterClass);
    gpu.instance.destroy();
    first ??= gpu;
    const tag = classes.length > 1 ? ` (${adapterClass} variants)` : "";
    for (const [name, value] of gpu.outputs) {
      const m = mismatch(`output ${name}${tag}`, value, reference.outputs.get(name), tol(name));
      if (m) mismatches.push(m);
    }
    for (const [name, value] of gpu.state) {
      const m = mismatch(`state ${name}${tag}`, value, reference.state.get(name), tol(name));
      if (m) mismatches.push(m);
    }
  }
  return { gpu: first!, reference, classes, mismatches };
}

// ---------------------------------------------------------------------------------------------
// Kernel variants: a dispatch may carry one variant per adapter class (format/module.ts).

/**
 * The WGSL every variant meant for `adapter` was written as by its template, with the header
 * that describes the use (shapes, tiles), before the pool lifted its literals (tests read the
 * headers).
 */
export function variantShaders(compiled: Compiled, adapter: AdapterClass): string[] {
  return compiled.kernels.flatMap((k) => k.stage.alternatives.filter((a) => a.adapter === adapter).map((a) => a.wgsl));
}

export interface VariantComparison {
  /** Dispatches whose chosen variant differs between "cpu" and "gpu" adapters. */
  readonly distinctDispatches: readonly string[];
  /** Dispatches with no variant for some class (the runtime would refuse the module). */
  readonly unresolved: readonly string[];
  /** Outputs and state values on which the two classes' runs disagree. */
  readonly mismatches: readonly string[];
}

/**
 * Runs a compiled module twice, with the kernel variants for "cpu" and for "gpu" adapters
 * (both on this device, with its features: a variant's correctness does not depend on the
 * hardware it is tuned for), and compares every output and param/state value. Checks every
 * dispatch of every phase resolves for both classes first. Agreement is within `tolerance`: variants may sum
 * in different orders. Dispatches with a single variant run the same shader in both runs.
 */
export async function compareAdapterClasses(
  compiled: Compiled,
  state: StateValues,
  data: ReadonlyMap<string, ArrayLike<number>>,
  tolerance: Tolerance,
  steps = 1,
): Promise<VariantComparison> {
  const distinct: string[] = [];
  const unresolved: string[] = [];
  const features = await deviceFeatures();
  for (const phase of compiled.module.phases) {
    for (const d of phase.dispatches) {
      const cpu = chooseVariant(d, "cpu", features);
      const gpu = chooseVariant(d, "gpu", features);
      if (E.isLeft(cpu) || E.isLeft(gpu)) unresolved.push(`${phase.name}/${d.name}`);
      else if (cpu.right !== gpu.right) distinct.push(`${phase.name}/${d.name}`);
    }
  }
  if (unresolved.length > 0) return { distinctDispatches: distinct, unresolved, mismatches: [] };
  const a = await runCompiled(compiled, state, data, steps, "cpu");
  a.instance.destroy();
  const b = await runCompiled(compiled, state, data, steps, "gpu");
  b.instance.destroy();
  const mismatches: string[] = [];
  for (const [kind, left, right] of [["output", a.outputs, b.outputs], ["state", a.state, b.state]] as const) {
    for (const [name, value] of left) {
      const m = mismatch(`${kind} ${name} (cpu variant vs gpu variant)`, value, right.get(name), tolerance);
      if (m) mismatches.push(m);
    }
  }
  return { distinctDispatches: distinct, unresolved, mismatches };
}

// ---------------------------------------------------------------------------------------------
// Kernel counts.

/** Dispatches per phase, and per template (the anchor op, or "pointwise") within each phase. */
export function dispatchCounts(compiled: Compiled): Map<string, { total: number; byTemplate: Record<string, number> }> {
  const out = new Map<string, { total: number; byTemplate: Record<string, number> }>();
  for (const p of compiled.module.phases) out.set(p.name, { total: p.dispatches.length, byTemplate: {} });
  for (const k of compiled.kernels) {
    const entry = out.get(k.phase)!;
    entry.byTemplate[k.anchor] = (entry.byTemplate[k.anchor] ?? 0) + 1;
  }
  return out;
}

/**
 * The fusion plan of each phase, as compileProgram makes it (its passes canonicalise,
 * schedule and fuse): one kernel per fused group, whatever number of dispatches its
 * template uses. Kernel counts at this level change only when fusion changes.
 */
export function kernelPlans(program: Program): Map<string, readonly KernelPlan[]> {
  const out = new Map<string, readonly KernelPlan[]>();
  for (const phase of program.phases) out.set(phase.name, fusePhase(schedulePhase(canonicalisePhase(phase))).fusion.kernels);
  return out;
}

/** Kernels per template ("pointwise" for kernels without an anchor), from kernelPlans. */
export function kernelCounts(plans: readonly KernelPlan[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of plans) {
    const template = k.anchor?.node.op ?? "pointwise";
    counts[template] = (counts[template] ?? 0) + 1;
  }
  return counts;
}
