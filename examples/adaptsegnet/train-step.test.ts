// A whole multi-level AdaptSegNet training step through generated code:
//  - it is reproducible bit for bit: generated kernels fix their summation orders at codegen
//    time (no atomics, fixed splits), so the same step from the same state on the same
//    adapter gives the same bits, on a fresh instance or the same one, in one submission or
//    two;
//  - it agrees with the float32 interpreter.
//
// The program is the cpu-demo configuration (width 8, blocks [1,1,1,1], ndf 16) with small odd
// image sizes (the discriminators need >= 32 pixels per side). Cold, its instantiation
// compiles a few hundred shaders (a minute or more on lavapipe); every instance in this file
// shares them (Dawn and Mesa cache them). The GPU work runs once, in beforeAll, on two
// instances; the tests compare its snapshots.

import { beforeAll, describe, expect, it } from "vitest";
import { compileProgram } from "../../codegen/compile";
import { bitMismatch, instantiateCompiled, mismatch, rng, runOnInterpreter, stateNames, uniformF32 } from "../../codegen/testing/differential";
import { initialValues, numel } from "../../dsl/index";
import type { Instance } from "../../runtime/runner";
import { configFor } from "./presets";
import { buildTrainStep } from "./train";

const program = buildTrainStep("reproducibility", configFor("multi-level", "cpu-demo", { sourceSize: [65, 71], targetSize: [49, 67] }));
const compiled = compileProgram(program);
const names = stateNames(compiled.module);
const outputs = compiled.module.phases.flatMap((p) => p.outputs);

/** The initial state (the networks' own init, seed 7), images, labels with ignored pixels, iteration 3. */
function inputs(): [string, ArrayLike<number>][] {
  const r = rng(91);
  const data: [string, ArrayLike<number>][] = [...initialValues(program.params, 7)];
  for (const t of program.inputs) {
    if (t.node.op !== "input") continue;
    const n = numel(t.shape);
    const name = t.node.attrs.name;
    if (name === "iteration") data.push([name, [3]]);
    else if (t.dtype === "i32") data.push([name, Int32Array.from({ length: n }, () => (r() < 0.1 ? 255 : Math.floor(r() * 19)))]);
    else data.push([name, uniformF32(n, r, -1.5, 1.5)]);
  }
  return data;
}

/**
 * The whole step against the interpreter. The momentum buffers (= the gradients, on this
 * first step from zero buffers) and Adam's moments make this a check of every gradient, not
 * only of the (barely moved) parameters. Observed worst error: 0.3x of rtol 1e-4 / atol 1e-6,
 * on backbone weight-gradients (sums over every position of the 65x71 source image); the
 * tolerance leaves a 10x margin for templates that change summation orders.
 */
const TOLERANCE = { rtol: 3e-4, atol: 3e-6 };

async function fresh(): Promise<Instance> {
  const instance = await instantiateCompiled(compiled);
  for (const [name, value] of inputs()) instance.write(name, Array.from(value));
  return instance;
}

/** Every output and every param/state value, by name. */
async function snapshot(instance: Instance): Promise<Map<string, ArrayLike<number>>> {
  const all = [...outputs, ...names];
  const values = await instance.readMany(all);
  return new Map(all.map((n, i) => [n, values[i]!]));
}

function differences(a: Map<string, ArrayLike<number>>, b: Map<string, ArrayLike<number>>): string[] {
  return [...a.keys()].flatMap((n) => bitMismatch(n, a.get(n), b.get(n)) ?? []);
}

/** Instance a: two steps, one at a time. Instance b: one step, then (from the initial state again) step(2). */
let a1: Map<string, ArrayLike<number>>;
let a2: Map<string, ArrayLike<number>>;
let b1: Map<string, ArrayLike<number>>;
let b2: Map<string, ArrayLike<number>>;

beforeAll(async () => {
  const a = await fresh();
  a.step(1);
  a1 = await snapshot(a);
  a.step(1);
  a2 = await snapshot(a);
  a.destroy();
  const b = await fresh();
  b.step(1);
  b1 = await snapshot(b);
  for (const [name, value] of inputs()) b.write(name, Array.from(value));
  b.step(2);
  b2 = await snapshot(b);
  b.destroy();
}, 600_000);

const only = (snap: Map<string, ArrayLike<number>>, keys: readonly string[]) => new Map(keys.map((n) => [n, snap.get(n)!]));

describe("a multi-level AdaptSegNet training step", () => {
  it("from the same state on two fresh instances gives the same bits in every loss, parameter and piece of state", () => {
    expect(differences(a1, b1)).toEqual([]);
    // Not vacuous: the step moved the parameters, and the losses are finite.
    expect(differences(only(new Map(inputs()), names), only(a1, names))).not.toEqual([]);
    for (const n of outputs) expect(Number.isFinite(a1.get(n)![0]), n).toBe(true);
  });

  it("run twice, one step at a time, gives the same bits as step(2) in one submission", () => {
    expect(differences(a2, b2)).toEqual([]);
    expect(differences(only(a1, names), only(a2, names))).not.toEqual([]);
  });

  it("agrees with the float32 interpreter: losses, parameters, optimizer state and BN statistics", () => {
    const given = new Map(inputs());
    const state = new Map(program.params.map((e) => [e.name, given.get(e.name) as Float32Array]));
    const reference = runOnInterpreter(program, state, given);
    const expected = new Map<string, ArrayLike<number>>([...reference.outputs, ...reference.state]);
    const found = [...a1].flatMap(([name, value]) => mismatch(name, value, expected.get(name), TOLERANCE) ?? []);
    expect(found).toEqual([]);
  });
});
