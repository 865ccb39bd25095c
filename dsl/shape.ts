// Shape arithmetic and the error every builder throws when operands do not fit.
//
// A shape mismatch is a user error found while the graph is built. It is reported as a
// `ShapeError` naming the op, every operand's shape and the attributes, so the message alone
// says what to fix. `tryBuild` turns a throwing builder into an `Either` for callers that
// validate user input (program discovery in codegen, the CLI).

import * as E from "fp-ts/lib/Either.js";
import type { Shape } from "./ir";

/** Base of the errors a user's program can cause while it is built. */
export class DslError extends Error {}

export class ShapeError extends DslError {
  constructor(
    readonly op: string,
    readonly operands: readonly (readonly [string, Shape])[],
    readonly attrs: Readonly<Record<string, unknown>>,
    readonly reason: string,
  ) {
    super(formatShapeError(op, operands, attrs, reason));
    this.name = "ShapeError";
  }
}

export function showShape(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

function showAttr(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(showAttr).join(",")}]`;
  return String(v);
}

function formatShapeError(
  op: string,
  operands: readonly (readonly [string, Shape])[],
  attrs: Readonly<Record<string, unknown>>,
  reason: string,
): string {
  const ops = operands.map(([name, s]) => `${name} ${showShape(s)}`).join(", ");
  const attrText = Object.entries(attrs)
    .map(([k, v]) => `${k} ${showAttr(v)}`)
    .join(", ");
  return `${op}: ${reason} (${ops}${attrText ? `; ${attrText}` : ""})`;
}

/** Runs a graph builder, returning its ShapeError (or other DslError) as a value. */
export function tryBuild<T>(build: () => T): E.Either<DslError, T> {
  try {
    return E.right(build());
  } catch (e) {
    if (e instanceof DslError) return E.left(e);
    throw e;
  }
}

/** NumPy broadcasting: align trailing axes; each pair must be equal or contain a 1. */
export function broadcastShapes(a: Shape, b: Shape): Shape | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Normalises a possibly negative axis; undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return Number.isInteger(a) && a >= 0 && a < rank ? a : undefined;
}

// Output lengths of convolution and pooling windows (PyTorch's rules) live with the rest of the
// window geometry, which the interpreter and the kernel templates share.
export { convOutSize, poolOutSize } from "../format/conv-geometry";
