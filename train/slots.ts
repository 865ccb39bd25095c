// The persistent tensors of a module seen as PyTorch state dicts: parameters and state grouped by
// model (G, D1, D2, and the optimizer states sgd_G, adam_D1, adam_D2), each under its state-dict
// key. This is the shape checkpoints take on disk and the unit restores are checked in.

import type { ExpectedTable } from "../checkpoint/validate.js";
import { makeTensor, type StateDict, type Tensor } from "../checkpoint/tensor.js";
import type { GeneratedModule, TensorSlot } from "../format/module.js";
import type { Instance, TensorData } from "../runtime/runner.js";
import { initialValue } from "../format/init.js";

/** A param or state slot with the model and key it is saved under. */
export interface PersistentSlot {
  readonly slot: TensorSlot;
  readonly model: string;
  readonly key: string;
}

/**
 * Every param and state slot, in module order. Slots the generator left without a model are
 * saved under the part of their name before the first '/' (or `module`), so nothing is lost.
 */
export function persistentSlots(module: GeneratedModule): PersistentSlot[] {
  return module.tensors
    .filter((t) => t.role === "param" || t.role === "state")
    .map((slot) => {
      if (slot.model !== undefined && slot.key !== undefined) return { slot, model: slot.model, key: slot.key };
      const cut = slot.name.indexOf("/");
      return cut > 0 ? { slot, model: slot.name.slice(0, cut), key: slot.name.slice(cut + 1) } : { slot, model: "module", key: slot.name };
    });
}

/** Model names in first-appearance order: G, D1, D2, sgd_G, ... */
export function modelsOf(slots: readonly PersistentSlot[]): string[] {
  return [...new Set(slots.map((s) => s.model))];
}

/** The key -> shape/dtype table of one model, to check a state dict against. */
export function expectedTable(slots: readonly PersistentSlot[], model: string): ExpectedTable {
  return new Map(
    slots.filter((s) => s.model === model).map((s) => [s.key, { shape: s.slot.shape, dtype: s.slot.dtype === "f32" ? ("F32" as const) : ("I32" as const) }]),
  );
}

function toTensor(slot: TensorSlot, data: TensorData): Tensor {
  switch (slot.dtype) {
    case "f32":
      return makeTensor("F32", slot.shape, data instanceof Float32Array ? data : Float32Array.from(data));
    case "i32":
      return makeTensor("I32", slot.shape, data instanceof Int32Array ? data : Int32Array.from(data));
    case "bool":
      return makeTensor("U32", slot.shape, data instanceof Uint32Array ? data : Uint32Array.from(data));
    default: {
      const never: never = slot.dtype;
      return never;
    }
  }
}

/** Every persistent tensor's current value, grouped by model, with one GPU wait. */
export async function readGroups(instance: Instance, slots: readonly PersistentSlot[]): Promise<Record<string, Map<string, Tensor>>> {
  const values = await instance.readMany(slots.map((s) => s.slot.name));
  return groupValues(slots, values);
}

export function groupValues(slots: readonly PersistentSlot[], values: readonly TensorData[]): Record<string, Map<string, Tensor>> {
  const groups: Record<string, Map<string, Tensor>> = {};
  slots.forEach((s, i) => {
    const data = values[i];
    if (data === undefined) throw new Error(`invariant: readMany returned a value for ${s.slot.name}`);
    (groups[s.model] ??= new Map()).set(s.key, toTensor(s.slot, data));
  });
  return groups;
}

/**
 * Writes the tensors of `groups` that the module has into it (shapes already checked by the
 * caller); returns the names of the slots that were written.
 */
export function writeGroups(instance: Instance, slots: readonly PersistentSlot[], groups: Readonly<Record<string, StateDict>>): string[] {
  const written: string[] = [];
  for (const s of slots) {
    const t = groups[s.model]?.get(s.key);
    if (t === undefined) continue;
    if (t.dtype === "I64" || t.dtype === "U64") {
      instance.write(s.slot.name, Int32Array.from(t.data as BigInt64Array, (v) => Number(v)));
    } else if (s.slot.dtype === "f32" && t.dtype !== "F32") {
      instance.write(s.slot.name, Float32Array.from(t.data as ArrayLike<number>));
    } else {
      instance.write(s.slot.name, t.data as Float32Array | Int32Array | Uint32Array);
    }
    written.push(s.slot.name);
  }
  return written;
}

/** Writes every persistent slot's initial value under `seed` (format/init.ts). */
export function writeInitialValues(instance: Instance, slots: readonly PersistentSlot[], seed: number): void {
  for (const s of slots) instance.write(s.slot.name, initialValue(s.slot, seed));
}
