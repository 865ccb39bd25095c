// What `npm run tune` does: load the named programs (or module files), acquire the device they
// need, time the tile candidates of every kernel use the cache lacks (all of them with --force),
// and report the choices. runtime/tune.ts measures; runtime/node-tune.ts keeps the cache.

import * as E from "fp-ts/lib/Either.js";
import { parseArgs } from "node:util";
import type { GeneratedModule } from "../format/module.js";
import { describeAdapter } from "../runtime/device.js";
import { nodeTune, tuneCachePath } from "../runtime/node-tune.js";
import { type TuneEntry, tunableUses } from "../runtime/tune.js";
import { fromRuntimeError, trainError, type TrainError } from "../train/errors.js";
import { listPrograms, loadModule } from "../train/programs.js";
import { acquireFor } from "./train.js";

export const TUNE_USAGE = `usage: npm run tune -- [--program NAME ...] [--module FILE.ts ...] [--force]
  --program NAME   a generated program (repeatable; default: the *-cpu-demo programs, since
                   the full-size ones take hours to tune on a CPU adapter)
  --module FILE    a generated module file (a user's network: codegen --from DIR --out DIR)
  --force          measure every use again, not only those the cache lacks
Times the tile candidates of each kernel use on this machine's adapter and keeps the fastest in
${tuneCachePath()} ($XDG_CACHE_HOME/adaptsegnet-webgpu/tiles.json); trainer, eval and demo read it.`;

export interface TuneCliOptions {
  readonly programs: readonly string[];
  readonly modules: readonly string[];
  readonly force: boolean;
}

export function parseTuneOptions(argv: readonly string[]): E.Either<TrainError, TuneCliOptions> {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { program: { type: "string", multiple: true }, module: { type: "string", multiple: true }, force: { type: "boolean", default: false } },
      allowPositionals: true,
    });
    if (positionals.length > 0) return E.left(trainError("options", `unexpected argument ${positionals[0]}`));
    return E.right({ programs: values.program ?? [], modules: values.module ?? [], force: values.force ?? false });
  } catch (e) {
    return E.left(trainError("options", e instanceof Error ? e.message : String(e)));
  }
}

export interface TuneSummary {
  readonly adapter: string;
  readonly cache: string;
  /** Uses with tile candidates in the programs, measured now, and the choices by rows. */
  readonly uses: number;
  readonly tuned: number;
  readonly chosen: Readonly<Record<string, number>>;
  readonly seconds: number;
}

/** How many of `keys` chose each row count. */
function tally(entries: Readonly<Record<string, TuneEntry>>, keys: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) {
    const e = entries[k];
    if (e !== undefined) out[String(e.rows)] = (out[String(e.rows)] ?? 0) + 1;
  }
  return out;
}

/** The programs tuned when none is named: the cpu-demo ones (the full-size ones take hours on a CPU). */
export function defaultPrograms(all: readonly string[]): string[] {
  return all.filter((n) => n.endsWith("-cpu-demo"));
}

export async function runTuneCli(o: TuneCliOptions, log: (line: string) => void): Promise<E.Either<TrainError, TuneSummary>> {
  const named = o.programs.length + o.modules.length > 0;
  const names = named ? [...o.programs, ...o.modules] : defaultPrograms(listPrograms());
  if (names.length === 0) return E.left(trainError("program", "no cpu-demo program is generated; name programs with --program"));
  if (!named) log(`tune: programs: ${names.join(", ")} (name others with --program)`);
  const modules: GeneratedModule[] = [];
  for (const name of names) {
    const m = await loadModule(name)();
    if (E.isLeft(m)) return m;
    modules.push(m.right);
  }
  const device = await acquireFor(modules);
  if (E.isLeft(device)) return device;
  const started = performance.now();
  const r = await nodeTune(device.right, modules, { mode: o.force ? "force" : "lazy", log });
  if (E.isLeft(r)) return E.left(fromRuntimeError(r.left));
  const keys = tunableUses(modules, device.right.adapterClass, new Set<string>([...device.right.device.features])).map((u) => u.key);
  return E.right({
    adapter: describeAdapter(device.right.info),
    cache: tuneCachePath(),
    uses: keys.length,
    tuned: r.right.tuned.size,
    chosen: tally(r.right.entries, keys),
    seconds: (performance.now() - started) / 1000,
  });
}
