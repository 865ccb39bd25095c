// Where a run starts: fresh, from --restore-from weights, or from a --resume snapshot. Files are
// read and checked here, before any program is instantiated (which compiles shaders), so a
// wrong file fails at once. A resume continues exactly its own run: the snapshot must come from
// the same program and have been trained with the same hyperparameter values.

import * as E from "fp-ts/lib/Either.js";
import type { StateDict } from "../checkpoint/tensor.js";
import { checkGroups, latestSnapshot, loadCheckpoint, restoreWeights, type TrainerCheckpoint } from "./checkpoint.js";
import { trainError, type TrainError } from "./errors.js";
import { hyperparameterDifferences, recordedHyperparameters } from "./hyperparameters.js";
import { persistentSlots } from "./slots.js";
import type { TrainRun } from "./trainer.js";

export interface StartState {
  readonly iteration: number;
  readonly sampler: TrainerCheckpoint["sampler"];
  /** Tensors to write over the initial values (by model), already checked against the program. */
  readonly groups: Readonly<Record<string, StateDict>>;
  readonly resumedFrom?: string;
  readonly best?: { readonly iteration: number; readonly mIoU: number; readonly path: string };
  readonly notes: readonly string[];
}

/** Where the run starts: fresh, from --restore-from weights, or from a --resume snapshot (read and checked, not yet written). */
export async function startState(run: TrainRun, hyperparameters: Readonly<Record<string, number>>): Promise<E.Either<TrainError, StartState>> {
  const slots = persistentSlots(run.module);
  const fresh: StartState = { iteration: 0, sampler: { seed: run.seed, sourcePosition: 0, targetPosition: 0 }, groups: {}, notes: [] };
  if (run.resume !== undefined && run.resume !== false) {
    const path = typeof run.resume === "string" ? run.resume : latestSnapshot(run.snapshotDir, run.snapshotPrefix)?.path;
    if (path === undefined) {
      return E.left(trainError("checkpoint", `--resume: no snapshot ${run.snapshotPrefix}_<iteration>.safetensors in ${run.snapshotDir}`));
    }
    const c = await loadCheckpoint(path)();
    if (E.isLeft(c)) return c;
    const ckpt = c.right;
    if (ckpt.program !== run.module.name) {
      return E.left(trainError("checkpoint", `--resume: ${path} was written by program ${ckpt.program}, this run is ${run.module.name}`));
    }
    const recorded = recordedHyperparameters(ckpt.hyperparameters, ckpt.config, Object.keys(hyperparameters));
    const differ = hyperparameterDifferences("the snapshot", recorded, hyperparameters);
    if (differ.length > 0) {
      return E.left(trainError("options", `--resume: ${path} was trained with other hyperparameters (${differ.join("; ")}); resume with the values the run started with`));
    }
    const checked = checkGroups(path, slots, ckpt.groups);
    if (E.isLeft(checked)) return checked;
    const best = ckpt.extra?.["best"] as StartState["best"] | undefined;
    const note = ckpt.sampler.seed !== run.seed ? [`--resume: continuing with the snapshot's seed ${ckpt.sampler.seed} (not ${run.seed})`] : [];
    return E.right({
      iteration: ckpt.iteration,
      sampler: ckpt.sampler,
      groups: ckpt.groups,
      resumedFrom: path,
      ...(best ? { best } : {}),
      notes: [`resumed from ${path} at iteration ${ckpt.iteration}`, ...note],
    });
  }
  if (run.restoreFrom !== undefined) {
    const r = await restoreWeights(run.restoreFrom, slots, "train")();
    if (E.isLeft(r)) return r;
    return E.right({ ...fresh, groups: r.right.groups, notes: [`initialized from ${run.restoreFrom}`, ...r.right.notes] });
  }
  return E.right(fresh);
}
