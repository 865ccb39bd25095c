// The official evaluation's device loop (evaluate_cityscapes.py + compute_iou.py, spec §5): the
// evaluation program (main head, eval-mode BN with the running statistics) gives the main logits
// at output stride 8; evaluation/ upsamples them bilinearly to the label's resolution with
// align_corners=True, takes the argmax (ties to the first class) and fills the confusion matrix.
// Samples come from a caller's source (files under Node: evaluate.ts; memory in the browser), so
// this file imports no Node module.

import * as E from "fp-ts/lib/Either.js";
import type { StateDict } from "../checkpoint/tensor.js";
import type { ClassTable } from "../datasets/class-table.js";
import { mapLabels, protocolToTrainIdLut } from "../datasets/classes.js";
import type { SampleRef } from "../datasets/layouts.js";
import { IMG_MEAN_BGR, type RgbImage } from "../datasets/rgb.js";
import type { Sample } from "../datasets/sample.js";
import { emptyConfusion } from "../evaluation/confusion.js";
import { accumulateLogits } from "../evaluation/evaluate.js";
import { type ScoreSummary, summarize } from "../evaluation/report.js";
import { checkEvaluation, renderContractError } from "../format/program-contract.js";
import type { GeneratedModule } from "../format/module.js";
import type { Instance } from "../runtime/runner.js";
import { trainError, type TrainError } from "./errors.js";
import { coverExactly } from "./signature.js";
import { expectedTable, type PersistentSlot, writeGroups } from "./slots.js";

/** What scoring needs of an evaluation program on a device. */
export interface ScoreSetup {
  readonly instance: Instance;
  readonly slots: readonly PersistentSlot[];
  readonly protocol: ClassTable;
  /** The program's input size. */
  readonly size: { readonly width: number; readonly height: number };
  readonly logits: { readonly classes: number; readonly height: number; readonly width: number };
}

/** Shapes of the evaluation program's `image` input and `logits` output, or why it is not one. */
export function evalShapes(module: GeneratedModule): E.Either<TrainError, Pick<ScoreSetup, "size" | "logits">> {
  // The evaluation-program contract (format/program-contract.ts), every broken rule named.
  const c = checkEvaluation(module);
  if (!c.ok) return E.left(trainError("program", renderContractError(c.error)));
  return E.right({ size: { width: c.value.size.width, height: c.value.size.height }, logits: c.value.logits });
}

export interface Prediction<R = SampleRef> {
  readonly name: string;
  readonly ref: R;
  readonly sample: Sample;
  /** Class indices of the protocol at label resolution. */
  readonly pred: Uint8Array;
}

export interface EvalResult<R = SampleRef> {
  readonly summary: ScoreSummary;
  readonly images: number;
  readonly seconds: number;
  /** The first `keep` predictions, for pictures. */
  readonly predictions: readonly Prediction<R>[];
}

export interface ScoreSource<R> {
  /** How many samples to score. */
  readonly count: number;
  /** The i-th sample's reference, kept with its prediction. */
  readonly refOf: (i: number) => R;
  /** The next sample, with its label at the stored resolution. */
  readonly next: () => Promise<E.Either<TrainError, Sample>>;
  /** How many predictions to return with their samples. */
  readonly keep?: number;
  /** Called with each prediction (e.g. to write PNGs), in split order. */
  readonly onPrediction?: (p: Prediction<R>) => Promise<void>;
}

/**
 * Loads `weights` (a G state dict: parameters and BN running statistics) into the evaluation
 * program and scores `source`'s samples. The weights must be exactly the program's G
 * (signature.ts): a missing, extra or misshapen tensor is an error naming it, never a partly
 * initialised network.
 */
export async function scoreWeights<R>(setup: ScoreSetup, weights: StateDict, file: string, source: ScoreSource<R>): Promise<E.Either<TrainError, EvalResult<R>>> {
  const checked = coverExactly(file, "G", weights, expectedTable(setup.slots, "G"));
  if (E.isLeft(checked)) return checked;
  writeGroups(setup.instance, setup.slots, { G: weights });
  const started = performance.now();
  const confusion = emptyConfusion(setup.protocol.numClasses);
  const predictions: Prediction<R>[] = [];
  for (let i = 0; i < source.count; i++) {
    const s = await source.next();
    if (E.isLeft(s)) return s;
    const sample = s.right;
    if (sample.label === undefined) return E.left(trainError("data", `evaluation image ${sample.name} has no label file`));
    setup.instance.write("image", sample.image);
    setup.instance.step(1);
    const [logits] = await setup.instance.readMany(["logits"]);
    const pred = accumulateLogits(confusion, { data: logits as Float32Array, ...setup.logits }, sample.label, sample.labelWidth, sample.labelHeight);
    const p = { name: sample.name, ref: source.refOf(i), sample, pred };
    if (predictions.length < (source.keep ?? 0)) predictions.push(p);
    await source.onPrediction?.(p);
  }
  return E.right({ summary: summarize(setup.protocol, confusion), images: source.count, seconds: (performance.now() - started) / 1000, predictions });
}

/** Class indices of a built-in protocol -> trainIds, for the Cityscapes palette and the official PNGs. */
export function toTrainIds(map: Uint8Array, protocol: ClassTable): Uint8Array {
  // A user's table has no trainIds; its callers color with classPalette and save predictionIds.
  if (protocol.trainIds === undefined) throw new Error(`toTrainIds: ${protocol.id} is not a built-in protocol`);
  return mapLabels(map, protocolToTrainIdLut({ trainIds: protocol.trainIds }));
}

/**
 * The values a saved prediction PNG holds: trainIds for a built-in protocol, as the official
 * evaluate_cityscapes.py writes them; a user table's own class indices otherwise.
 */
export function predictionIds(map: Uint8Array, table: ClassTable): Uint8Array {
  return table.trainIds === undefined ? map : toTrainIds(map, table);
}

/** The network input back to an RGB picture (BGR minus mean, CHW -> RGB, HWC). */
export function sampleToRgb(s: Sample): RgbImage {
  const n = s.width * s.height;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = s.image[c * n + i]! + IMG_MEAN_BGR[c]!;
      data[3 * i + (2 - c)] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return { width: s.width, height: s.height, data };
}

