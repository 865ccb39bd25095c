// Run-time hyperparameters of a generated module: the f32 vector in its "hyper" slot
// (dsl/hyper.ts), one element per GeneratedModule.hyperparameters entry, in that order.
//
// instantiate() writes the module's defaults into the slot, so every instance computes what the
// program was built with unless a caller writes other values: a trainer overriding
// --learning-rate, the parity suite running a case with other weights. The values are checked
// here only for what any program needs (a known name, a finite number); what a value means
// (a learning rate must be positive) is for the caller who knows (train/hyperparameters.ts).

import * as E from "fp-ts/lib/Either.js";
import type { GeneratedModule, HyperparameterSpec, TensorSlot } from "../format/module.js";

/** The name of the slot (dsl/hyper.ts: HYPERPARAMETERS_INPUT; the runtime never imports dsl/). */
export const HYPER_SLOT = "hyperparameters";

/**
 * The hyper slot, checked against the declaration: a module with hyperparameters has one f32
 * slot of role "hyper" with one element per declared name; a module without has none.
 */
export function hyperSlot(module: GeneratedModule): E.Either<string, TensorSlot | undefined> {
  const slots = module.tensors.filter((t) => t.role === "hyper");
  const declared = module.hyperparameters.length;
  if (declared === 0) return slots.length === 0 ? E.right(undefined) : E.left(`module '${module.name}' has a "hyper" slot but declares no hyperparameters`);
  const [slot, ...more] = slots;
  if (slot === undefined) return E.left(`module '${module.name}' declares ${declared} hyperparameters but has no "hyper" slot`);
  if (more.length > 0) return E.left(`module '${module.name}' has ${slots.length} "hyper" slots; one vector holds every hyperparameter`);
  if (slot.dtype !== "f32" || slot.shape.length !== 1 || slot.shape[0] !== declared) {
    return E.left(`module '${module.name}': the "hyper" slot '${slot.name}' is ${slot.dtype} [${slot.shape.join(", ")}], not f32 [${declared}] (one element per declared hyperparameter)`);
  }
  return E.right(slot);
}

/**
 * The module's hyperparameters with `overrides` applied, in vector order. Left names an override
 * the module does not declare (with the names it does) or a value that is not a finite number.
 */
export function resolveHyperparameters(
  module: GeneratedModule,
  overrides: Readonly<Record<string, number>>,
): E.Either<string, readonly HyperparameterSpec[]> {
  const names = module.hyperparameters.map((h) => h.name);
  for (const [name, value] of Object.entries(overrides)) {
    if (!names.includes(name)) {
      const known = names.length > 0 ? `its hyperparameters are ${names.join(", ")}` : "it has none";
      return E.left(`program ${module.name} has no hyperparameter ${name}; ${known}`);
    }
    if (typeof value !== "number" || !Number.isFinite(value)) return E.left(`hyperparameter ${name} must be a finite number, got ${String(value)}`);
  }
  return E.right(module.hyperparameters.map((h) => ({ name: h.name, value: overrides[h.name] ?? h.value })));
}

/** The contents of the hyper slot: the module's defaults with `overrides` applied (see resolveHyperparameters). */
export function hyperVector(module: GeneratedModule, overrides: Readonly<Record<string, number>> = {}): E.Either<string, Float32Array<ArrayBuffer>> {
  return E.map((values: readonly HyperparameterSpec[]) => Float32Array.from(values, (h) => h.value))(resolveHyperparameters(module, overrides));
}

/** name -> value, for logs and run records. */
export function hyperRecord(values: readonly HyperparameterSpec[]): Record<string, number> {
  return Object.fromEntries(values.map((h) => [h.name, h.value]));
}
