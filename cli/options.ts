// Command-line options of `npm run train`, named after the official script's
// (train_gta2cityscapes_multi.py, spec §3.1). Three kinds:
//   - compiled options (GAN objective, class count, sizes): they change the graph, so they
//     select a generated program whose config has them (programs.ts), never change one;
//   - hyperparameters (learning rates, momentum, weight decay, power, NUM_STEPS, loss weights):
//     run-time values of the program's hyperparameter vector (hyperparameters.ts), defaults
//     from the variant + preset, checked here and recorded with the run;
//   - run settings (NUM_STEPS_STOP, snapshots, restore/resume, data, seed, logging, evaluation):
//     free, because the iteration number is an input of the step program.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CROSS_CITIES, type CrossCity, type DatasetSpec } from "../datasets/layouts.js";
import type { AugmentPolicy } from "../datasets/preprocess.js";
import type { NamedDataset } from "../train/data.js";
import { trainError, type TrainError } from "../train/errors.js";
import { joinNegativeValues, parseDecimal, type NumberRule } from "./numeric-options.js";
import { checkHyperparameter, HYPER_OPTIONS } from "../train/hyperparameters.js";

export const TRAIN_USAGE = `usage: npm run train -- --program VARIANT --preset PRESET [options]
       npm run train -- --module FILE.ts [options]        (a generated module file, e.g. a test program)

program (VARIANT-PRESET in generated/, e.g. --program multi-level --preset cpu-demo):
  --program VARIANT          multi-level | single-level | source-only | oracle | ls-gan | ... (default multi-level)
  --preset PRESET            gta5-cityscapes | synthia-cityscapes | cityscapes-crosscity | cpu-demo (default gta5-cityscapes)
hyperparameters (run-time values; defaults: the variant + preset's, see docs/training.md):
  --learning-rate X  --learning-rate-D X  --momentum X  --weight-decay X  --power X  --num-steps N
  --lambda-seg X  --lambda-adv-target1 X  --lambda-adv-target2 X
compiled options (must match a generated program's config, or the run is refused):
  --gan Vanilla|LS  --num-classes N  --input-size W,H  --input-size-target W,H
run settings:
  --num-steps-stop N         stop after N iterations (default min(NUM_STEPS, 150000))
  --save-pred-every N        snapshot every N iterations and at the end (default 5000)
  --snapshot-dir DIR         snapshots, metrics.jsonl and training.png (default runs/<program>); one run per directory
  --restore-from FILE        start from weights: .pth (import rules) or .safetensors
  --resume                   continue the run in --snapshot-dir from its latest snapshot, exactly (same options)
  --resume-from FILE         continue from that snapshot
  --random-seed N            parameter init and sampling order (default 1234)
  --log-every N              read the losses back every N iterations (default 10)
  --eval-every N             evaluate on the target val split every N iterations; keeps <prefix>_best (default 0: never)
  --eval-images N            evaluate on the first N val images only
  --eval-module FILE.ts      the evaluation module for --eval-every (default: the generated one whose network
                             is exactly the trained one); it must compute exactly the trained network
  --num-workers N            data worker threads (default 0: main thread, decoded images cached)
  --random-mirror  --random-scale   augmentation (off, as in the official code)
  --metrics FILE  --plot FILE
data (defaults: the official ./data/GTA5 and ./data/Cityscapes/data; data/synth/... for cpu-demo):
  --data-dir DIR (or --data-source)  --data-list FILE  --source-layout gta5|synthia|cityscapes  --source-set train
  --data-dir-target DIR (or --data-target)  --data-list-target FILE  --set train  --target-layout cityscapes|crosscity  --target-city Rome
  --val-set val
classes (default: the built-in protocol of the program's class count, 19 | 16 | 13):
  --classes FILE.json        your dataset's class table: names, colors, the label values of each class and the
                             ignore index (schema in datasets/class-table.ts); it must list the program's numClasses classes`;

/** Option name -> config key of the compiled numeric options. */
const COMPILED: Readonly<Record<string, string>> = {
  "num-classes": "numClasses",
};

/** Option name -> hyperparameter name, for the hyperparameters that have a flag. */
const HYPER_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(HYPER_OPTIONS).flatMap(([name, o]) => (o.option !== undefined ? [[o.option, name]] : [])),
);

export interface TrainCliOptions {
  readonly variant: string;
  readonly preset: string;
  readonly moduleFile?: string;
  /** --eval-module: the evaluation module for --eval-every, given by file (checked to fit exactly). */
  readonly evalModuleFile?: string;
  /** Compiled options (config keys): they choose the program. */
  readonly overrides: Readonly<Record<string, unknown>>;
  /** Hyperparameters given on the command line, by name (learningRate, ...), already checked. */
  readonly hyperparameters: Readonly<Record<string, number>>;
  readonly numStepsStop?: number;
  readonly savePredEvery: number;
  readonly snapshotDir?: string;
  readonly restoreFrom?: string;
  readonly resume?: boolean | string;
  readonly seed: number;
  readonly logEvery: number;
  readonly evalEvery: number;
  readonly evalImages?: number;
  readonly workers: number;
  readonly augment?: AugmentPolicy;
  readonly metrics?: string;
  readonly plot?: string;
  /** --classes: the user's class table file, read and checked by the CLI (cli/train.ts). */
  readonly classesFile?: string;
  readonly data: { readonly source: NamedDataset; readonly target: NamedDataset; readonly val: NamedDataset };
}

type Values = Record<string, string | boolean | undefined>;

/** A decimal value of --name (cli/numeric-options.ts: no hex, no empty, finite). */
function num(values: Values, name: string, rule: NumberRule): E.Either<TrainError, number | undefined> {
  return E.mapLeft((m: string) => trainError("options", m))(parseDecimal(name, values[name], rule));
}

const COUNT: NumberRule = { integer: true, min: 0, what: "a non-negative integer" };
const POSITIVE: NumberRule = { integer: true, min: 1, what: "a positive integer" };
const NUMBER: NumberRule = { integer: false, what: "a number" };

/** "1024,512" (W,H, the official spelling) -> [H, W], the config's order. */
function size(values: Values, name: string): E.Either<TrainError, [number, number] | undefined> {
  const v = values[name];
  if (v === undefined) return E.right(undefined);
  const m = typeof v === "string" ? /^(\d+)[,x](\d+)$/.exec(v.trim()) : null;
  return m === null ? E.left(trainError("options", `--${name} must be W,H (e.g. 1024,512), got ${JSON.stringify(v)}`)) : E.right([Number(m[2]), Number(m[1])]);
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function defaultDataRoots(preset: string): { source: string; target: string } {
  return preset === "cpu-demo" ? { source: join("data", "synth", "gta5"), target: join("data", "synth", "cityscapes") } : { source: join("data", "GTA5"), target: join("data", "Cityscapes", "data") };
}

function sourceSpec(layout: string, root: string, list: string | undefined, set: string): E.Either<TrainError, DatasetSpec> {
  switch (layout) {
    case "gta5":
      return E.right({ kind: "gta5", root, ...(list ? { listFile: list } : {}) });
    case "synthia":
      return E.right({ kind: "synthia", root });
    case "cityscapes":
      return E.right({ kind: "cityscapes", root, split: set, withLabels: true, ...(list ? { listFile: list } : {}) });
    default:
      return E.left(trainError("options", `--source-layout must be gta5, synthia or cityscapes, got ${layout}`));
  }
}

function targetSpec(layout: string, root: string, list: string | undefined, set: string, city: string | undefined, withLabels: boolean): E.Either<TrainError, DatasetSpec> {
  switch (layout) {
    case "cityscapes":
      return E.right({ kind: "cityscapes", root, split: set, withLabels, ...(list ? { listFile: list } : {}) });
    case "crosscity": {
      if (city === undefined || !(CROSS_CITIES as readonly string[]).includes(city)) {
        return E.left(trainError("options", `--target-layout crosscity needs --target-city ${CROSS_CITIES.join("|")}`));
      }
      const split = set === "val" || set === "test" || set === "Test" ? "Test" : "Train";
      return E.right({ kind: "crosscity", root, city: city as CrossCity, split });
    }
    default:
      return E.left(trainError("options", `--target-layout must be cityscapes or crosscity, got ${layout}`));
  }
}

/** Options that take a value, whose value may start with "-". */
const VALUE_OPTIONS: ReadonlySet<string> = new Set([...Object.keys(COMPILED), ...Object.keys(HYPER_FLAGS), "num-steps-stop", "save-pred-every", "random-seed", "seed", "log-every", "eval-every", "eval-images", "num-workers"]);

export function parseTrainOptions(argv: readonly string[]): E.Either<TrainError, TrainCliOptions> {
  let values: Values;
  try {
    values = parseArgs({
      // `--lambda-seg -1` would otherwise be "ambiguous" (a value that looks like an option).
      args: joinNegativeValues(argv, VALUE_OPTIONS),
      strict: true,
      options: {
        program: { type: "string" },
        preset: { type: "string" },
        module: { type: "string" },
        "eval-module": { type: "string" },
        ...Object.fromEntries([...Object.keys(COMPILED), ...Object.keys(HYPER_FLAGS)].map((k) => [k, { type: "string" as const }])),
        gan: { type: "string" },
        "input-size": { type: "string" },
        "input-size-target": { type: "string" },
        "num-steps-stop": { type: "string" },
        "save-pred-every": { type: "string" },
        "snapshot-dir": { type: "string" },
        "restore-from": { type: "string" },
        resume: { type: "boolean" },
        "resume-from": { type: "string" },
        "random-seed": { type: "string" },
        seed: { type: "string" },
        "log-every": { type: "string" },
        "eval-every": { type: "string" },
        "eval-images": { type: "string" },
        "num-workers": { type: "string" },
        "random-mirror": { type: "boolean" },
        "random-scale": { type: "boolean" },
        metrics: { type: "string" },
        plot: { type: "string" },
        classes: { type: "string" },
        "data-dir": { type: "string" },
        "data-source": { type: "string" },
        "data-list": { type: "string" },
        "source-layout": { type: "string" },
        "source-set": { type: "string" },
        "data-dir-target": { type: "string" },
        "data-target": { type: "string" },
        "data-list-target": { type: "string" },
        set: { type: "string" },
        "target-layout": { type: "string" },
        "target-city": { type: "string" },
        "val-set": { type: "string" },
        "batch-size": { type: "string" },
        "iter-size": { type: "string" },
      },
    }).values as Values;
  } catch (e) {
    return E.left(trainError("options", e instanceof Error ? e.message : String(e)));
  }
  for (const fixed of ["batch-size", "iter-size"]) {
    const v = str(values, fixed);
    if (v !== undefined && v !== "1") {
      return E.left(trainError("options", `--${fixed} ${v}: the programs are compiled for batch 1 without gradient accumulation, as the official defaults`));
    }
  }
  const overrides: Record<string, unknown> = {};
  for (const [opt, key] of Object.entries(COMPILED)) {
    const n = num(values, opt, NUMBER);
    if (E.isLeft(n)) return n;
    if (n.right !== undefined) overrides[key] = n.right;
  }
  const hyperparameters: Record<string, number> = {};
  for (const [opt, name] of Object.entries(HYPER_FLAGS)) {
    const n = num(values, opt, name === "numSteps" ? POSITIVE : NUMBER);
    if (E.isLeft(n)) return n;
    if (n.right === undefined) continue;
    const checked = checkHyperparameter(name, n.right);
    if (E.isLeft(checked)) return checked;
    hyperparameters[name] = checked.right;
  }
  const gan = str(values, "gan");
  if (gan !== undefined) {
    if (gan !== "Vanilla" && gan !== "LS") return E.left(trainError("options", `--gan must be Vanilla or LS, got ${gan}`));
    overrides["gan"] = gan;
  }
  for (const [opt, key] of [["input-size", "sourceSize"], ["input-size-target", "targetSize"]] as const) {
    const s = size(values, opt);
    if (E.isLeft(s)) return s;
    if (s.right !== undefined) overrides[key] = s.right;
  }
  const ints = {
    stop: num(values, "num-steps-stop", POSITIVE),
    save: num(values, "save-pred-every", COUNT),
    seed: num(values, "random-seed", COUNT),
    seed2: num(values, "seed", COUNT),
    log: num(values, "log-every", POSITIVE),
    evalEvery: num(values, "eval-every", COUNT),
    evalImages: num(values, "eval-images", POSITIVE),
    workers: num(values, "num-workers", COUNT),
  };
  for (const v of Object.values(ints)) if (E.isLeft(v)) return v;
  const get = (k: keyof typeof ints) => (ints[k] as E.Right<number | undefined>).right;
  if (values["resume"] === true && str(values, "restore-from") !== undefined) {
    return E.left(trainError("options", "--resume continues a run from its snapshot; --restore-from starts a new run from weights: give one of them"));
  }
  const preset = str(values, "preset") ?? "gta5-cityscapes";
  const variant = str(values, "program") ?? "multi-level";
  const roots = defaultDataRoots(preset);
  const set = str(values, "set") ?? "train";
  const source = sourceSpec(str(values, "source-layout") ?? "gta5", str(values, "data-dir") ?? str(values, "data-source") ?? roots.source, str(values, "data-list"), str(values, "source-set") ?? "train");
  if (E.isLeft(source)) return source;
  const targetRoot = str(values, "data-dir-target") ?? str(values, "data-target") ?? roots.target;
  const targetLayout = str(values, "target-layout") ?? "cityscapes";
  // The oracle reads target labels; the adaptation runs read target images only (official).
  const target = targetSpec(targetLayout, targetRoot, str(values, "data-list-target"), set, str(values, "target-city"), variant === "oracle");
  if (E.isLeft(target)) return target;
  const val = targetSpec(targetLayout, targetRoot, undefined, str(values, "val-set") ?? "val", str(values, "target-city"), true);
  if (E.isLeft(val)) return val;
  const mirror = values["random-mirror"] === true;
  const scale = values["random-scale"] === true;
  const resumeFrom = str(values, "resume-from");
  const moduleFile = str(values, "module");
  const evalModuleFile = str(values, "eval-module");
  const stop = get("stop");
  const evalImages = get("evalImages");
  const snapshotDir = str(values, "snapshot-dir");
  const restoreFrom = str(values, "restore-from");
  const metrics = str(values, "metrics");
  const plot = str(values, "plot");
  const classesFile = str(values, "classes");
  return E.right({
    variant,
    preset,
    ...(moduleFile !== undefined ? { moduleFile } : {}),
    ...(evalModuleFile !== undefined ? { evalModuleFile } : {}),
    overrides,
    hyperparameters,
    ...(stop !== undefined ? { numStepsStop: stop } : {}),
    savePredEvery: get("save") ?? 5000,
    ...(snapshotDir !== undefined ? { snapshotDir } : {}),
    ...(restoreFrom !== undefined ? { restoreFrom } : {}),
    ...(resumeFrom !== undefined ? { resume: resumeFrom } : values["resume"] === true ? { resume: true } : {}),
    seed: get("seed") ?? get("seed2") ?? 1234,
    logEvery: get("log") ?? 10,
    evalEvery: get("evalEvery") ?? 0,
    ...(evalImages !== undefined ? { evalImages } : {}),
    workers: get("workers") ?? 0,
    ...(mirror || scale ? { augment: { mirror, ...(scale ? { scale: [0.5, 1.5] as const } : {}) } } : {}),
    ...(metrics !== undefined ? { metrics } : {}),
    ...(plot !== undefined ? { plot } : {}),
    ...(classesFile !== undefined ? { classesFile } : {}),
    data: {
      source: { role: "source", option: "--data-dir", spec: source.right },
      target: { role: "target", option: "--data-dir-target", spec: target.right },
      val: { role: "target validation", option: "--data-dir-target / --val-set", spec: val.right },
    },
  });
}
