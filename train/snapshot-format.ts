// The trainer's snapshot as a checkpoint bundle (checkpoint/bundle-codec.ts): which metadata a
// snapshot holds and how a read bundle is checked. Free of Node: the browser page writes and
// reads the same snapshots (train/checkpoint.ts does the files).

import * as E from "fp-ts/lib/Either.js";
import type { CheckpointBundle } from "../checkpoint/bundle-codec.js";
import type { StateDict } from "../checkpoint/tensor.js";
import { trainError, type TrainError } from "./errors.js";
import { checkFinite } from "./signature.js";

/** Where the samplers stand: enough to draw exactly the samples an uninterrupted run would. */
export interface SamplerState {
  readonly seed: number;
  /** Draws consumed so far from the source and target orders (one each per iteration). */
  readonly sourcePosition: number;
  readonly targetPosition: number;
}

export interface TrainerCheckpoint {
  readonly program: string;
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * The values the run wrote into the program's hyperparameter vector, by name (the config holds
   * the program's defaults). Absent in snapshots from before hyperparameters were run-time values.
   */
  readonly hyperparameters?: Readonly<Record<string, number>>;
  /** Completed optimizer steps: the next iteration to run. */
  readonly iteration: number;
  readonly sampler: SamplerState;
  readonly groups: Readonly<Record<string, StateDict>>;
  /** Anything else worth keeping (last losses, best mIoU, the command line). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** The bundle a snapshot is stored as: its groups, and its scalars as metadata. */
export function checkpointBundle(c: TrainerCheckpoint): CheckpointBundle {
  return {
    groups: c.groups,
    metadata: {
      program: c.program,
      config: c.config,
      ...(c.hyperparameters === undefined ? {} : { hyperparameters: c.hyperparameters }),
      iteration: c.iteration,
      sampler: c.sampler,
      ...(c.extra === undefined ? {} : { extra: c.extra }),
    },
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isNumbers = (v: unknown): v is Record<string, number> => isRecord(v) && Object.values(v).every((x) => typeof x === "number" && Number.isFinite(x));

/** A read bundle as a trainer snapshot, or why it is not one (`path` names it in the message). */
export function checkpointFromBundle(path: string, b: CheckpointBundle): E.Either<TrainError, TrainerCheckpoint> {
  const m = b.metadata;
  const s = m["sampler"];
  if (typeof m["program"] !== "string" || !isRecord(m["config"]) || !isCount(m["iteration"]) || !isRecord(s)) {
    return E.left(trainError("checkpoint", `${path}: a checkpoint bundle, but not one written by the trainer (program, config, iteration or sampler missing)`));
  }
  if (!isCount(s["seed"]) || !isCount(s["sourcePosition"]) || !isCount(s["targetPosition"])) {
    return E.left(trainError("checkpoint", `${path}: sampler state ${JSON.stringify(s)} is incomplete`));
  }
  const extra = m["extra"];
  const hyper = m["hyperparameters"];
  if (hyper !== undefined && !isNumbers(hyper)) return E.left(trainError("checkpoint", `${path}: hyperparameters ${JSON.stringify(hyper)} are not finite numbers by name`));
  // A snapshot of NaNs is no state to resume or evaluate from (the trainer never writes one).
  const finite = checkFinite(path, b.groups);
  if (E.isLeft(finite)) return finite;
  return E.right({
    program: m["program"],
    config: m["config"],
    ...(hyper !== undefined ? { hyperparameters: hyper } : {}),
    iteration: m["iteration"],
    sampler: { seed: s["seed"], sourcePosition: s["sourcePosition"], targetPosition: s["targetPosition"] },
    groups: b.groups,
    ...(isRecord(extra) ? { extra } : {}),
  });
}
