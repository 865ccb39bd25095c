// Tile tuning: which of a kernel use's tile candidates (format/module.ts, TileSpec) runs fastest on
// this device, measured once and remembered per adapter.
//
// A CPU variant's row tile was chosen on one machine (codegen/wgsl/templates/tiling.ts); another
// microarchitecture can prefer another. Every candidate gives the same bits (each output sums its
// terms in one fixed order whatever the tile), so the choice changes speed only, never results.
// For each distinct use (kernel text, override values, grid) with two or more candidates, the tuner
// runs every candidate on scratch buffers of the use's binding sizes, times it by wall clock over a
// few repetitions, and keeps the fastest. The choices are kept in a cache (a JSON text) keyed by
// the adapter and the use; where the text is kept is the caller's: a TuneStore (runtime/node-tune.ts
// keeps it under the user's cache directory; a browser may keep it in its own storage, tests in
// memory).
//
// Pure WebGPU API and ECMAScript: the same code runs on Dawn under Node and in a browser.

import * as E from "fp-ts/lib/Either.js";
import { crc32 } from "../format/crc32.js";
import {
  type AdapterClass,
  type GeneratedModule,
  type KernelVariant,
  type ShaderSpec,
  tileWorkgroups,
} from "../format/module.js";
import { chooseVariant, deviceFeatures } from "./check-module.js";
import { runtimeError, type RuntimeError } from "./device.js";
import { pipelineFor } from "./pipelines.js";
import { sleepingWait } from "./wait.js";

// ---------------------------------------------------------------------------------------------
// Choices and their keys

/** Chosen tile rows by use key (tuneKey). */
export type TileChoices = ReadonlyMap<string, number>;

/**
 * The identity of a use for tuning: a checksum of the kernel text (names are readable, not
 * content-stable), its override values and its untuned grid. Offsets of its bindings do not
 * matter to its speed, so uses at other offsets share one entry.
 */
export function tuneKey(shader: ShaderSpec, v: Pick<KernelVariant, "constants" | "workgroups">): string {
  return `${textSum(shader)}:${(v.constants ?? []).join(",")}:${v.workgroups.join("x")}`;
}

/** CRC-32 of each shader's text, once per ShaderSpec object (a module uses one many times). */
const sums = new WeakMap<ShaderSpec, string>();

function textSum(shader: ShaderSpec): string {
  let sum = sums.get(shader);
  if (sum === undefined) {
    sum = crc32(new TextEncoder().encode(shader.wgsl)).toString(16).padStart(8, "0");
    sums.set(shader, sum);
  }
  return sum;
}

/** The variant run with a tile of `rows` rows: its grid along the tile's axis, and the tile's rows. */
export function withTile(v: KernelVariant, rows: number): KernelVariant {
  if (v.tile === undefined) return v;
  return { ...v, workgroups: tileWorkgroups(v.workgroups, v.tile, rows), tile: { ...v.tile, rows } };
}

/** The variant with the chosen tile, or its default where there is no (valid) choice. */
export function chooseTile(shader: ShaderSpec, v: KernelVariant, choices: TileChoices): KernelVariant {
  if (v.tile === undefined) return v;
  const rows = choices.get(tuneKey(shader, v));
  return rows !== undefined && v.tile.candidates.includes(rows) ? withTile(v, rows) : v;
}

/** The adapter as a cache key: what its info says, and what the host adds (a CPU's model). */
export function adapterKey(info: Pick<GPUAdapterInfo, "vendor" | "architecture" | "device" | "description">, host = ""): string {
  return [info.vendor, info.architecture, info.device, info.description, host].join("|");
}

// ---------------------------------------------------------------------------------------------
// The cache text

export const TUNE_CACHE_FORMAT = "adaptsegnet-tune";
export const TUNE_CACHE_VERSION = 1;

/** One tuned use: the rows chosen, and each candidate's measured milliseconds per dispatch. */
export interface TuneEntry {
  readonly rows: number;
  readonly ms: Readonly<Record<string, number>>;
}

export interface TuneCache {
  readonly format: typeof TUNE_CACHE_FORMAT;
  readonly version: typeof TUNE_CACHE_VERSION;
  /** By adapterKey, then by tuneKey. */
  readonly adapters: Readonly<Record<string, Readonly<Record<string, TuneEntry>>>>;
}

export const emptyCache = (): TuneCache => ({ format: TUNE_CACHE_FORMAT, version: TUNE_CACHE_VERSION, adapters: {} });

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isPositiveInt = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x > 0;

function checkEntry(x: unknown): boolean {
  if (!isRecord(x) || !isPositiveInt(x["rows"]) || !isRecord(x["ms"])) return false;
  return Object.values(x["ms"]).every((m) => typeof m === "number" && Number.isFinite(m) && m >= 0);
}

/** The cache a text holds, or why it is not one (not JSON, another format or version, a bad entry). */
export function parseTuneCache(text: string): E.Either<string, TuneCache> {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    return E.left(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isRecord(x) || x["format"] !== TUNE_CACHE_FORMAT) return E.left(`not a tuning cache (format is not "${TUNE_CACHE_FORMAT}")`);
  if (x["version"] !== TUNE_CACHE_VERSION) return E.left(`version ${JSON.stringify(x["version"])}, this program reads version ${TUNE_CACHE_VERSION}`);
  const adapters = x["adapters"];
  if (!isRecord(adapters)) return E.left("it has no adapters table");
  for (const [adapter, uses] of Object.entries(adapters)) {
    if (!isRecord(uses)) return E.left(`adapter '${adapter}': not a table of uses`);
    const bad = Object.entries(uses).find(([, entry]) => !checkEntry(entry));
    if (bad !== undefined) return E.left(`adapter '${adapter}', use '${bad[0]}': not {rows, ms}`);
  }
  return E.right(x as unknown as TuneCache);
}

export const renderTuneCache = (cache: TuneCache): string => `${JSON.stringify(cache, null, 1)}\n`;

/** The cache with `entries` added to (or replacing those of) adapter `key`. */
export function withEntries(cache: TuneCache, key: string, entries: ReadonlyMap<string, TuneEntry>): TuneCache {
  return { ...cache, adapters: { ...cache.adapters, [key]: { ...(cache.adapters[key] ?? {}), ...Object.fromEntries(entries) } } };
}

/** The choices a cache holds for one adapter. */
export function choicesOf(cache: TuneCache, key: string): Map<string, number> {
  return new Map(Object.entries(cache.adapters[key] ?? {}).map(([use, e]) => [use, e.rows]));
}

/**
 * Where the cache text is kept. load: the text, or undefined when there is none yet; it may
 * reject (unreadable), as may save. `where` names the place in messages (a file's path).
 */
export interface TuneStore {
  readonly where: string;
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
}

/** A store in memory (tests, or a page that tunes once per visit). */
export function memoryStore(initial?: string): TuneStore & { text: string | undefined } {
  const store = {
    where: "memory",
    text: initial,
    load: async () => store.text,
    save: async (text: string) => {
      store.text = text;
    },
  };
  return store;
}

/** The cache a store holds; an unreadable or invalid one is reported through `warn` and read as empty. */
export async function loadCache(store: TuneStore, warn: (message: string) => void): Promise<TuneCache> {
  let text: string | undefined;
  try {
    text = await store.load();
  } catch (e) {
    warn(`tuning cache ${store.where} cannot be read (${e instanceof Error ? e.message : String(e)}); ignoring it`);
    return emptyCache();
  }
  if (text === undefined) return emptyCache();
  const parsed = parseTuneCache(text);
  if (E.isRight(parsed)) return parsed.right;
  warn(`tuning cache ${store.where} is not valid: ${parsed.left}; ignoring it (the next tune rewrites it)`);
  return emptyCache();
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** A use to tune: the variant this adapter runs, with its shader and binding sizes. */
export interface TunableUse {
  readonly key: string;
  readonly shader: ShaderSpec;
  readonly variant: KernelVariant;
  readonly bindingBytes: readonly number[];
  /** The first dispatch that makes this use, for progress lines. */
  readonly dispatch: string;
}

/** The distinct uses of `modules` with two or more tile candidates, as this adapter runs them. */
export function tunableUses(modules: readonly GeneratedModule[], adapterClass: AdapterClass, features: ReadonlySet<string>): TunableUse[] {
  const uses = new Map<string, TunableUse>();
  for (const module of modules) {
    for (const phase of module.phases) {
      for (const d of phase.dispatches) {
        const v = chooseVariant(d, adapterClass, features);
        if (E.isLeft(v) || v.right.tile === undefined || v.right.tile.candidates.length < 2) continue;
        const shader = module.shaders[v.right.shader];
        if (shader === undefined) continue;
        const key = tuneKey(shader, v.right);
        if (!uses.has(key)) uses.set(key, { key, shader, variant: v.right, bindingBytes: d.bindings.map((b) => b.bytes), dispatch: d.name });
      }
    }
  }
  return [...uses.values()];
}

/** How long tuning measures each candidate. */
export interface TuneBudget {
  /** Timed repetitions per candidate (the fastest counts). */
  readonly reps: number;
  /** Dispatches per repetition are added until one repetition lasts this long (at most 64). */
  readonly minRepMs: number;
}

export const DEFAULT_BUDGET: TuneBudget = { reps: 3, minRepMs: 20 };

/**
 * A clock in milliseconds: wall time (performance.now) by default; under Node with a CPU adapter,
 * the process's CPU time (runtime/node-tune.ts), which a crowded machine barely disturbs.
 */
export type Clock = () => number;

/** Milliseconds of `count` dispatches of one pipeline, submitted together, waited for. */
async function timeDispatches(device: GPUDevice, pipeline: GPUComputePipeline, group: GPUBindGroup, grid: readonly number[], count: number, clock: Clock): Promise<number> {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  for (let i = 0; i < count; i++) pass.dispatchWorkgroups(grid[0]!, grid[1]!, grid[2]!);
  pass.end();
  const t0 = clock();
  device.queue.submit([encoder.finish()]);
  await sleepingWait(device.queue.onSubmittedWorkDone());
  return clock() - t0;
}

/** Milliseconds per dispatch of one candidate: one untimed run (it compiles), then the fastest of budget.reps. */
async function timeCandidate(device: GPUDevice, use: TunableUse, rows: number, buffers: readonly GPUBuffer[], budget: TuneBudget, clock: Clock): Promise<E.Either<RuntimeError, number>> {
  const v = withTile(use.variant, rows);
  const pipeline = await pipelineFor(device, use.shader, v);
  if (E.isLeft(pipeline)) return pipeline;
  const group = device.createBindGroup({
    layout: pipeline.right.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const first = await timeDispatches(device, pipeline.right, group, v.workgroups, 1, clock);
  const second = await timeDispatches(device, pipeline.right, group, v.workgroups, 1, clock);
  const count = Math.max(1, Math.min(64, Math.ceil(budget.minRepMs / Math.max(Math.min(first, second), 1e-3))));
  let best = Math.min(first, second);
  for (let r = 0; r < budget.reps; r++) best = Math.min(best, (await timeDispatches(device, pipeline.right, group, v.workgroups, count, clock)) / count);
  return E.right(best);
}

/** Times every candidate of one use on scratch buffers of its binding sizes; the fastest wins. */
export async function tuneUse(device: GPUDevice, use: TunableUse, budget: TuneBudget = DEFAULT_BUDGET, clock: Clock = () => performance.now()): Promise<E.Either<RuntimeError, TuneEntry>> {
  const tile = use.variant.tile;
  if (tile === undefined) return E.left(runtimeError("module", `dispatch '${use.dispatch}' has no tile candidates`));
  device.pushErrorScope("validation");
  const buffers = use.bindingBytes.map((bytes, i) =>
    device.createBuffer({ label: `tune ${use.dispatch} binding ${i}`, size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.STORAGE }),
  );
  const ms: Record<string, number> = {};
  try {
    for (const rows of tile.candidates) {
      const t = await timeCandidate(device, use, rows, buffers, budget, clock);
      if (E.isLeft(t)) return t;
      ms[String(rows)] = t.right;
    }
  } finally {
    const error = await device.popErrorScope();
    for (const b of buffers) b.destroy();
    if (error !== null) return E.left(runtimeError("module", `tuning dispatch '${use.dispatch}': ${error.message}`));
  }
  // The fastest; a tie keeps the smaller tile (the first listed).
  const rows = tile.candidates.reduce((best, r) => (ms[String(r)]! < ms[String(best)]! ? r : best));
  return E.right({ rows, ms });
}

// ---------------------------------------------------------------------------------------------
// Choosing tiles for modules

/** Whether an entry measured exactly the use's candidates (a codegen change may alter them). */
function measuredAll(entry: TuneEntry | undefined, use: TunableUse): boolean {
  const candidates = use.variant.tile?.candidates ?? [];
  const measured = Object.keys(entry?.ms ?? {});
  return entry !== undefined && measured.length === candidates.length && candidates.every((r) => measured.includes(String(r)));
}

/** off: the defaults, nothing measured; lazy: tune the uses the cache lacks; force: tune every use. */
export type TuneMode = "off" | "lazy" | "force";

export interface TuneRequest {
  readonly device: GPUDevice;
  readonly adapterClass: AdapterClass;
  /** adapterKey of the device's adapter. */
  readonly adapter: string;
  readonly modules: readonly GeneratedModule[];
  readonly store: TuneStore;
  readonly mode: TuneMode;
  /** A warning (an unreadable cache, a failed save), for the caller to show. */
  readonly warn: (message: string) => void;
  /** Called before each use is tuned: its position, the number to tune, and the use. */
  readonly progress?: (done: number, total: number, use: TunableUse) => void;
  readonly budget?: TuneBudget;
  /** What the measurements read (default wall time). */
  readonly clock?: Clock;
}

export interface TuneResult {
  readonly choices: TileChoices;
  /** The entries measured by this call (empty when the cache had them all, or mode off). */
  readonly tuned: ReadonlyMap<string, TuneEntry>;
  /** Every entry the cache now holds for this adapter. */
  readonly entries: Readonly<Record<string, TuneEntry>>;
}

/**
 * The tile choices for `modules` on this device: those of the cache, and (unless mode is off)
 * those measured now for the uses it lacks, which are saved back to the store. Left only when a
 * candidate cannot run at all (a pipeline that does not compile), an error instantiate would
 * report too.
 */
export async function tuneModules(req: TuneRequest): Promise<E.Either<RuntimeError, TuneResult>> {
  const cache = await loadCache(req.store, req.warn);
  const known = cache.adapters[req.adapter] ?? {};
  if (req.mode === "off") return E.right({ choices: choicesOf(cache, req.adapter), tuned: new Map(), entries: known });
  const features = deviceFeatures(req.device);
  const todo = tunableUses(req.modules, req.adapterClass, features).filter((u) => req.mode === "force" || !measuredAll(known[u.key], u));
  const tuned = new Map<string, TuneEntry>();
  for (const [i, use] of todo.entries()) {
    req.progress?.(i, todo.length, use);
    const entry = await tuneUse(req.device, use, req.budget, req.clock);
    if (E.isLeft(entry)) return entry;
    tuned.set(use.key, entry.right);
  }
  // Merged into the store's latest text: another process may have tuned other uses meanwhile.
  const updated = tuned.size > 0 ? withEntries(await loadCache(req.store, () => undefined), req.adapter, tuned) : cache;
  if (tuned.size > 0) {
    try {
      await req.store.save(renderTuneCache(updated));
    } catch (e) {
      req.warn(`tuning cache ${req.store.where} cannot be written (${e instanceof Error ? e.message : String(e)}); the choices hold for this run only`);
    }
  }
  return E.right({ choices: choicesOf(updated, req.adapter), tuned, entries: updated.adapters[req.adapter] ?? {} });
}
