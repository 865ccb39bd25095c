// Deterministic initial values for declared tensors.
//
// The generator itself (fnv1a32, mulberry32, streamFor, drawInit) is format/init.ts, shared with
// the trainer, so the DSL's reference runs and a run on the GPU begin from the same values; it
// is re-exported here so the DSL's users find it where they always did.

import { drawInit, streamFor } from "../format/init";
import { numel } from "./ir";
import { type ParamEntry } from "./params";

export { drawInit, fnv1a32, mulberry32, streamFor } from "../format/init";

/**
 * The initial value of every entry, as float32 (what the GPU stores), whatever the entry's
 * dtype: the interpreter holds every tensor as numbers.
 */
export function initialValues(entries: readonly ParamEntry[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of entries) {
    out.set(e.name, Float32Array.from(drawInit(e.spec.init, numel(e.spec.shape), streamFor(seed, e.name))));
  }
  return out;
}
