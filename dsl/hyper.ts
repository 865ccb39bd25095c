// Hyperparameters as run-time values: one f32 vector input, `hyperparameters`, whose elements a
// program reads as scalars.
//
// A learning rate or a loss weight written as a JS number becomes a literal in the generated
// WGSL, so changing it means compiling again. Read from this vector instead, the same kernels
// serve every value: the runtime writes the vector once before the first step (the module's
// declared defaults, overridden by the caller). One vector rather than K scalar inputs, because
// a kernel that reads several hyperparameters (an Adam update: lr, beta1, beta2, eps) then needs
// one storage binding, not four.
//
// Element k is slice(h, [k], [k+1]) reshaped to rank 0: a view of the input, which codegen
// inlines into its readers as the single load `bN[k]` (codegen/generated-wgsl.test.ts checks it).

import { type F32 } from "./ir";
import * as op from "./ops";
import { DslError } from "./shape";

/** The name of the vector input, and of the generated module's slot. */
export const HYPERPARAMETERS_INPUT = "hyperparameters";

/** One element of the vector: its name and the default value the program was built with. */
export interface Hyperparameter {
  readonly name: string;
  readonly value: number;
}

/** The scalars a program reads, and what it declares (names and defaults, in vector order). */
export interface Hyperparameters<K extends string> {
  readonly values: { readonly [N in K]: F32<0> };
  readonly declared: readonly Hyperparameter[];
  /** The vector input itself (shape [K]); defineProgram checks it is the one the program reads. */
  readonly vector: F32<1>;
}

/**
 * Declares the hyperparameter vector with `defaults` in key order: element k holds the k-th key.
 * Defaults must be finite; names must be identifiers (they become command-line overrides).
 */
export function hyperparameters<K extends string>(defaults: { readonly [N in K]: number }): Hyperparameters<K> {
  const names = Object.keys(defaults) as K[];
  if (names.length === 0) throw new DslError("hyperparameters: declare at least one");
  for (const name of names) {
    if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(name)) throw new DslError(`hyperparameters: the name ${JSON.stringify(name)} is not an identifier`);
    if (!Number.isFinite(defaults[name])) throw new DslError(`hyperparameters: the default of ${name} is ${defaults[name]}, not a finite number`);
  }
  const vector = op.input(HYPERPARAMETERS_INPUT, [names.length], "f32");
  const values = Object.fromEntries(names.map((name, k) => [name, op.reshape(op.slice(vector, [k], [k + 1]), [])])) as {
    [N in K]: F32<0>;
  };
  return { values, declared: names.map((name) => ({ name, value: defaults[name] })), vector };
}
