// Differential testing: a program run through generated kernels on Dawn against the
// reference interpreter in float32.

import * as E from "fp-ts/lib/Either.js";
import { type Program, type StateValues, runProgram } from "../../dsl/index";
import { type AcquiredDevice } from "../../runtime/device";
import { acquireNodeDevice } from "../../runtime/node-gpu";
import { type Instance, instantiate } from "../../runtime/runner";
import { type Compiled, compileProgram } from "../compile";

let shared: AcquiredDevice | undefined;

/** One device per process, with the adapter's maximum limits (the generated modules vary). */
export async function device(): Promise<AcquiredDevice> {
  if (shared) return shared;
  const acquired = await acquireNodeDevice({ maxStorageBufferBindingSize: 256, maxBufferSize: 256, maxStorageBuffersPerShaderStage: 8 })();
  if (E.isLeft(acquired)) throw new Error(acquired.left.message);
  shared = acquired.right;
  return shared;
}

export interface GpuRun {
  readonly compiled: Compiled;
  readonly instance: Instance;
  /** Each phase's outputs after the steps, by name. */
  readonly outputs: Map<string, Float32Array | Int32Array | Uint32Array>;
  /** Every param and state value after the steps. */
  readonly state: Map<string, Float32Array | Int32Array | Uint32Array>;
}

/** Compiles and runs `steps` steps of `program` on the GPU from the given state and data. */
export async function runOnGpu(program: Program, state: StateValues, data: ReadonlyMap<string, ArrayLike<number>>, steps = 1, adapterClass?: "cpu" | "gpu"): Promise<GpuRun> {
  const compiled = compileProgram(program);
  const dev = await device();
  const made = await instantiate(dev.device, compiled.module, adapterClass ?? dev.adapterClass);
  if (E.isLeft(made)) throw new Error(made.left.message);
  const instance = made.right;
  for (const [name, value] of state) instance.write(name, value as Float32Array);
  for (const [name, value] of data) instance.write(name, Array.from(value));
  instance.step(steps);
  const outNames = compiled.module.phases.flatMap((p) => p.outputs);
  const stateNames = program.params.map((e) => e.name);
  const values = await instance.readMany([...outNames, ...stateNames]);
  const outputs = new Map(outNames.map((n, i) => [n, values[i]!]));
  const after = new Map(stateNames.map((n, i) => [n, values[outNames.length + i]!]));
  return { compiled, instance, outputs, state: after };
}

/** The interpreter's result of `steps` steps, in float32. */
export function runOnInterpreter(program: Program, state: StateValues, data: ReadonlyMap<string, ArrayLike<number>>, steps = 1) {
  let current: StateValues = new Map(state);
  let outputs: Record<string, { data: ArrayLike<number> }> = {};
  for (let s = 0; s < steps; s++) {
    const r = runProgram(program, current, data as Map<string, ArrayLike<number>>, "f32");
    outputs = Object.assign({}, ...r.outputs);
    current = r.state;
  }
  return { outputs: new Map(Object.entries(outputs).map(([k, v]) => [k, v.data])), state: current };
}

/** Largest |a - b| / (atol/rtol scale) over two arrays; <= 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Infinity;
    worst = Math.max(worst, d / (atol + rtol * Math.abs(b[i]!)));
  }
  return worst;
}
