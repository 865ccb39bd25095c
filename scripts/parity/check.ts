// The PyTorch parity suite: runs generated modules on the WebGPU device against the fixtures
// that scripts/parity/make_fixtures.py wrote (docs/parity.md). No Python is needed here.
//
// A fixture names its program, how every weight and input is drawn from the seeded generator
// of format/init.ts, and one record per compared tensor. This file loads fixtures, writes the same
// weights and inputs into an instance of the program's generated module, runs it, and turns
// the records into checks: one check per record group (e.g. "train-multi-level it1: SGD momentum buffers"), whose
// error is the worst of its tensors.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as E from "fp-ts/lib/Either.js";
import { compileProgram } from "../../codegen/compile";
import { type Init, type ProgramExport, drawInit, streamFor } from "../../dsl/index";
import type { AcquiredDevice } from "../../runtime/device";
import type { GeneratedModule, InitSpec, TensorSlot } from "../../format/module";
import { HYPER_SLOT, hyperVector } from "../../runtime/hyperparameters";
import { acquireNodeDevice } from "../../runtime/node-gpu";
import { type Instance, type TensorData, instantiate } from "../../runtime/runner";
import { parityDiscriminators, parityForward, parityTrain } from "../../examples/parity/programs";
import { parityMobileNetForward, parityMobileNetTrain } from "../../examples/parity/mobilenet";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURE_DIR = path.join(root, "scripts/parity/fixtures");

// ---------------------------------------------------------------------------------------------
// Fixtures

/** How a data input is derived: generator values, class labels, or the iteration number. */
export type InputSpec =
  | { readonly kind: "values"; readonly stream: string; readonly init: Init }
  | { readonly kind: "labels"; readonly stream: string; readonly init: Init; readonly classes: number; readonly ignoreIndex: number }
  | { readonly kind: "iteration"; readonly value: number };

export interface TensorRecord {
  /** Unique in the fixture; seeds the sample indices. */
  readonly id: string;
  /** The module's output or state tensor. */
  readonly name: string;
  readonly group: string;
  readonly tol: number;
  readonly shape: readonly number[];
  /** "full": every element is stored; "sampled": `count` elements at generator-drawn indices. */
  readonly stored: "full" | "sampled";
  readonly offset: number;
  readonly count: number;
  /** max |x| and the L2 norm over every element of the reference. */
  readonly maxAbs: number;
  readonly l2: number;
  /** The same computation in PyTorch float32, measured like the GPU: the float32 noise floor. */
  readonly torchF32?: number;
  /** Trained parameters: max |p - p0| over every element (the scale of the update). */
  readonly maxAbsDelta?: number;
  /** Trained parameters: PyTorch float32's max |a - b| / max |p - p0|. */
  readonly torchF32Update?: number;
  /**
   * Iterations after the first: the worst error of the reference rerun from its previous state
   * perturbed by 1e-6 (make_fixtures.py), on the value or, for trained parameters, the update.
   */
  readonly sensitivity?: number;
  readonly updateSensitivity?: number;
}

export interface FixtureStep {
  readonly iteration?: number;
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly records: readonly TensorRecord[];
}

export interface Fixture {
  readonly case: string;
  readonly program: string;
  readonly seed: number;
  readonly samples: number;
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * Values for the program's hyperparameter vector (dsl/hyper.ts), by name, when the case runs
   * the program with other than its defaults; `config` states them as well.
   */
  readonly hyperparameters?: Readonly<Record<string, number>>;
  /** "spec": the official initialisation (checked against the module's declared inits). */
  readonly initsFrom: "spec" | "parity";
  readonly inits: Readonly<Record<string, Init>>;
  readonly steps: readonly FixtureStep[];
  /** The expected values, float32, indexed by record offset. */
  readonly values: Float32Array;
}

export function fixtureCases(dir = FIXTURE_DIR): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length))
    .sort();
}

export function loadFixture(name: string, dir = FIXTURE_DIR): Fixture {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8")) as Omit<Fixture, "values">;
  const bytes = fs.readFileSync(path.join(dir, `${name}.bin`));
  const values = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
  return { ...doc, values };
}

// ---------------------------------------------------------------------------------------------
// Deriving weights and inputs (the same generator as make_fixtures.py)

const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

/** Float32 values of an init spec for tensor `stream` (what initialValues() would store). */
export function drawValues(init: Init, n: number, seed: number, stream: string): Float32Array {
  return Float32Array.from(drawInit(init, n, streamFor(seed, stream)));
}

export function inputValues(spec: InputSpec, shape: readonly number[], seed: number): Float32Array | Int32Array {
  switch (spec.kind) {
    case "values":
      return drawValues(spec.init, numel(shape), seed, spec.stream);
    case "labels":
      // floor of the float32-rounded draw; the two top bins become the ignore label.
      return Int32Array.from(drawValues(spec.init, numel(shape), seed, spec.stream), (v) => {
        const c = Math.floor(v);
        return c >= spec.classes ? spec.ignoreIndex : c;
      });
    case "iteration":
      return Int32Array.of(spec.value);
    default: {
      const never: never = spec;
      throw new Error(`unknown input spec ${JSON.stringify(never)}`);
    }
  }
}

/** The sampled element indices of a record: floor(u01 * n), stream `sample/<id>`. */
export function sampleIndices(seed: number, id: string, n: number, count: number): Int32Array {
  const next = streamFor(seed, `sample/${id}`);
  return Int32Array.from({ length: count }, () => Math.floor(((next() + 0.5) / 4294967296) * n));
}

// ---------------------------------------------------------------------------------------------
// Comparing

export interface RecordResult {
  readonly record: TensorRecord;
  /** The relative error of the values (docs/parity.md), Infinity for NaN or a missing tensor. */
  readonly error: number;
  /** For trained parameters: the error relative to the update's scale, max |a - b| / max |p - p0|. */
  readonly updateError?: number;
  readonly note?: string;
}

/**
 * Full records: max |a - b| / max |b|. Sampled records: the worst of that over the sampled
 * elements, |max|a| - max|b|| / max|b| and |‖a‖ - ‖b‖| / ‖b‖ (the last two over every element).
 * A reference that is all zero is compared absolutely.
 */
export function compareRecord(fx: Fixture, rec: TensorRecord, actual: ArrayLike<number>): RecordResult {
  const n = numel(rec.shape);
  if (actual.length !== n) return { record: rec, error: Infinity, note: `has ${actual.length} elements, expected ${n}` };
  const expected = fx.values.subarray(rec.offset, rec.offset + rec.count);
  const indices = rec.stored === "full" ? undefined : sampleIndices(fx.seed, rec.id, n, rec.count);
  let diff = 0;
  for (let i = 0; i < rec.count; i++) {
    const a = actual[indices ? indices[i]! : i]!;
    const d = Math.abs(a - expected[i]!);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
  }
  const scale = (s: number, d: number) => (s > 0 ? d / s : d);
  let error = scale(rec.maxAbs, diff);
  if (indices) {
    let maxAbs = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const a = actual[i]!;
      maxAbs = Math.max(maxAbs, Math.abs(a));
      sq += a * a;
    }
    if (Number.isNaN(sq)) error = Infinity;
    error = Math.max(error, scale(rec.maxAbs, Math.abs(maxAbs - rec.maxAbs)), scale(rec.l2, Math.abs(Math.sqrt(sq) - rec.l2)));
  }
  const updateError = rec.maxAbsDelta === undefined ? undefined : rec.maxAbsDelta > 0 ? diff / rec.maxAbsDelta : diff;
  return updateError === undefined ? { record: rec, error } : { record: rec, error, updateError };
}

export interface Check {
  readonly name: string;
  readonly error: number;
  readonly tol: number;
  readonly passed: boolean;
  /** What was compared, and where the largest error is ("67 tensors; worst G/conv1.weight"). */
  readonly detail: string;
  /** The largest PyTorch float32 error among the tensors, when the fixture has it. */
  readonly torchF32?: number;
}

/** One tensor's contribution to a check. */
interface Entry {
  readonly what: string;
  readonly error: number;
  /** The fixture's tolerance for this tensor. */
  readonly tol: number;
  /** The tensor's float32 noise floor: the largest of torch-f32 and the sensitivity. */
  readonly floor: number;
  readonly torchF32?: number;
  readonly note?: string;
}

/**
 * A check of several tensors. Every tensor is held to the larger of its tolerance and twice
 * the group's noise floor (the largest among its tensors): where float32 rounding flips a
 * ReLU in one tensor of a layer, the GPU may flip a neighbouring one instead.
 */
function check(name: string, entries: readonly Entry[]): Check {
  const floor = 2 * Math.max(0, ...entries.map((e) => e.floor));
  const held = entries.map((e) => ({ ...e, tol: Math.max(e.tol, floor) }));
  const badness = (e: Entry) => (Number.isNaN(e.error) ? Infinity : e.tol > 0 ? e.error / e.tol : e.error > 0 ? Infinity : 0);
  let worst = held[0]!;
  for (const e of held) if (badness(e) > badness(worst)) worst = e;
  const f32 = entries.map((e) => e.torchF32).filter((v): v is number => v !== undefined);
  const raised = held.filter((e, i) => e.tol > entries[i]!.tol).length;
  const where = `${worst.what}${worst.note !== undefined ? ` (${worst.note})` : ""}`;
  const parts = [
    ...(held.length === 1 ? (worst.note !== undefined ? [worst.note] : []) : [`${held.length} tensors; worst ${where}`]),
    ...(raised > 0 ? [`tolerance raised to 2x the noise floor ${(floor / 2).toExponential(1)} on ${raised}`] : []),
  ];
  const base = { name, error: worst.error, tol: worst.tol, passed: held.every((e) => e.error <= e.tol), detail: parts.join("; ") };
  return f32.length > 0 ? { ...base, torchF32: Math.max(...f32) } : base;
}

/**
 * An update cannot be compared more finely than float32 resolves the parameter: both sides
 * round p (half an ulp each, and the GPU's p - lr buf once more), so a tiny update of a large
 * tensor (weight decay alone on the single-level aux head: |p - p0| ~ 3e-4 max |p|) gets an
 * allowance of 8 half-ulps of max |p|, relative to max |p - p0|, on top of the tolerance.
 */
export function updateTolerance(tol: number, maxAbs: number, maxAbsDelta: number): number {
  return tol + (8 * 2 ** -24 * maxAbs) / maxAbsDelta;
}

const floorOf = (...values: readonly (number | undefined)[]) => Math.max(0, ...values.map((v) => v ?? 0));

/**
 * Record results grouped into checks (see check() for the tolerance rule). The SGD-trained
 * network's parameters get a second check on their update, max |a - b| / max |p - p0|, and
 * its tensors that must not move (frozen BN affine, unused ASPP branches) must equal their
 * initial values exactly. Adam-trained parameters get no update check: Adam's first steps are
 * lr g / (|g| + eps), so a gradient element near zero makes that element's update
 * float32-noisy at a good fraction of lr (docs/parity.md); their moments are checked instead.
 */
export function groupChecks(prefix: string, results: readonly RecordResult[]): Check[] {
  const groups = new Map<string, Entry[]>();
  const add = (group: string, e: Entry) => {
    const list = groups.get(group) ?? [];
    list.push(e);
    groups.set(group, list);
  };
  for (const r of results) {
    const rec = r.record;
    const base = { what: rec.name, ...(r.note !== undefined ? { note: r.note } : {}) };
    const f32 = rec.torchF32 !== undefined ? { torchF32: rec.torchF32 } : {};
    add(rec.group, { ...base, ...f32, error: r.error, tol: rec.tol, floor: floorOf(rec.torchF32, rec.sensitivity) });
    if (r.updateError === undefined || !rec.name.startsWith("G/")) continue;
    const delta = rec.maxAbsDelta ?? 0;
    if (delta === 0) {
      add("G tensors that must not change (frozen BN affine, unused ASPP branches): exact", { ...base, error: r.updateError, tol: 0, floor: 0 });
    } else {
      const f32u = rec.torchF32Update !== undefined ? { torchF32: rec.torchF32Update } : {};
      add("G parameter updates p - p0", { ...base, ...f32u, error: r.updateError, tol: updateTolerance(rec.tol, rec.maxAbs, delta), floor: floorOf(rec.torchF32Update, rec.updateSensitivity) });
    }
  }
  return [...groups].map(([group, list]) => check(`${prefix}${group}`, list));
}

// ---------------------------------------------------------------------------------------------
// Modules and the device

const PROGRAMS: ReadonlyMap<string, ProgramExport> = new Map([parityForward, parityDiscriminators, ...parityTrain, parityMobileNetForward, parityMobileNetTrain].map((p) => [p.name, p]));

export interface ModuleSource {
  readonly module: GeneratedModule;
  /** "generated" (generated/<name>/module.ts), "compiled" (in process, from examples/parity), or given by the caller. */
  readonly from: "generated" | "compiled" | "given";
}

/** The program's module from generated/ when it is there, else compiled from its export now. */
export async function loadModule(program: string, opts: { readonly compile?: boolean } = {}): Promise<ModuleSource> {
  if (!opts.compile) {
    const registry = path.join(root, "generated/index.ts");
    if (fs.existsSync(registry)) {
      const { modules } = (await import(pathToFileURL(registry).href)) as { modules: Record<string, () => Promise<GeneratedModule>> };
      const load = modules[program];
      if (load) return { module: await load(), from: "generated" };
    }
  }
  const exported = PROGRAMS.get(program);
  if (!exported) throw new Error(`parity: no program ${program} in examples/parity/programs.ts`);
  return { module: compileProgram(exported.build()).module, from: "compiled" };
}

let shared: AcquiredDevice | undefined;

/** One device per process, with the adapter's maximum limits (device.ts raises them). */
export async function parityDevice(): Promise<AcquiredDevice> {
  if (shared) return shared;
  const acquired = await acquireNodeDevice({ maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28, maxStorageBuffersPerShaderStage: 8 })();
  if (E.isLeft(acquired)) throw new Error(acquired.left.message);
  shared = acquired.right;
  return shared;
}

// ---------------------------------------------------------------------------------------------
// Running a case

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return sameValue(ka, kb) && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/**
 * The fixture was made for this program: every configuration key it states has the program's
 * value, or, for a hyperparameter the fixture sets, the value written into the vector.
 */
function configCheck(fx: Fixture, module: GeneratedModule): Check {
  const effective: Record<string, unknown> = { ...module.config, ...(fx.hyperparameters ?? {}) };
  const differing = Object.keys(fx.config).filter((k) => !sameValue(fx.config[k], effective[k]));
  const what = differing.map((k) => `${k}: fixture ${JSON.stringify(fx.config[k])}, program ${JSON.stringify(effective[k])}`).join("; ");
  const detail = differing.length > 0 ? what : `${Object.keys(fx.config).length} keys`;
  return { name: `${fx.case}: configuration equals the program's`, error: differing.length, tol: 0, passed: differing.length === 0, detail };
}

/**
 * Every param and state tensor is either initialised by the fixture or is optimizer state
 * (declared zero); with initsFrom "spec", the module's declared inits equal the fixture's,
 * which Python wrote from the spec (§1.8, §2).
 */
function initCheck(fx: Fixture, slots: readonly TensorSlot[]): Check {
  const problems: string[] = [];
  const names = new Set(slots.map((s) => s.name));
  for (const name of Object.keys(fx.inits)) if (!names.has(name)) problems.push(`${name} is not in the module`);
  for (const s of slots) {
    const fixtureInit = fx.inits[s.name];
    if (fixtureInit === undefined) {
      if (!sameValue(s.init, { kind: "constant", value: 0 } satisfies InitSpec)) problems.push(`${s.name} has no init in the fixture and is not zero-initialised state`);
    } else if (fx.initsFrom === "spec" && !sameValue(s.init, fixtureInit)) {
      problems.push(`${s.name}: declared ${JSON.stringify(s.init)}, spec ${JSON.stringify(fixtureInit)}`);
    }
  }
  const name = fx.initsFrom === "spec" ? `${fx.case}: declared initialisation equals the spec's` : `${fx.case}: every tensor is initialised by the fixture`;
  const detail = problems.length > 0 ? `${problems.length} problems: ${problems.slice(0, 3).join("; ")}` : `${slots.length} tensors`;
  return { name, error: problems.length, tol: 0, passed: problems.length === 0, detail };
}

export interface CaseResult {
  readonly checks: readonly Check[];
  readonly from: ModuleSource["from"];
  readonly seconds: number;
}

export interface RunOptions {
  readonly compile?: boolean;
  readonly dir?: string;
  /** Run this module instead of the fixture's program (to see that a changed program fails). */
  readonly module?: GeneratedModule;
}

/** Runs one fixture's program on the device and returns its checks. */
export async function runCase(name: string, opts: RunOptions = {}): Promise<CaseResult> {
  const started = performance.now();
  const fx = loadFixture(name, opts.dir);
  const source: ModuleSource = opts.module ? { module: opts.module, from: "given" } : await loadModule(fx.program, opts);
  const { module } = source;
  const gpu = await parityDevice();
  const made = await instantiate(gpu.device, module, gpu.adapterClass);
  if (E.isLeft(made)) throw new Error(`parity ${fx.case}: ${made.left.message}`);
  const instance: Instance = made.right;
  try {
    const slots = module.tensors.filter((t) => t.role === "param" || t.role === "state");
    const checks: Check[] = [configCheck(fx, module), initCheck(fx, slots)];
    for (const s of slots) {
      const init = fx.inits[s.name];
      instance.write(s.name, init ? drawValues(init, numel(s.shape), fx.seed, s.name) : new Float32Array(numel(s.shape)));
    }
    // Without fx.hyperparameters the instance keeps the defaults instantiate() wrote.
    if (fx.hyperparameters !== undefined) {
      const vector = hyperVector(module, fx.hyperparameters);
      if (E.isLeft(vector)) throw new Error(`parity ${fx.case}: ${vector.left}`);
      instance.write(HYPER_SLOT, vector.right);
    }
    const shapes = new Map(module.tensors.map((t) => [t.name, t.shape]));
    for (const [k, step] of fx.steps.entries()) {
      for (const [input, spec] of Object.entries(step.inputs)) {
        const shape = shapes.get(input);
        if (!shape) throw new Error(`parity ${fx.case}: the module has no input ${input}`);
        instance.write(input, inputValues(spec, shape, fx.seed));
      }
      instance.step(1);
      const present = step.records.filter((r) => shapes.has(r.name));
      const values = await instance.readMany(present.map((r) => r.name));
      const byName = new Map<string, TensorData>(present.map((r, i) => [r.name, values[i]!]));
      const results = step.records.map((r) => {
        const actual = byName.get(r.name);
        return actual ? compareRecord(fx, r, actual) : { record: r, error: Infinity, note: "not in the module" };
      });
      const prefix = fx.steps.length > 1 ? `${fx.case} it${step.iteration ?? k}: ` : `${fx.case}: `;
      checks.push(...groupChecks(prefix, results));
    }
    return { checks, from: source.from, seconds: (performance.now() - started) / 1000 };
  } finally {
    instance.destroy();
  }
}

/** One line per check: status, name, error and tolerance, PyTorch float32's error, detail. */
export function renderCheck(c: Check): string {
  const num = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
  const f32 = c.torchF32 !== undefined ? `  torch-f32 ${num(c.torchF32)}` : "";
  const detail = c.detail ? `  [${c.detail}]` : "";
  return `${c.passed ? "ok  " : "FAIL"}  ${c.name}  err ${num(c.error)} (tol ${num(c.tol)})${f32}${detail}`;
}
