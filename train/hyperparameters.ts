// The run-time hyperparameters of a training run: the official script's numeric flags
// (--learning-rate, --lambda-adv-target2, ...), which set elements of the step program's
// hyperparameter vector (examples/adaptsegnet/train.ts: HYPERPARAMETER_KEYS) instead of
// selecting a compiled program. A run's values are the program's defaults (its config, i.e.
// variant + preset) overridden by the flags; they are checked here, written into the vector
// before the first step, printed, and recorded in run.json and in every snapshot, so that
// --resume continues with exactly the values its run started with.

import * as E from "fp-ts/lib/Either.js";
import { resolveHyperparameters } from "../runtime/hyperparameters.js";
import type { GeneratedModule, HyperparameterSpec } from "../format/module.js";
import { trainError, type TrainError } from "./errors.js";

/** What a value must be: a learning rate cannot be 0 (nothing trains), NUM_STEPS counts iterations. */
type Rule = "positive" | "non-negative" | "positive integer" | "fraction";

interface HyperOption {
  /** The command-line option, without "--"; undefined: no flag (not in the official script). */
  readonly option?: string;
  readonly rule: Rule;
}

/** By hyperparameter name (TrainConfig key): its flag and its rule. */
export const HYPER_OPTIONS: Readonly<Record<string, HyperOption>> = {
  learningRate: { option: "learning-rate", rule: "positive" },
  learningRateD: { option: "learning-rate-D", rule: "positive" },
  momentum: { option: "momentum", rule: "non-negative" },
  weightDecay: { option: "weight-decay", rule: "non-negative" },
  power: { option: "power", rule: "non-negative" },
  numSteps: { option: "num-steps", rule: "positive integer" },
  lambdaSeg: { option: "lambda-seg", rule: "non-negative" },
  lambdaAdvTarget1: { option: "lambda-adv-target1", rule: "non-negative" },
  lambdaAdvTarget2: { option: "lambda-adv-target2", rule: "non-negative" },
  // ADVENT's MinEnt weights and Adam's (0.9, 0.99), 1e-8: run-time values without official flags.
  lambdaEntMain: { rule: "non-negative" },
  lambdaEntAux: { rule: "non-negative" },
  adamBeta1: { rule: "fraction" },
  adamBeta2: { rule: "fraction" },
  adamEpsilon: { rule: "non-negative" },
};

/** "--learning-rate" for a flagged hyperparameter, "hyperparameter adamBeta1" otherwise. */
export function describeHyperparameter(name: string): string {
  const option = HYPER_OPTIONS[name]?.option;
  return option !== undefined ? `--${option}` : `hyperparameter ${name}`;
}

const RULES: { readonly [R in Rule]: { readonly ok: (v: number) => boolean; readonly what: string } } = {
  positive: { ok: (v) => v > 0, what: "positive" },
  "non-negative": { ok: (v) => v >= 0, what: "0 or more" },
  "positive integer": { ok: (v) => Number.isSafeInteger(v) && v >= 1, what: "a positive integer" },
  fraction: { ok: (v) => v >= 0 && v < 1, what: "in [0, 1)" },
};

/** One value against its rule (names without a rule need only be finite); Left names the option. */
export function checkHyperparameter(name: string, value: number): E.Either<TrainError, number> {
  if (!Number.isFinite(value)) return E.left(trainError("options", `${describeHyperparameter(name)} must be a finite number, got ${value}`));
  const rule = HYPER_OPTIONS[name]?.rule;
  if (rule === undefined || RULES[rule].ok(value)) return E.right(value);
  return E.left(trainError("options", `${describeHyperparameter(name)} must be ${RULES[rule].what}, got ${value}`));
}

/**
 * The run's hyperparameters: `module`'s defaults with `overrides` (by name) applied, each
 * checked. Left names the option: one the program does not read (`--lambda-adv-target1` for
 * source-only), or a value outside its rule.
 */
export function runHyperparameters(module: GeneratedModule, overrides: Readonly<Record<string, number>>): E.Either<TrainError, readonly HyperparameterSpec[]> {
  const known = new Set(module.hyperparameters.map((h) => h.name));
  const unknown = Object.keys(overrides).find((name) => !known.has(name));
  if (unknown !== undefined) {
    const has = module.hyperparameters.map((h) => describeHyperparameter(h.name)).join(", ");
    return E.left(trainError("options", `${describeHyperparameter(unknown)}: program ${module.name} does not read ${unknown}; it reads ${has || "no hyperparameters"}`));
  }
  for (const [name, value] of Object.entries(overrides)) {
    const checked = checkHyperparameter(name, value);
    if (E.isLeft(checked)) return checked;
  }
  const resolved = resolveHyperparameters(module, overrides);
  if (E.isLeft(resolved)) return E.left(trainError("options", resolved.left));
  // The defaults too: a program built with a value no run may use is refused as well.
  for (const h of resolved.right) {
    const checked = checkHyperparameter(h.name, h.value);
    if (E.isLeft(checked)) return checked;
  }
  return resolved;
}

/** "learningRate 0.005 (default 0.0025), momentum 0.9, ...": for the log, overrides marked. */
export function describeHyperparameters(module: GeneratedModule, values: readonly HyperparameterSpec[]): string {
  const defaults = new Map(module.hyperparameters.map((h) => [h.name, h.value]));
  return values.map((h) => `${h.name} ${h.value}${defaults.get(h.name) !== h.value ? ` (default ${defaults.get(h.name)})` : ""}`).join(", ");
}

/**
 * The hyperparameters a snapshot or run record was written with. Records from before they were
 * run-time values have none: such a run trained with the compiled values, its config's.
 */
export function recordedHyperparameters(
  recorded: Readonly<Record<string, unknown>> | undefined,
  config: Readonly<Record<string, unknown>>,
  names: readonly string[],
): Record<string, unknown> {
  return recorded !== undefined ? { ...recorded } : Object.fromEntries(names.map((n) => [n, config[n]]));
}

/** One line per differing value, "--learning-rate: 0.0025 in the snapshot, 0.005 now". */
export function hyperparameterDifferences(where: string, recorded: Readonly<Record<string, unknown>>, now: Readonly<Record<string, number>>): string[] {
  const names = [...new Set([...Object.keys(recorded), ...Object.keys(now)])].sort();
  return names
    .filter((n) => recorded[n] !== now[n])
    .map((n) => `${describeHyperparameter(n)}: ${recorded[n] === undefined ? "none" : JSON.stringify(recorded[n])} in ${where}, ${now[n] === undefined ? "none" : now[n]} now`);
}
