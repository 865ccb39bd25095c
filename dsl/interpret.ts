// The reference interpreter: evaluates any graph on the CPU, in float64 or in float32.
//
// This is the specification that generated kernels are tested against, so it is written to be
// obviously right, not fast: one plain loop nest per op (each op's `evaluate` in its registry
// record, ops/*.ts), index arithmetic spelled out. In
// "f32" precision every stored f32 value is rounded to single precision (a Float32Array), which
// mirrors what the GPU stores; accumulations inside one op run in float64 in both modes.

import { type DType, type NodeOf, type OpName, type Shape, type Tensor, numel, topoSort } from "./ir";
import type { Data, Evaluate, Value } from "./ops/def";
import { OPS } from "./ops/registry";

export type { Data, Value };
// Bilinear taps live in format/ (the kernels use them too); re-exported where they always were.
export { linearTaps } from "../format/resize-taps";
export type Precision = "f64" | "f32";

export type Feeds = ReadonlyMap<string, ArrayLike<number>> | Readonly<Record<string, ArrayLike<number>>>;

export class MissingInputError extends Error {
  constructor(readonly inputName: string, readonly role: string, readonly shape: Shape) {
    super(`no value fed for ${role} "${inputName}" of shape [${shape.join(",")}]`);
    this.name = "MissingInputError";
  }
}

function alloc(dtype: DType, n: number, precision: Precision): Data {
  switch (dtype) {
    case "f32":
      return precision === "f64" ? new Float64Array(n) : new Float32Array(n);
    case "i32":
      return new Int32Array(n);
    case "bool":
      return new Uint8Array(n);
    default: {
      const never: never = dtype;
      throw new Error(`unknown dtype ${String(never)}`);
    }
  }
}

function lookup(feeds: Feeds, name: string): ArrayLike<number> | undefined {
  return feeds instanceof Map ? feeds.get(name) : (feeds as Record<string, ArrayLike<number>>)[name];
}

/**
 * Evaluates `outputs` given values for every reachable `input` node (by name). Returns the
 * values in the order of `outputs`.
 */
export function evaluate(outputs: readonly Tensor[], feeds: Feeds, precision: Precision = "f64"): Value[] {
  const values = new Map<number, Value>();
  for (const t of topoSort(outputs)) {
    const args = t.node.inputs.map((i) => values.get(i.id)!);
    const data = alloc(t.dtype, numel(t.shape), precision);
    if (t.node.op === "input") {
      const fed = lookup(feeds, t.node.attrs.name);
      if (fed === undefined) throw new MissingInputError(t.node.attrs.name, t.node.attrs.role, t.shape);
      if (fed.length !== data.length) {
        throw new Error(
          `${t.node.attrs.role} "${t.node.attrs.name}" expects ${data.length} values for shape [${t.shape.join(",")}], got ${fed.length}`,
        );
      }
      data.set(fed);
    } else {
      // The op's reference evaluation, from its registry record (ops/def.ts).
      (OPS[t.node.op].evaluate as Evaluate<OpName>)(t.node as NodeOf<OpName>, args, data, t.shape, t.dtype);
    }
    values.set(t.id, { shape: t.shape, dtype: t.dtype, data });
  }
  return outputs.map((o) => values.get(o.id)!);
}

/** Evaluates one scalar-valued tensor to a number. */
export function evaluateScalar(t: Tensor, feeds: Feeds, precision: Precision = "f64"): number {
  return evaluate([t], feeds, precision)[0]!.data[0]!;
}

