// The official evaluation (evaluate_cityscapes.py + compute_iou.py, spec §5) on the device: the
// evaluation program (main head, eval-mode BN with the running statistics) gives the main logits
// at output stride 8; evaluation/ upsamples them bilinearly to the label's resolution with
// align_corners=True, takes the argmax (ties to the first class) and fills the confusion matrix.

import * as E from "fp-ts/lib/Either.js";
import { basename } from "node:path";
import type { StateDict } from "../checkpoint/tensor.js";
import type { ClassTable } from "../datasets/class-table.js";
import type { SampleRef } from "../datasets/layouts.js";
import { sequentialOrder } from "../datasets/sampler.js";
import type { GeneratedModule } from "../format/module.js";
import type { Instance } from "../runtime/runner.js";
import { cachedLoader, nextSample, type SampleLoader, sampleStream } from "./data.js";
import { type EvalResult, evalShapes, type Prediction, scoreWeights } from "./evaluate-core.js";
import type { TrainError } from "./errors.js";
import { persistentSlots, type PersistentSlot } from "./slots.js";

// The device loop and the pure helpers are evaluate-core.ts (no Node); re-exported for callers.
export { type EvalResult, evalShapes, type Prediction, predictionIds, sampleToRgb, scoreWeights, toTrainIds } from "./evaluate-core.js";

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

export function evalSetup(module: GeneratedModule, instance: Instance, refs: readonly SampleRef[], protocol: ClassTable): E.Either<TrainError, EvalSetup> {
  return E.map((shapes: Pick<EvalSetup, "size" | "logits">) => {
    return { instance, slots: persistentSlots(module), refs, protocol, ...shapes, cache: cachedLoader() };
  })(evalShapes(module));
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
 * program and scores the split (evaluate-core.ts, shared with the browser page).
 */
export async function evaluateWeights(setup: EvalSetup, weights: StateDict, file: string, o: EvalOptions = {}): Promise<E.Either<TrainError, EvalResult>> {
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
  try {
    return await scoreWeights(setup, weights, file, {
      count,
      refOf: (i) => setup.refs[i]!,
      next: () => nextSample(stream, "evaluation"),
      ...(o.keep !== undefined ? { keep: o.keep } : {}),
      ...(o.onPrediction !== undefined ? { onPrediction: o.onPrediction } : {}),
    });
  } finally {
    await stream.close();
  }
}

/** `frankfurt/frankfurt_000000_000294_leftImg8bit.png` -> `frankfurt_000000_000294_leftImg8bit`. */
export function predictionStem(name: string): string {
  return basename(name).replace(/\.[^.]*$/, "");
}
