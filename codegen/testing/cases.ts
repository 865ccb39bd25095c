// Building small differential test cases: one-phase programs, many values stacked into one
// output (so that one kernel, one shader, checks many ops), and per-part comparison.

import * as d from "../../dsl/index";
import type { Program, Tensor } from "../../dsl/index";
import { numel } from "../../dsl/index";
import { type Tolerance, mismatch } from "./differential";

let serial = 0;

/** A one-phase program "p" computing `outputs` (and `updates`) from its inputs and params. */
export function program(
  outputs: Readonly<Record<string, Tensor>>,
  opts: { readonly params?: readonly d.ParamEntry[]; readonly updates?: Readonly<Record<string, Tensor>>; readonly name?: string } = {},
): Program {
  return d.defineProgram({
    name: opts.name ?? `case${serial++}`,
    params: opts.params ?? [],
    phases: [{ name: "p", outputs, updates: opts.updates ?? {} }],
  });
}

/** One labelled part of a stacked output. */
export interface Part {
  readonly label: string;
  readonly value: Tensor;
  /** Overrides the stack's tolerance for this part. */
  readonly tol?: Tolerance;
}

export interface Stack {
  readonly tensor: Tensor;
  readonly parts: readonly (Part & { readonly from: number; readonly to: number })[];
}

/**
 * Flattens each part and concatenates them: one value (one pointwise kernel, since reshape
 * and concat are views) that holds every part. All parts must share a dtype.
 */
export function stack(parts: readonly Part[]): Stack {
  let at = 0;
  const placed = parts.map((p) => {
    const n = numel(p.value.shape);
    const from = at;
    at += n;
    return { ...p, from, to: at };
  });
  // concat's type wants one dtype literal; the builder checks the dtypes agree.
  const flat = parts.map((p) => d.reshape(p.value, [numel(p.value.shape)])) as unknown as Tensor<1, "f32">[];
  return { tensor: d.concat(flat, 0), parts: placed };
}

/** The mismatches of each part of a stacked output (empty when every part agrees). */
export function stackMismatches(s: Stack, actual: ArrayLike<number> | undefined, expected: ArrayLike<number> | undefined, tol: Tolerance): string[] {
  if (actual === undefined || expected === undefined) return [`stack: missing ${actual === undefined ? "GPU" : "reference"} value`];
  const out: string[] = [];
  for (const p of s.parts) {
    const m = mismatch(p.label, Array.prototype.slice.call(actual, p.from, p.to), Array.prototype.slice.call(expected, p.from, p.to), p.tol ?? tol);
    if (m) out.push(m);
  }
  return out;
}
