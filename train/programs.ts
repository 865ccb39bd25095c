// Finding the generated program a run needs.
//
// What changes the graph (sizes, class count, the GAN objective, the network) is compiled into a
// program. So such a command-line option does not change a program: it selects one whose config
// has that value, or the run is refused with what to add (a preset in
// examples/adaptsegnet/presets.ts, its program in programs.ts, then `npm run codegen`). Learning
// rates, loss weights and the other numeric hyperparameters are run-time values of every program
// (hyperparameters.ts): they take no part in choosing one. Programs are read from
// generated/<name>/module.ts by path, so a registry written by a partial codegen (--only) is not
// needed.

import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { GeneratedModule } from "../format/module.js";
import { trainError, type TrainError } from "./errors.js";
import { HYPER_OPTIONS } from "./hyperparameters.js";
import { type Described, describeDifference, tensorDifferences } from "./signature.js";
import { expectedTable, persistentSlots } from "./slots.js";

export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const GENERATED_DIR = join(REPO_ROOT, "generated");

function moduleFile(dir: string, name: string): string | undefined {
  for (const ext of [".ts", ".js"]) {
    const f = join(dir, name, `module${ext}`);
    if (existsSync(f)) return f;
  }
  return undefined;
}

/** Names of the generated programs (folders of generated/ holding a module). */
export function listPrograms(dir = GENERATED_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && moduleFile(dir, e.name) !== undefined)
    .map((e) => e.name)
    .sort();
}

const CODEGEN_HINT = "run `npm run codegen` (or `npx tsx codegen/main.ts --only NAME`) to generate it";

/** Loads generated/<name>/module.ts (or a module file given by path). */
export function loadModule(nameOrPath: string, dir = GENERATED_DIR): TE.TaskEither<TrainError, GeneratedModule> {
  const file = /\.(ts|js|mjs)$/.test(nameOrPath) ? nameOrPath : moduleFile(dir, nameOrPath);
  if (file === undefined || !existsSync(file)) {
    const known = listPrograms(dir);
    return TE.left(
      trainError(
        "program",
        `program ${nameOrPath} is not in ${dir}; ${CODEGEN_HINT}. Generated programs: ${known.length > 0 ? known.join(", ") : "(none)"}`,
      ),
    );
  }
  return TE.tryCatch(
    async () => {
      const m = (await import(pathToFileURL(file).href)) as { module?: GeneratedModule };
      if (m.module === undefined) throw new Error(`${file} exports no \`module\``);
      return m.module;
    },
    (e) => trainError("program", `cannot load ${file}: ${e instanceof Error ? e.message : String(e)}`),
  );
}

/**
 * A program's config without importing its module (kernels and all): the `config:` line the
 * emitter writes. Undefined when the line is not there (the emitter changed); callers then load.
 */
export function peekConfig(name: string, dir = GENERATED_DIR): Record<string, unknown> | undefined {
  const file = moduleFile(dir, name);
  if (file === undefined) return undefined;
  const m = /^\s*config:\s*(\{.*\}),\s*$/m.exec(readFileSync(file, "utf8"));
  if (m === null) return undefined;
  try {
    return JSON.parse(m[1]!) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** The config entries of `overrides` whose value differs from `config`'s. */
export function differences(config: Readonly<Record<string, unknown>>, overrides: Readonly<Record<string, unknown>>): string[] {
  return Object.entries(overrides)
    .filter(([k, v]) => !sameJson(config[k], v))
    .map(([k, v]) => `${k} = ${JSON.stringify(v)} (compiled: ${JSON.stringify(config[k])})`);
}

/** A config without its run-time hyperparameters: what two programs must share to compute alike. */
function compiledPart(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => HYPER_OPTIONS[k] === undefined));
}

export interface Selection {
  readonly name: string;
  /** Set when another program than `<variant>-<preset>` was chosen because of the overrides. */
  readonly note?: string;
}

/** A program's config: read from its file when possible, else by importing the module. */
export async function configOf(name: string, dir = GENERATED_DIR): Promise<Record<string, unknown> | undefined> {
  const peeked = peekConfig(name, dir);
  if (peeked !== undefined || moduleFile(dir, name) === undefined) return peeked;
  const m = await loadModule(name, dir)();
  return E.isRight(m) ? { ...m.right.config } : undefined;
}

/**
 * The program for `variant` under `preset` with `overrides` (config keys -> values): the
 * program `<variant>-<preset>` when its config has those values; otherwise another generated
 * program whose config equals that one with the overrides applied; otherwise Left, saying what to add.
 */
export async function selectProgram(
  variant: string,
  preset: string,
  overrides: Readonly<Record<string, unknown>>,
  dir = GENERATED_DIR,
): Promise<E.Either<TrainError, Selection>> {
  const name = `${variant}-${preset}`;
  const config = await configOf(name, dir);
  if (config === undefined) {
    const known = listPrograms(dir).filter((p) => !p.startsWith("eval-"));
    return E.left(
      trainError(
        "program",
        `no generated program ${name} (variant ${variant}, preset ${preset}); ${CODEGEN_HINT}, after adding it to examples/adaptsegnet/programs.ts if it is not there. ` +
          `Generated training programs: ${known.length > 0 ? known.join(", ") : "(none)"}`,
      ),
    );
  }
  const diff = differences(config, overrides);
  if (diff.length === 0) return E.right({ name });
  const wanted = compiledPart({ ...config, ...overrides });
  for (const p of listPrograms(dir)) {
    if (p === name || p.startsWith("eval-")) continue;
    const other = await configOf(p, dir);
    if (other !== undefined && sameJson(compiledPart(other), wanted)) return E.right({ name: p, note: `using program ${p}: its config is ${name}'s with ${diff.join(", ")}` });
  }
  return E.left(
    trainError(
      "program",
      `these options are compiled into the program, and ${name} has different values: ${diff.join("; ")}. ` +
        `No generated program has them. Add a preset with these values to examples/adaptsegnet/presets.ts and its programs to ` +
        `examples/adaptsegnet/programs.ts, run \`npm run codegen\`, then pass --preset with its name.`,
    ),
  );
}

/** The variants of examples/adaptsegnet/train.ts, longest first (program names are `<variant>-<preset>`). */
export const VARIANTS = ["vgg-single-level", "feature-level", "single-level", "multi-level", "source-only", "ls-gan", "oracle", "advent", "minent"] as const;

/**
 * Networks other than AdaptSegNet's DeepLab-v2, whose programs carry the network's name first
 * (examples/mobilenet/programs.ts): `mobilenet-<variant>-<preset>`, `eval-mobilenet-<preset>`.
 */
export const NETWORK_PREFIXES = ["mobilenet"] as const;

/**
 * `multi-level-cpu-demo` -> `cpu-demo`, `eval-multi-level-gta5-cityscapes` -> `gta5-cityscapes`,
 * `mobilenet-multi-level-cpu-demo` and `eval-mobilenet-cpu-demo` -> `cpu-demo`.
 */
export function presetOf(program: string): string | undefined {
  const evaluation = program.startsWith("eval-");
  const rest = program.replace(/^eval-/, "");
  const net = NETWORK_PREFIXES.find((n) => rest.startsWith(`${n}-`));
  const afterNet = net === undefined ? rest : rest.slice(net.length + 1);
  const v = VARIANTS.find((x) => afterNet.startsWith(`${x}-`));
  if (v !== undefined) return afterNet.slice(v.length + 1);
  // A named network has one evaluation program per preset, not one per variant.
  return net !== undefined && evaluation ? afterNet : undefined;
}

/** The evaluation programs in generated/, of `preset` when given (`eval-<network>-<preset>`). */
export function evalPrograms(preset?: string, dir = GENERATED_DIR): string[] {
  return listPrograms(dir).filter((p) => p.startsWith("eval-") && (preset === undefined || presetOf(p) === preset));
}

export interface EvalChoice {
  readonly name: string;
  readonly module: GeneratedModule;
}

/**
 * What decides a network's forward pass beyond its tensors: the official two-branch ASPP head and
 * ADVENT's four-branch one hold the same four conv2d_list tensors (the official forward returns
 * after the second), so tensors alone cannot tell an AdaptSegNet checkpoint from an ADVENT one.
 */
export function networkOf(config: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(canonical({ network: config["network"], vgg: config["vgg"] }));
}

/**
 * The evaluation program whose segmentation network is exactly `weights` (keys, shapes, dtypes)
 * and, when the weights' origin config is known (a trainer checkpoint, the training program, or
 * --program VARIANT --preset P), computes the same forward pass (`networkOf`). No program is
 * picked by a similar name. Several candidates that fit and compute differently (a plain state
 * dict of DeeplabMulti: two-branch AdaptSegNet or four-branch ADVENT?) are refused, asking for
 * --program; among identical networks the one of `preset` is taken.
 */
/**
 * Why evaluation program `m` does not evaluate exactly the network `weights` describe: the first
 * tensor that differs, or (with the weights' training config) a different network computing
 * with the same tensors. Undefined when it fits.
 */
export function evalMisfit(weights: Described, m: GeneratedModule, origin?: Readonly<Record<string, unknown>>): string | undefined {
  const problem = tensorDifferences(weights, expectedTable(persistentSlots(m), "G")).problems[0];
  if (problem !== undefined) return describeDifference(problem);
  if (origin !== undefined && networkOf(origin) !== networkOf(m.config)) return `its network ${networkOf(m.config)} is not the weights' ${networkOf(origin)}`;
  return undefined;
}

export async function chooseEvalProgram(
  what: string,
  weights: Described,
  candidates: readonly string[],
  preset: string | undefined,
  origin?: Readonly<Record<string, unknown>>,
  dir = GENERATED_DIR,
): Promise<E.Either<TrainError, EvalChoice>> {
  if (candidates.length === 0) {
    return E.left(trainError("program", `no evaluation program${preset ? ` for preset ${preset}` : ""} in ${dir}; ${CODEGEN_HINT}. Generated: ${listPrograms(dir).join(", ") || "(none)"}`));
  }
  const fits: EvalChoice[] = [];
  const misfits: string[] = [];
  for (const name of candidates) {
    const m = await loadModule(name, dir)();
    if (E.isLeft(m)) return m;
    const problem = evalMisfit(weights, m.right, origin);
    if (problem !== undefined) misfits.push(`${name}: ${problem}`);
    else fits.push({ name, module: m.right });
  }
  if (fits.length === 0) {
    return E.left(trainError("checkpoint", `${what} is not exactly the network of any evaluation program: ${misfits.join("; ")}`));
  }
  const ofPreset = preset === undefined ? fits : fits.filter((f) => presetOf(f.name) === preset);
  const pool = ofPreset.length > 0 ? ofPreset : fits;
  const distinct = new Set(pool.map((f) => networkOf(f.module.config) + JSON.stringify(f.module.tensors.find((t) => t.role === "input")?.shape)));
  if (distinct.size > 1) {
    return E.left(
      trainError(
        "program",
        `${what} has the tensors of several evaluation programs that compute differently (${pool.map((f) => f.name).join(", ")}): ` +
          `pass --program with the variant that trained it (e.g. advent or minent for a four-branch ASPP head) or the evaluation program, and --preset`,
      ),
    );
  }
  return E.right(pool[0]!);
}
