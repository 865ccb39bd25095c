// The trainer's one error type. Everything that can go wrong in a run is a value of it, rendered
// once at the edge (scripts/train.ts, scripts/eval.ts, scripts/demo.ts) as one message that says
// what to do: which option, which path, which tensor, which iteration.

import { type CheckpointError, renderCheckpointError } from "../checkpoint/errors.js";
import { type DataError, describeDataError } from "../datasets/errors.js";
import { type PlotError, renderPlotError } from "../plots/errors.js";
import type { RuntimeError } from "../runtime/device.js";

export type TrainError =
  /** A command-line option is malformed or contradicts another. */
  | { readonly kind: "options"; readonly message: string }
  /** No generated program fits the request (name unknown, or a hyperparameter differs). */
  | { readonly kind: "program"; readonly message: string }
  /** A data root is missing or holds no images, or a sample failed to load. */
  | { readonly kind: "data"; readonly message: string }
  /** A checkpoint cannot be read, written, or does not fit the program. */
  | { readonly kind: "checkpoint"; readonly message: string }
  /** WebGPU: no adapter, a module that does not fit, a lost device. */
  | { readonly kind: "device"; readonly message: string }
  /** A loss became NaN or infinite. */
  | { readonly kind: "diverged"; readonly message: string };

export const trainError = (kind: TrainError["kind"], message: string): TrainError => ({ kind, message });

export const fromCheckpointError = (e: CheckpointError): TrainError => trainError("checkpoint", renderCheckpointError(e));
export const fromDataError = (e: DataError): TrainError => trainError("data", describeDataError(e));
/** A device failure; a wrong ADAPTSEG_TUNE is a bad request. */
export const fromRuntimeError = (e: RuntimeError): TrainError => trainError(e.kind === "tune" ? "options" : "device", e.message);
// A chart or picture that cannot be written is an output path the user chose (--save, --out,
// the run directory) that does not take a file, so it counts as a bad request, as before plots/
// had an error type of its own.
export const fromPlotError = (e: PlotError): TrainError => trainError("options", renderPlotError(e));

export function renderTrainError(e: TrainError): string {
  switch (e.kind) {
    case "options":
      return `bad options: ${e.message}`;
    case "program":
      return `no matching program: ${e.message}`;
    case "data":
      return `data: ${e.message}`;
    case "checkpoint":
      return e.message;
    case "device":
      return `WebGPU: ${e.message}`;
    case "diverged":
      return `training diverged: ${e.message}`;
    default: {
      const never: never = e;
      return never;
    }
  }
}

/** Exit statuses of the CLIs: 2 for a request that cannot be run as given, 1 for a failed run. */
export function exitCodeOf(e: TrainError): number {
  return e.kind === "options" || e.kind === "program" ? 2 : 1;
}
