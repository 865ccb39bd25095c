// The official evaluation (evaluate_cityscapes.py + compute_iou.py, spec §5) on the device: the
// evaluation program (main head, eval-mode BN with the running statistics) gives the main logits
// at output stride 8; evaluation/ upsamples them bilinearly to the label's resolution with
// align_corners=True, takes the argmax (ties to the first class) and fills the confusion matrix.

import { checkEvaluation, renderContractError } from "../format/program-contract.js";
import * as E from "fp-ts/lib/Either.js";
import { basename } from "node:path";
import type { StateDict } from "../checkpoint/tensor.js";
import type { ClassTable } from "../datasets/class-table.js";
import { protocolToTrainIdLut, mapLabels } from "../datasets/classes.js";
import { IMG_MEAN_BGR, type RgbImage } from "../datasets/image.js";
import type { SampleRef } from "../datasets/layouts.js";
import type { Sample } from "../datasets/preprocess.js";
import { sequentialOrder } from "../datasets/sampler.js";
import { emptyConfusion } from "../evaluation/confusion.js";
import { accumulateLogits } from "../evaluation/evaluate.js";
import { type ScoreSummary, summarize } from "../evaluation/report.js";
import type { GeneratedModule } from "../format/module.js";
import type { Instance } from "../runtime/runner.js";
import { coverExactly } from "./signature.js";
import { cachedLoader, nextSample, type SampleLoader, sampleStream } from "./data.js";
import { trainError, type TrainError } from "./errors.js";
import { expectedTable, persistentSlots, type PersistentSlot, writeGroups } from "./slots.js";

export interface EvalSetup {
  readonly instance: Instance;
  readonly slots: readonly PersistentSlot[];
  readonly refs: readonly SampleRef[];
  readonly protocol: ClassTable;
  /** The program's input size. */
  readonly size: { readonly width: number; readonly height: number };
  readonly logits: { readonly classes: number; readonly height: number; readonly width: number };
  readonly cache: SampleLoader;
}

/** Shapes of the evaluation program's `image` input and `logits` output, or why it is not one. */
export function evalShapes(module: GeneratedModule): E.Either<TrainError, Pick<EvalSetup, "size" | "logits">> {
  // The evaluation-program contract (format/program-contract.ts), every broken rule named.
  const c = checkEvaluation(module);
  if (!c.ok) return E.left(trainError("program", renderContractError(c.error)));
  return E.right({ size: { width: c.value.size.width, height: c.value.size.height }, logits: c.value.logits });
}

export function evalSetup(module: GeneratedModule, instance: Instance, refs: readonly SampleRef[], protocol: ClassTable): E.Either<TrainError, EvalSetup> {
  return E.map((shapes: Pick<EvalSetup, "size" | "logits">) => {
    return { instance, slots: persistentSlots(module), refs, protocol, ...shapes, cache: cachedLoader() };
  })(evalShapes(module));
}

export interface Prediction {
  readonly name: string;
  readonly ref: SampleRef;
  readonly sample: Sample;
  /** Class indices of the protocol at label resolution. */
  readonly pred: Uint8Array;
}

export interface EvalResult {
  readonly summary: ScoreSummary;
  readonly images: number;
  readonly seconds: number;
  /** The first `keep` predictions, for pictures. */
  readonly predictions: readonly Prediction[];
}

export interface EvalOptions {
  /** Evaluate only the first n images of the split (quick checks); undefined: all. */
  readonly limit?: number;
  /** How many predictions to return with their samples. */
  readonly keep?: number;
  /** Called with each prediction (e.g. to write PNGs), in split order. */
  readonly onPrediction?: (p: Prediction) => Promise<void>;
}

/**
 * Loads `weights` (a G state dict: parameters and BN running statistics) into the evaluation
 * program and scores the split. The weights must be exactly the program's G (signature.ts): a
 * missing, extra or misshapen tensor is an error naming it, never a partly initialised network.
 */
export async function evaluateWeights(setup: EvalSetup, weights: StateDict, file: string, o: EvalOptions = {}): Promise<E.Either<TrainError, EvalResult>> {
  const checked = coverExactly(file, "G", weights, expectedTable(setup.slots, "G"));
  if (E.isLeft(checked)) return checked;
  writeGroups(setup.instance, setup.slots, { G: weights });
  const count = Math.min(setup.refs.length, o.limit ?? setup.refs.length);
  const stream = sampleStream({
    refs: setup.refs,
    order: sequentialOrder(setup.refs.length),
    start: 0,
    count,
    size: setup.size,
    labels: "original-size",
    protocol: setup.protocol,
    workers: 0,
    depth: 4,
    cache: setup.cache,
  });
  const started = performance.now();
  const confusion = emptyConfusion(setup.protocol.numClasses);
  const predictions: Prediction[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = await nextSample(stream, "evaluation");
      if (E.isLeft(s)) return s;
      const sample = s.right;
      if (sample.label === undefined) return E.left(trainError("data", `evaluation image ${sample.name} has no label file`));
      setup.instance.write("image", sample.image);
      setup.instance.step(1);
      const [logits] = await setup.instance.readMany(["logits"]);
      const pred = accumulateLogits(confusion, { data: logits as Float32Array, ...setup.logits }, sample.label, sample.labelWidth, sample.labelHeight);
      const p = { name: sample.name, ref: setup.refs[i]!, sample, pred };
      if (predictions.length < (o.keep ?? 0)) predictions.push(p);
      await o.onPrediction?.(p);
    }
  } finally {
    await stream.close();
  }
  return E.right({ summary: summarize(setup.protocol, confusion), images: count, seconds: (performance.now() - started) / 1000, predictions });
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

/** `frankfurt/frankfurt_000000_000294_leftImg8bit.png` -> `frankfurt_000000_000294_leftImg8bit`. */
export function predictionStem(name: string): string {
  return basename(name).replace(/\.[^.]*$/, "");
}
