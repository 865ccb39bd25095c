// Hyperparameters as run-time values (hyper.ts): each scalar is its own element of the one
// `hyperparameters` vector, programs record names and defaults in vector order, and a program
// run without the vector computes with the defaults.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { grad } from "./grad";
import { HYPERPARAMETERS_INPUT, hyperparameters } from "./hyper";
import { evaluate } from "./interpret";
import { type F32 } from "./ir";
import * as op from "./ops";
import { constant, declareModel, param } from "./params";
import { ProgramError, defineProgram, runProgram } from "./program";
import { DslError, tryBuild } from "./shape";

describe("hyperparameters", () => {
  it("declares one f32 vector input named hyperparameters, one element per name", () => {
    const h = hyperparameters({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    expect(h.vector.shape).toEqual([3]);
    expect(h.vector.dtype).toBe("f32");
    expect(h.vector.node).toMatchObject({ op: "input", attrs: { name: HYPERPARAMETERS_INPUT, role: "input" } });
    expect(h.declared).toEqual([
      { name: "lr", value: 0.1 },
      { name: "momentum", value: 0.9 },
      { name: "weightDecay", value: 5e-4 },
    ]);
  });

  it("each scalar is rank 0 and reads its own element of the fed vector", () => {
    const h = hyperparameters({ a: 1, b: 2, c: 3 });
    const feeds = { [HYPERPARAMETERS_INPUT]: [10, 20, 30] };
    const [a, b, c] = evaluate([h.values.a, h.values.b, h.values.c], feeds);
    expect([a!.shape, b!.shape, c!.shape]).toEqual([[], [], []]);
    expect([a!.data[0], b!.data[0], c!.data[0]]).toEqual([10, 20, 30]);
  });

  it("a single hyperparameter is the whole vector, reshaped to a scalar", () => {
    const h = hyperparameters({ only: 0.5 });
    expect(h.values.only.shape).toEqual([]);
    expect(evaluate([h.values.only], { [HYPERPARAMETERS_INPUT]: [7] })[0]!.data[0]).toBe(7);
  });

  it("the gradient with respect to the vector lands on the element read (slice VJP)", () => {
    const h = hyperparameters({ a: 1, b: 2, c: 3 });
    const x = op.input("x", [4], "f32") as F32;
    const loss = op.mul(op.sum(x), h.values.b);
    const [g] = grad(loss, [h.vector]);
    const value = evaluate([g!], { x: [1, 2, 3, 4], [HYPERPARAMETERS_INPUT]: [5, 6, 7] })[0]!;
    expect(Array.from(value.data)).toEqual([0, 10, 0]);
  });

  it("refuses a non-finite default and a name that is not an identifier", () => {
    expect(() => hyperparameters({ lr: Number.NaN })).toThrow(/default of lr is NaN/);
    expect(() => hyperparameters({ "lambda-seg": 0.1 })).toThrow(/"lambda-seg" is not an identifier/);
    expect(() => hyperparameters({})).toThrow(DslError);
  });
});

describe("programs with hyperparameters", () => {
  function sgdProgram() {
    const h = hyperparameters({ lr: 0.5, weightDecay: 0.25 });
    const m = declareModel("m", { w: param([2], { init: constant(0) }) });
    const x = op.input("x", [2], "f32") as F32;
    const loss = op.sum(op.mul(x, m.p.w));
    const [g] = grad(loss, [m.p.w]);
    // w <- w - lr (g + wd w)
    const w = op.sub(m.p.w, op.mul(op.add(g!, op.mul(m.p.w, h.values.weightDecay)), h.values.lr));
    return defineProgram({ name: "sgd", params: m.entries, phases: [{ name: "step", outputs: { loss }, updates: { "m/w": w } }], hyperparameters: h });
  }

  it("records names and defaults in vector order; the vector is not among the data inputs", () => {
    const p = sgdProgram();
    expect(p.hyperparameters).toEqual([
      { name: "lr", value: 0.5 },
      { name: "weightDecay", value: 0.25 },
    ]);
    // The vector is set once per run, not fed each step: not a data input.
    expect(p.inputs.map((t) => (t.node.op === "input" ? t.node.attrs.name : ""))).toEqual(["x"]);
  });

  it("runProgram uses the defaults unless the caller feeds the vector", () => {
    const p = sgdProgram();
    const state = new Map([["m/w", Float64Array.of(1, 2)]]);
    const byDefault = runProgram(p, state, { x: [3, 4] }).state.get("m/w")!;
    // g = x = [3, 4]; w - 0.5 (x + 0.25 w)
    expect(Array.from(byDefault)).toEqual([1 - 0.5 * (3 + 0.25), 2 - 0.5 * (4 + 0.5)]);
    const fed = runProgram(p, state, { x: [3, 4], [HYPERPARAMETERS_INPUT]: [0.1, 0] }).state.get("m/w")!;
    expect(Array.from(fed)).toEqual([1 - 0.1 * 3, 2 - 0.1 * 4].map((v) => expect.closeTo(v, 12)));
  });

  it("a program that reads none of its declared hyperparameters records none", () => {
    const h = hyperparameters({ unused: 1 });
    const x = op.input("x", [2], "f32") as F32;
    const p = defineProgram({ name: "p", params: [], phases: [{ name: "f", outputs: { y: op.sum(x) }, updates: {} }], hyperparameters: h });
    expect(p.hyperparameters).toEqual([]);
  });

  it("defineProgram refuses a hyperparameter vector that was not passed to it", () => {
    const h = hyperparameters({ lr: 1 });
    const r = tryBuild(() => defineProgram({ name: "p", params: [], phases: [{ name: "f", outputs: { y: op.mul(h.values.lr, 2) }, updates: {} }] }));
    expect(E.isLeft(r) && r.left).toBeInstanceOf(ProgramError);
    expect(E.isLeft(r) ? r.left.message : "").toBe("program p: phase f reads a hyperparameters vector that is not the one passed to defineProgram");
  });
});
