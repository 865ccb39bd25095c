// Programs: what codegen compiles and the runtime runs.
//
// A program declares its data inputs, its parameters and state (ParamEntry), and one or more
// phases. A phase is a pure function of (inputs, state at the start of the phase) to named
// outputs and state updates; its updates take effect together when the phase ends, so the
// next phase sees them (e.g. a generator phase, then a discriminator phase). Within a phase,
// `StateThread` threads a value that changes several times (BN running statistics updated by
// the source and then the target forward pass).

import { type Hyperparameter, type Hyperparameters, HYPERPARAMETERS_INPUT } from "./hyper";
import { type Tensor, topoSort } from "./ir";
import { type Feeds, type Precision, type Value, evaluate } from "./interpret";
import { type ParamEntry } from "./params";
import { DslError, showShape } from "./shape";

export interface Phase {
  readonly name: string;
  /** Values the caller reads back: losses, predictions. */
  readonly outputs: Readonly<Record<string, Tensor>>;
  /** New values of params/state, keyed by entry name, applied when the phase ends. */
  readonly updates: Readonly<Record<string, Tensor>>;
}

export interface Program {
  readonly name: string;
  /**
   * Data inputs, by name (images, labels, the iteration number): what a caller feeds each step.
   * The hyperparameter vector is not among them (see `hyperparameters`).
   */
  readonly inputs: readonly Tensor[];
  readonly params: readonly ParamEntry[];
  readonly phases: readonly Phase[];
  /** The configuration the program was built from, for reports and checkpoints. */
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * The elements of the `hyperparameters` input (dsl/hyper.ts), in vector order, with the
   * defaults the program was built with; empty when the program reads none. The vector is set
   * once per run, not fed per step, so it is not among `inputs`; the interpreter (runProgram)
   * and the runtime use these defaults unless the caller gives other values.
   */
  readonly hyperparameters: readonly Hyperparameter[];
}

export class ProgramError extends DslError {
  constructor(program: string, message: string) {
    super(`program ${program}: ${message}`);
    this.name = "ProgramError";
  }
}

/**
 * Checks a program: every reachable param/state input is declared (once), every update targets
 * a declared entry with the same shape and dtype, and data inputs have unique names.
 */
export function defineProgram(p: {
  readonly name: string;
  readonly params: readonly ParamEntry[];
  readonly phases: readonly Phase[];
  readonly config?: Readonly<Record<string, unknown>>;
  /** What `hyperparameters(...)` returned, when the phases read it. */
  readonly hyperparameters?: Hyperparameters<string>;
}): Program {
  const fail = (msg: string): never => {
    throw new ProgramError(p.name, msg);
  };
  if (!/^[a-z][a-zA-Z0-9_-]*$/.test(p.name)) fail(`the name must start with a lowercase letter and be alphanumeric`);
  if (p.phases.length === 0) fail("needs at least one phase");
  const byName = new Map<string, ParamEntry>();
  for (const e of p.params) {
    if (byName.has(e.name)) fail(`parameter ${e.name} is declared twice`);
    byName.set(e.name, e);
  }
  const inputs = new Map<string, Tensor>();
  let readsHyper = false;
  for (const phase of p.phases) {
    const roots = [...Object.values(phase.outputs), ...Object.values(phase.updates)];
    for (const t of topoSort(roots)) {
      if (t.node.op !== "input") continue;
      const { name, role } = t.node.attrs;
      if (role === "input") {
        if (name === HYPERPARAMETERS_INPUT) {
          if (t.id !== p.hyperparameters?.vector.id) fail(`phase ${phase.name} reads a ${HYPERPARAMETERS_INPUT} vector that is not the one passed to defineProgram`);
          readsHyper = true;
          continue;
        }
        const seen = inputs.get(name);
        if (seen && seen.id !== t.id) fail(`two different data inputs are named ${name}`);
        inputs.set(name, t);
        continue;
      }
      const entry = byName.get(name);
      if (!entry) fail(`phase ${phase.name} reads ${role} ${name}, which is not among the program's params`);
      if (entry!.tensor.id !== t.id) fail(`${name} is a different tensor from the declared one`);
    }
    for (const [name, value] of Object.entries(phase.updates)) {
      const entry = byName.get(name);
      if (!entry) fail(`phase ${phase.name} updates ${name}, which is not declared`);
      const target = entry!.tensor;
      if (value.dtype !== target.dtype || showShape(value.shape) !== showShape(target.shape)) {
        fail(`phase ${phase.name} updates ${name} ${showShape(target.shape)} ${target.dtype} with ${showShape(value.shape)} ${value.dtype}`);
      }
    }
  }
  const sorted = [...inputs.values()].sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : 1));
  // Declared but never read (every scalar unused): nothing to record, no slot to fill.
  const hyper = readsHyper ? (p.hyperparameters?.declared ?? []) : [];
  return { name: p.name, inputs: sorted, params: p.params, phases: p.phases, config: p.config ?? {}, hyperparameters: hyper };
}

const nameOf = (t: Tensor): string => (t.node.op === "input" ? t.node.attrs.name : "");

/**
 * The current value of each piece of state while a phase is being built. `read` gives the
 * latest value (the declared input until something writes it); `write` replaces it. The
 * phase's updates are everything written.
 */
export class StateThread {
  private readonly current = new Map<string, Tensor>();

  read<T extends Tensor>(declared: T): T {
    return (this.current.get(nameOf(declared)) as T | undefined) ?? declared;
  }

  write(declared: Tensor, value: Tensor): void {
    const name = nameOf(declared);
    if (!name) throw new DslError(`StateThread.write: target #${declared.id} is not a declared input`);
    this.current.set(name, value);
  }

  updates(): Record<string, Tensor> {
    return Object.fromEntries(this.current);
  }
}

/** Values of params and state between steps, by entry name. */
export type StateValues = Map<string, Float64Array | Float32Array | Int32Array | Uint8Array>;

/**
 * Runs every phase of a program once in the reference interpreter: the semantics that
 * generated code must reproduce. Returns each phase's outputs and the state afterwards.
 * `data` may omit `hyperparameters`: the program's declared defaults are used.
 */
export function runProgram(
  program: Program,
  stateIn: StateValues,
  data: Feeds,
  precision: Precision = "f64",
): { outputs: Record<string, Value>[]; state: StateValues } {
  const stateNow: StateValues = new Map(stateIn);
  const outputs: Record<string, Value>[] = [];
  for (const phase of program.phases) {
    const outNames = Object.keys(phase.outputs);
    const updNames = Object.keys(phase.updates);
    const feeds = new Map<string, ArrayLike<number>>(stateNow);
    const dataMap = data instanceof Map ? data : new Map(Object.entries(data));
    // Hyperparameters the caller does not give are the program's defaults (as in the runtime).
    if (program.hyperparameters.length > 0) feeds.set(HYPERPARAMETERS_INPUT, program.hyperparameters.map((h) => h.value));
    for (const [k, v] of dataMap) feeds.set(k, v);
    const values = evaluate([...outNames.map((n) => phase.outputs[n]!), ...updNames.map((n) => phase.updates[n]!)], feeds, precision);
    outputs.push(Object.fromEntries(outNames.map((n, i) => [n, values[i]!])));
    updNames.forEach((n, i) => stateNow.set(n, values[outNames.length + i]!.data));
  }
  return { outputs, state: stateNow };
}

/**
 * A program as users export it from `examples/`: codegen finds exports of this type (through
 * the type checker) and calls `build` to get the graph. `name` names the generated module.
 */
export interface ProgramExport {
  readonly kind: "dsl.program";
  readonly name: string;
  readonly description: string;
  build(): Program;
}

export function exportProgram(name: string, description: string, build: () => Program): ProgramExport {
  return { kind: "dsl.program", name, description, build };
}
