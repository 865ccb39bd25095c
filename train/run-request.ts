// What a run asks of its snapshot directory (run-dir.ts), derived from the run: its identity
// (program, config, hyperparameter values, seed, prefix, the datasets the program reads,
// augmentation) and whether it
// resumes or replaces. Also which datasets a program reads, from its input slots.

import type { NamedDataset } from "./data.js";
import { programInputs } from "./iteration.js";
import { normaliseSpec, type RunIdentity, type RunRequest } from "./run-dir.js";
import type { TrainRun } from "./trainer.js";

export { type Inputs, programInputs } from "./iteration.js";

/** The values a run trains with: the program's defaults, then the run's overrides (checked by the trainer). */
export function hyperparametersOf(run: Pick<TrainRun, "module" | "hyperparameters">): Record<string, number> {
  return { ...Object.fromEntries(run.module.hyperparameters.map((h) => [h.name, h.value])), ...(run.hyperparameters ?? {}) };
}

/** The identity of a run (run-dir.ts): only the datasets the program reads are part of it. */
export function runIdentityOf(run: Pick<TrainRun, "module" | "data" | "seed" | "snapshotPrefix" | "augment" | "hyperparameters">): RunIdentity {
  const inputs = programInputs(run.module);
  const side = (read: boolean, d: NamedDataset | undefined) => (read && d !== undefined ? normaliseSpec(d.spec) : undefined);
  const source = side(inputs.source !== undefined, run.data.source);
  const target = side(inputs.target !== undefined, run.data.target);
  return {
    program: run.module.name,
    config: run.module.config,
    hyperparameters: hyperparametersOf(run),
    seed: run.seed,
    snapshotPrefix: run.snapshotPrefix,
    data: { ...(source ? { source } : {}), ...(target ? { target } : {}) },
    ...(run.augment ? { augment: run.augment } : {}),
  };
}

/** What a run asks of its snapshot directory. */
export function runRequestOf(
  run: Pick<TrainRun, "module" | "data" | "seed" | "snapshotPrefix" | "augment" | "hyperparameters" | "snapshotDir" | "metricsPath" | "resume" | "existingRun">,
): RunRequest {
  return {
    dir: run.snapshotDir,
    identity: runIdentityOf(run),
    ...(run.metricsPath !== undefined ? { metricsPath: run.metricsPath } : {}),
    resume: run.resume !== undefined && run.resume !== false,
    ...(run.existingRun === "replace" ? { replace: true } : {}),
  };
}
