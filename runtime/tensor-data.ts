// Tensor data crossing the runtime's boundary: what write() accepts, what read() returns, and
// the message for a tensor name the module does not have.

import * as E from "fp-ts/lib/Either.js";
import type { TensorDType } from "../format/module.js";
import { runtimeError, type RuntimeError } from "./device.js";

export type TensorData = Float32Array | Int32Array | Uint32Array;
/** What write() accepts; bool tensors take 0/1 (any non-zero value counts as 1). */
export type TensorInput = Float32Array | Int32Array | Uint32Array | Uint8Array | readonly number[];

// ---------------------------------------------------------------------------------------------
// Reading and writing tensors

export function typedArrayFor(dtype: TensorDType, buffer: ArrayBuffer): TensorData {
  switch (dtype) {
    case "f32":
      return new Float32Array(buffer);
    case "i32":
      return new Int32Array(buffer);
    case "bool":
      return new Uint32Array(buffer);
    default: {
      const never: never = dtype;
      return never;
    }
  }
}

/** The words to upload for `data` into a tensor of `dtype`, or why the data does not fit it. */
export function encodeTensorData(dtype: TensorDType, data: TensorInput): E.Either<string, TensorData> {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array ? E.right(data) : E.right(Float32Array.from(data));
    case "i32":
      if (data instanceof Float32Array) return E.left("a Float32Array cannot fill an i32 tensor (convert it explicitly)");
      if (data instanceof Int32Array) return E.right(data);
      return Array.from(data as ArrayLike<number>).every(Number.isInteger)
        ? E.right(Int32Array.from(data))
        : E.left("an i32 tensor takes integers only");
    case "bool":
      // Bools are stored as u32 words holding 0 or 1.
      return E.right(Uint32Array.from(data as ArrayLike<number>, (v) => (v !== 0 ? 1 : 0)));
    default: {
      const never: never = dtype;
      return never;
    }
  }
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(substitute, (previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Up to this many names are listed when a name is unknown (a full model has hundreds). */
const LISTED_NAMES = 30;

export function unknownTensor(name: string, names: readonly string[]): RuntimeError {
  const nearest = names.length <= LISTED_NAMES ? names : [...names].sort((a, b) => editDistance(name, a) - editDistance(name, b)).slice(0, LISTED_NAMES);
  const rest = names.length - nearest.length;
  const list = nearest.join(", ") + (rest > 0 ? `, ... (${rest} more; these are the closest)` : "");
  return runtimeError("tensor", `no tensor named '${name}'; the module has: ${list}`);
}

