// Our side of a benchmark: compile a DSL program in-process, instantiate it for the device's
// adapter class, time step(reps) + sync() (the sleeping wait), and profile one step with GPU
// timestamps to split the time between the dispatches (packing, split-K partials and combines
// are part of our kernels and are reported as such).

import * as E from "fp-ts/lib/Either.js";
import { performance } from "node:perf_hooks";
import { type Compiled, compileProgram } from "../codegen/compile";
import type { Program } from "../dsl/index";
import type { AcquiredDevice } from "../runtime/device";
import type { AdapterClass } from "../format/module";
import { type Instance, type KernelTime, type TensorInput, instantiate } from "../runtime/runner";
import { chooseVariant } from "../runtime/check-module";
import { nodeTune } from "../runtime/node-tune";
import { type TileChoices, tuneKey } from "../runtime/tune";
import type { GeneratedModule } from "../format/module";
import { type Contender, type Sample, warmUp } from "./measure";

/** Kernel template of a dispatch: its anchor op plus the stage suffix the templates add. */
export function templateOf(stageName: string, anchor: string): string {
  const suffix = /_(stage\d+|partial|w?packc?|combine|transpose)$/.exec(stageName)?.[1];
  return suffix ? `${anchor}_${suffix}` : anchor;
}

export interface DispatchProfile {
  readonly name: string;
  readonly template: string;
  readonly ms: number;
  readonly flops: number;
}

/** Per-dispatch GPU times of one profiled step, joined with the compiler's FLOP counts. */
export function joinProfile(compiled: Compiled, times: readonly KernelTime[]): DispatchProfile[] {
  // Dispatches and kernel records are in the same order (one record per dispatch).
  const dispatches = compiled.module.phases.flatMap((p) => p.dispatches);
  const byName = new Map(dispatches.map((d, i) => [d.name, compiled.kernels[i]!]));
  return times.map((t) => {
    const k = byName.get(t.name);
    return { name: t.name, template: k ? templateOf(k.stage.name, k.anchor) : "?", ms: t.ms, flops: k?.stage.flops ?? 0 };
  });
}

/** A deterministic pseudo-random fill in [-scale, scale] (values only matter for denormals). */
export function randomData(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (((s >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Which tiles our contender runs: the tuned ones (what a user's run gets: runtime/node-tune.ts,
 * honouring ADAPTSEG_TUNE), or every tiled use at `rows` rows where that is one of its candidates.
 */
export type BenchTiles = { readonly kind: "tuned" } | { readonly kind: "fixed"; readonly rows: number };

/** The tile a tiled dispatch ran with, of its candidates. */
export interface TileUse {
  readonly dispatch: string;
  readonly rows: number;
  readonly candidates: readonly number[];
}

/** The dispatches with tile candidates on this adapter, and the tile each runs with `tiles`. */
export function tileUses(module: GeneratedModule, acquired: AcquiredDevice, tiles: TileChoices): TileUse[] {
  const features = new Set<string>([...acquired.device.features]);
  return module.phases.flatMap((p) =>
    p.dispatches.flatMap((dispatch) => {
      const v = chooseVariant(dispatch, acquired.adapterClass, features);
      if (E.isLeft(v) || v.right.tile === undefined) return [];
      const chosen = tiles.get(tuneKey(module.shaders[v.right.shader]!, v.right));
      const rows = chosen !== undefined && v.right.tile.candidates.includes(chosen) ? chosen : v.right.tile.rows;
      return [{ dispatch: dispatch.name, rows, candidates: v.right.tile.candidates }];
    }),
  );
}

/** Choices that run every tiled use of `module` at `rows` rows where it can. */
function fixedTiles(module: GeneratedModule, acquired: AcquiredDevice, rows: number): Map<string, number> {
  const features = new Set<string>([...acquired.device.features]);
  const out = new Map<string, number>();
  for (const d of module.phases.flatMap((p) => p.dispatches)) {
    const v = chooseVariant(d, acquired.adapterClass, features);
    if (E.isRight(v) && v.right.tile?.candidates.includes(rows)) out.set(tuneKey(module.shaders[v.right.shader]!, v.right), rows);
  }
  return out;
}

export interface OursOptions {
  readonly impl?: string;
  readonly targetMs: number;
  readonly maxReps?: number;
  /** Default: tuned. */
  readonly tiles?: BenchTiles;
  /** Where tuning progress goes (default stderr). */
  readonly log?: (line: string) => void;
  /** Called after prepare with the compiled program and instance (inputs, extra reporting). */
  readonly onReady?: (compiled: Compiled, instance: Instance) => void;
}

/** Our compiled program as a benchmark contender; `profile()` afterwards gives GPU times. */
export class OursContender implements Contender {
  readonly impl: string;
  compiled: Compiled | undefined;
  instance: Instance | undefined;
  compileMs = 0;
  instantiateMs = 0;
  /** The tile each tiled dispatch ran with (set by prepare). */
  tiles: TileUse[] = [];
  firstStepMs = 0;

  constructor(
    private readonly acquired: AcquiredDevice,
    private readonly build: () => Program,
    private readonly inputs: (compiled: Compiled) => ReadonlyMap<string, TensorInput>,
    private readonly opts: OursOptions,
  ) {
    this.impl = opts.impl ?? "ours";
  }

  get adapterClass(): AdapterClass {
    return this.acquired.adapterClass;
  }

  async prepare(): Promise<{ reps: number }> {
    const t0 = performance.now();
    this.compiled = compileProgram(this.build());
    const t1 = performance.now();
    const module = this.compiled.module;
    const wanted = this.opts.tiles ?? { kind: "tuned" };
    let tiles: TileChoices;
    if (wanted.kind === "fixed") tiles = fixedTiles(module, this.acquired, wanted.rows);
    else {
      const tuned = await nodeTune(this.acquired, [module], this.opts.log ? { log: this.opts.log } : {});
      if (E.isLeft(tuned)) throw new Error(tuned.left.message);
      tiles = tuned.right.choices;
    }
    this.tiles = tileUses(module, this.acquired, tiles);
    const t2tune = performance.now();
    const inst = await instantiate(this.acquired.device, module, this.acquired.adapterClass, { tiles });
    if (E.isLeft(inst)) throw new Error(inst.left.message);
    this.instance = inst.right;
    const t2 = performance.now();
    this.compileMs = t1 - t0;
    this.instantiateMs = t2 - t2tune;
    for (const [name, data] of this.inputs(this.compiled)) this.instance.write(name, data);
    this.opts.onReady?.(this.compiled, this.instance);
    // The first step pays for lavapipe's lazy shader compilation.
    const { coldMs, reps } = await warmUp(async () => (await this.run(1)).ms, this.opts.targetMs, this.opts.maxReps);
    this.firstStepMs = coldMs;
    return { reps };
  }

  async run(reps: number): Promise<Sample> {
    const inst = this.instance!;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    inst.step(reps);
    await inst.sync();
    const ms = (performance.now() - t0) / reps;
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000 / reps };
  }

  /** Per-dispatch GPU times of one step (undefined without 'timestamp-query'), set by finish(). */
  profiled: DispatchProfile[] | undefined;

  async finish(): Promise<void> {
    const times = await this.instance!.profile();
    this.profiled = times && joinProfile(this.compiled!, times);
  }

  async dispose(): Promise<void> {
    this.instance?.destroy();
    this.instance = undefined;
  }
}
