// Programs: the checks defineProgram makes, and the phase semantics runProgram specifies
// (a phase's updates take effect together when it ends; the next phase sees them).

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type F32 } from "./ir";
import { grad } from "./grad";
import * as op from "./ops";
import { constant, declareModel, param, state } from "./params";
import { type Phase, ProgramError, StateThread, defineProgram, runProgram } from "./program";
import { DslError, tryBuild } from "./shape";

function tinyModel() {
  return declareModel("m", { w: param([2], { init: constant(0) }), count: state([], constant(0)) });
}

/** The error defineProgram reports, through tryBuild. */
function programError(build: () => unknown): string {
  const r = tryBuild(build);
  if (E.isRight(r)) throw new Error("expected a ProgramError");
  expect(r.left).toBeInstanceOf(ProgramError);
  return r.left.message;
}

describe("defineProgram rejects inconsistent programs", () => {
  it("a phase that reads a parameter the program does not declare", () => {
    const m = tinyModel();
    const x = op.input("x", [2], "f32") as F32;
    const phase: Phase = { name: "fwd", outputs: { y: op.sum(op.mul(x, m.p.w)) }, updates: {} };
    expect(programError(() => defineProgram({ name: "p", params: [], phases: [phase] }))).toBe(
      "program p: phase fwd reads param m/w, which is not among the program's params",
    );
  });

  it("an update whose shape differs from the declared tensor", () => {
    const m = tinyModel();
    const phase: Phase = { name: "step", outputs: {}, updates: { "m/w": op.sum(m.p.w) } };
    expect(programError(() => defineProgram({ name: "p", params: m.entries, phases: [phase] }))).toBe(
      "program p: phase step updates m/w [2] f32 with [] f32",
    );
  });

  it("an update of a name that is not declared", () => {
    const m = tinyModel();
    const phase: Phase = { name: "step", outputs: {}, updates: { "m/v": m.p.w } };
    expect(programError(() => defineProgram({ name: "p", params: m.entries, phases: [phase] }))).toContain("updates m/v, which is not declared");
  });

  it("a parameter declared twice", () => {
    const m = tinyModel();
    const phase: Phase = { name: "fwd", outputs: { y: op.sum(m.p.w) }, updates: {} };
    expect(programError(() => defineProgram({ name: "p", params: [...m.entries, m.entries[0]!], phases: [phase] }))).toBe(
      "program p: parameter m/w is declared twice",
    );
  });

  it("a second tensor declared under a parameter's name", () => {
    const m = tinyModel();
    const impostor = declareModel("m", { w: param([2], { init: constant(0) }) }).p.w;
    const phase: Phase = { name: "fwd", outputs: { y: op.sum(impostor) }, updates: {} };
    expect(programError(() => defineProgram({ name: "p", params: m.entries, phases: [phase] }))).toContain(
      "m/w is a different tensor from the declared one",
    );
  });

  it("two different data inputs with one name", () => {
    const a = op.input("x", [2], "f32") as F32;
    const b = op.input("x", [2], "f32") as F32;
    const phase: Phase = { name: "fwd", outputs: { y: op.add(a, b) }, updates: {} };
    expect(programError(() => defineProgram({ name: "p", params: [], phases: [phase] }))).toContain("two different data inputs are named x");
  });

  it("a name that is not a lowercase identifier, and a program without phases", () => {
    expect(programError(() => defineProgram({ name: "Train Step", params: [], phases: [] }))).toContain("must start with a lowercase letter");
    expect(programError(() => defineProgram({ name: "p", params: [], phases: [] }))).toContain("needs at least one phase");
  });

  it("accepts a consistent program and lists its data inputs by name", () => {
    const m = tinyModel();
    const [b, a] = [op.input("b", [2], "f32") as F32, op.input("a", [2], "f32") as F32];
    const phase: Phase = { name: "fwd", outputs: { y: op.sum(op.mul(op.add(a, b), m.p.w)) }, updates: {} };
    const program = defineProgram({ name: "p", params: m.entries, phases: [phase], config: { lr: 1 } });
    expect(program.inputs.map((t) => (t.node.op === "input" ? t.node.attrs.name : "?"))).toEqual(["a", "b"]);
    expect(program.config).toEqual({ lr: 1 });
  });
});

describe("runProgram", () => {
  /**
   * Phase 1 ("generator") reports L = sum(w * x) and steps w <- w - 0.5 dL/dw = w - 0.5 x, and
   * counts itself; phase 2 ("discriminator") reports L again: with the updated w.
   */
  function twoPhases() {
    const m = tinyModel();
    const x = op.input("x", [2], "f32") as F32;
    const loss = op.sum(op.mul(m.p.w, x));
    const [dw] = grad(loss, [m.p.w]);
    const generator: Phase = {
      name: "generator",
      outputs: { loss },
      updates: { "m/w": op.sub(m.p.w, op.mul(dw!, 0.5)), "m/count": op.add(m.p.count as F32, 1) },
    };
    const discriminator: Phase = { name: "discriminator", outputs: { loss, count: m.p.count }, updates: {} };
    return defineProgram({ name: "two-phase", params: m.entries, phases: [generator, discriminator] });
  }

  it("runs the phases in order; the second sees the first's updates", () => {
    const stateIn = new Map([
      ["m/w", Float64Array.from([1, 2])],
      ["m/count", Float64Array.from([0])],
    ]);
    const { outputs, state: after } = runProgram(twoPhases(), stateIn, { x: [3, 4] });
    // Before: w = (1, 2), L = 3 + 8 = 11. After: w = (1 - 1.5, 2 - 2) = (-0.5, 0), L = -1.5.
    expect(outputs[0]!.loss!.data[0]).toBe(11);
    expect(outputs[1]!.loss!.data[0]).toBe(-1.5);
    expect(outputs[1]!.count!.data[0]).toBe(1);
    expect([...after.get("m/w")!]).toEqual([-0.5, 0]);
    expect([...after.get("m/count")!]).toEqual([1]);
  });

  it("leaves the caller's state map untouched, and chains across steps", () => {
    const w0 = Float64Array.from([1, 2]);
    const stateIn = new Map([
      ["m/w", w0],
      ["m/count", Float64Array.from([0])],
    ]);
    const program = twoPhases();
    const first = runProgram(program, stateIn, { x: [3, 4] });
    const second = runProgram(program, first.state, new Map([["x", [3, 4]]]));
    expect(stateIn.get("m/w")).toBe(w0);
    expect([...w0]).toEqual([1, 2]);
    expect([...second.state.get("m/w")!]).toEqual([-2, -2]);
    expect([...second.state.get("m/count")!]).toEqual([2]);
  });

  it("applies a phase's updates together: an update reads the values from the phase's start", () => {
    const m = declareModel("s", { a: state([1], constant(0)), b: state([1], constant(0)) });
    // Swap: a <- b, b <- a. Sequential application would give (b, b).
    const swap: Phase = { name: "swap", outputs: {}, updates: { "s/a": m.p.b, "s/b": m.p.a } };
    const program = defineProgram({ name: "swap", params: m.entries, phases: [swap] });
    const { state: after } = runProgram(program, new Map([["s/a", Float64Array.from([1])], ["s/b", Float64Array.from([2])]]), {});
    expect([after.get("s/a")![0], after.get("s/b")![0]]).toEqual([2, 1]);
  });
});

describe("StateThread", () => {
  it("reads the declared tensor until written, then the latest write", () => {
    const m = tinyModel();
    const thread = new StateThread();
    expect(thread.read(m.p.w)).toBe(m.p.w);
    const once = op.mul(m.p.w, 2);
    thread.write(m.p.w, once);
    const twice = op.mul(thread.read(m.p.w), 2);
    thread.write(m.p.w, twice);
    expect(thread.read(m.p.w)).toBe(twice);
    expect(thread.updates()).toEqual({ "m/w": twice });
  });

  it("refuses to write to a value that is not a declared input", () => {
    const m = tinyModel();
    const thread = new StateThread();
    expect(() => thread.write(op.neg(m.p.w), m.p.w)).toThrow(DslError);
  });
});
