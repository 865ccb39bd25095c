// Sources: values with no operands.

import type { DType, I32, InputRole, Shape, Tensor } from "../ir";
import { stridesOf } from "../ir";
import { ShapeError, normAxis } from "../shape";
import { node } from "./build";
import { NONDIFF, type OpDef } from "./def";

export interface SourceAttrs {
  input: { readonly name: string; readonly role: InputRole };
  constant: { readonly value: number };
  iota: { readonly axis: number };
}

/** A named value supplied when the program runs: data input, parameter or state. */
export function input<const S extends Shape, D extends DType>(
  name: string,
  shape: S,
  dtype: D,
  role: InputRole = "input",
): Tensor<S["length"], D> {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new ShapeError("input", [[name, shape]], {}, `dimension ${d} is not a positive integer`);
    }
  }
  return node({ op: "input", inputs: [], attrs: { name, role } }, shape, dtype);
}

/** A constant scalar (rank 0). Broadcasting gives it any shape for free. */
export function scalar<D extends DType = "f32">(value: number, dtype?: D): Tensor<0, D> {
  const dt = (dtype ?? "f32") as D;
  if (dt === "i32" && !Number.isInteger(value)) {
    throw new ShapeError("scalar", [], { value }, "an i32 constant must be an integer");
  }
  return node({ op: "constant", inputs: [], attrs: { value } }, [], dt);
}

/** out[i0..] = i_axis: the index along one axis, as i32 (one-hot masks, class ids). */
export function iota<const S extends Shape>(shape: S, axis: number): I32<S["length"]> {
  const a = normAxis(axis, shape.length);
  if (a === undefined) throw new ShapeError("iota", [["shape", shape]], { axis }, "axis out of range");
  return node({ op: "iota", inputs: [], attrs: { axis: a } }, shape, "i32");
}

export const SOURCE_OPS = {
  input: {
    // Inputs take their values from the feeds (interpret.ts: evaluate), never from a rule.
    evaluate: (n) => {
      throw new Error(`interpreter: input "${n.attrs.name}" is fed, not evaluated`);
    },
    vjp: NONDIFF,
    lowering: { kind: "load" },
    gradcheck: { kind: "none" },
  },
  constant: {
    evaluate: (n, _args, out) => {
      out[0] = n.attrs.value;
    },
    vjp: NONDIFF,
    lowering: { kind: "source", wgsl: (c) => c.literal(c.node.attrs.value, c.dtype) },
    gradcheck: { kind: "none" },
  },
  iota: {
    evaluate: (n, _args, out, shape) => {
      const st = stridesOf(shape);
      const axis = n.attrs.axis;
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(i / st[axis]!) % shape[axis]!;
    },
    vjp: NONDIFF,
    lowering: { kind: "source", wgsl: (c) => c.idx[c.node.attrs.axis]! },
    gradcheck: { kind: "none" },
  },
} satisfies { readonly [K in keyof SourceAttrs]: OpDef<K> };
