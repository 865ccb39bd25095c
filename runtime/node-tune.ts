// Tile tuning under Node: the cache file under the user's cache directory, the ADAPTSEG_TUNE
// switch, progress on stderr, and instantiate with the tuned tiles. Everything Node-specific of
// tuning lives here; runtime/tune.ts is the portable part (a browser supplies its own TuneStore).

import { open, mkdir, readFile, rename, rm } from "node:fs/promises";
import { cpus, homedir } from "node:os";
import { dirname, join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import type { GeneratedModule } from "../format/module.js";
import { type AcquiredDevice, describeAdapter, runtimeError, type RuntimeError } from "./device.js";
import { type Instance, instantiate } from "./runner.js";
import { type TileChoices, type TuneMode, type TuneResult, type TuneStore, adapterKey, tuneModules } from "./tune.js";

/** The environment variable that turns tuning off, on for missing uses (default), or on for all. */
export const TUNE_ENV = "ADAPTSEG_TUNE";

/** `$XDG_CACHE_HOME/adaptsegnet-webgpu/tiles.json`, XDG_CACHE_HOME defaulting to ~/.cache. */
export function tuneCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "adaptsegnet-webgpu", "tiles.json");
}

/** off | lazy (tune uses the cache lacks; the default) | force (tune every use again). */
export function tuneModeFrom(env: NodeJS.ProcessEnv = process.env): E.Either<string, TuneMode> {
  const v = (env[TUNE_ENV] ?? "").trim().toLowerCase();
  if (v === "" || v === "lazy" || v === "on" || v === "1") return E.right("lazy");
  if (v === "off" || v === "0") return E.right("off");
  if (v === "force") return E.right("force");
  return E.left(`${TUNE_ENV}=${env[TUNE_ENV]}: expected off, lazy or force`);
}

/** A cache file: read whole; written to a temporary file in its directory, fsynced, renamed over it. */
export function fileStore(path: string): TuneStore {
  return {
    where: path,
    load: async () => {
      try {
        return await readFile(path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
      }
    },
    save: async (text: string) => {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`;
      try {
        const handle = await open(tmp, "w");
        try {
          await handle.writeFile(text, "utf8");
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tmp, path);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    },
  };
}

/**
 * What the adapter's info does not say about the machine: a CPU adapter (lavapipe, SwiftShader)
 * reports the same strings on every host, and its speed is the CPU's.
 */
export function hostPart(acquired: Pick<AcquiredDevice, "adapterClass">): string {
  return acquired.adapterClass === "cpu" ? `${cpus()[0]?.model.trim() ?? "unknown CPU"} x${cpus().length}` : "";
}

/**
 * The process's CPU time in milliseconds (every thread, lavapipe's included): what a tile costs a
 * CPU adapter. On a shared machine the wall time of one dispatch swings by tens of percent with
 * how many cores other processes leave lavapipe, its CPU time by a few (docs/tuning.md). Every
 * candidate has enough workgroups to keep the threads busy (cpuTile), so less work is faster.
 */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface NodeTuneOptions {
  readonly mode?: TuneMode;
  readonly store?: TuneStore;
  /** Where progress and warnings go (default stderr). */
  readonly log?: (line: string) => void;
}

/** Progress lines: one when tuning starts, then about every tenth of the uses, and the end. */
function progressLogger(log: (line: string) => void, adapter: string, where: string) {
  let last = -1;
  return (done: number, total: number, dispatch: string) => {
    if (done === 0) {
      log(`tune: measuring the tile candidates of ${total} kernel use(s) on ${adapter}, once (cache ${where}; ${TUNE_ENV}=off skips)`);
    }
    const tenth = Math.floor((10 * done) / total);
    if (tenth !== last && done > 0) log(`tune: ${done}/${total} (${dispatch})`);
    last = tenth;
  };
}

/** The tuned tiles of `modules` on this device (mode from ADAPTSEG_TUNE unless given). */
export async function nodeTune(acquired: AcquiredDevice, modules: readonly GeneratedModule[], opts: NodeTuneOptions = {}): Promise<E.Either<RuntimeError, TuneResult>> {
  const mode = opts.mode !== undefined ? E.right(opts.mode) : tuneModeFrom();
  if (E.isLeft(mode)) return E.left(runtimeError("tune", mode.left));
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const store = opts.store ?? fileStore(tuneCachePath());
  const progress = progressLogger(log, describeAdapter(acquired.info), store.where);
  const started = performance.now();
  const result = await tuneModules({
    device: acquired.device,
    adapterClass: acquired.adapterClass,
    adapter: adapterKey(acquired.info, hostPart(acquired)),
    modules,
    store,
    mode: mode.right,
    warn: (m) => log(`warning: ${m}`),
    ...(acquired.adapterClass === "cpu" ? { clock: processCpuMs } : {}),
    progress: (done, total, use) => progress(done, total, use.dispatch),
  });
  if (E.isRight(result) && result.right.tuned.size > 0) {
    log(`tune: ${result.right.tuned.size}/${result.right.tuned.size} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return result;
}

/** instantiate() with the tiles tuned for this device (tuning the module's missing uses first, unless ADAPTSEG_TUNE=off). */
export async function instantiateTuned(acquired: AcquiredDevice, module: GeneratedModule, opts: NodeTuneOptions = {}): Promise<E.Either<RuntimeError, Instance>> {
  const tuned = await nodeTune(acquired, [module], opts);
  if (E.isLeft(tuned)) return tuned;
  const tiles: TileChoices = tuned.right.choices;
  return instantiate(acquired.device, module, acquired.adapterClass, { tiles });
}
