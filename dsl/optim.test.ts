// Optimizer update expressions against hand-unrolled arithmetic (for the PyTorch 0.3/0.4
// behaviours no installed PyTorch reproduces) and against PyTorch 1.13 itself
// (dsl/fixtures/optim.json, written by scripts/make_fixtures.py).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type F32, type I32, type Tensor } from "./ir";
import { evaluate, evaluateScalar } from "./interpret";
import * as op from "./ops";
import * as optim from "./optim";
import { type ParamEntry, constant, declareModel, param } from "./params";

type Vec = readonly number[];

const SHAPE = [2, 3] as const;

function oneParam(): ParamEntry {
  return declareModel("m", { w: param(SHAPE, { init: constant(0), group: "backbone" }) }).entries[0]!;
}

const evalAll = (ts: readonly Tensor[], feeds: Record<string, Vec>): number[][] =>
  evaluate(ts, feeds).map((v) => [...v.data]);

function expectClose(actual: Vec, expected: Vec, digits = 12): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, digits));
}

describe("SGD with momentum and repeated visits (adaptsegnet.md 1.9)", () => {
  const p0 = [0.5, -1.25, 2, 0.125, -0.75, 1];
  const g = [0.2, 0.4, -0.6, 1.5, -0.05, 0];
  const b0 = [0.1, -0.2, 0, 0.3, 0.05, -1];
  const [lr, mu, wd] = [0.1, 0.9, 0.05];

  /** One element, three visits, unrolled; `decay(j)` is the weight-decay term added on visit j. */
  function threeVisits(i: number, decay: (ps: number[]) => number): { p: number; buf: number } {
    const ps = [p0[i]!];
    const g1 = g[i]! + decay(ps);
    const b1 = mu * b0[i]! + g1;
    ps.push(ps[0]! - lr * b1);
    const g2 = g[i]! + decay(ps);
    const b2 = mu * b1 + g2;
    ps.push(ps[1]! - lr * b2);
    const g3 = g[i]! + decay(ps);
    const b3 = mu * b2 + g3;
    return { p: ps[2]! - lr * b3, buf: b3 };
  }

  function sgdUpdates(visits: number, weightDecayInPlace: boolean) {
    const entry = oneParam();
    const grad = op.input("g", SHAPE, "f32") as F32;
    const res = optim.sgd("sgd", [{ entry, grad }], {
      lr: (e) => op.scalar(e.spec.group === "backbone" ? lr : 999),
      momentum: mu,
      weightDecay: wd,
      visits: () => visits,
      weightDecayInPlace,
    });
    return { res, run: () => evalAll([res.updates["m/w"]!, res.updates["sgd/m.w"]!], { "m/w": p0, "sgd/m.w": b0, g }) };
  }

  it("in place (PyTorch <= 1.4): visit j adds wd (p1 + ... + pj) to the gradient", () => {
    const [p, buf] = sgdUpdates(3, true).run();
    const sumOfVisited = (ps: number[]) => wd * ps.reduce((s, v) => s + v, 0);
    expectClose(p!, p0.map((_, i) => threeVisits(i, sumOfVisited).p));
    expectClose(buf!, p0.map((_, i) => threeVisits(i, sumOfVisited).buf));
  });

  it("not in place (PyTorch >= 1.5): visit j adds wd pj", () => {
    const [p, buf] = sgdUpdates(3, false).run();
    const current = (ps: number[]) => wd * ps[ps.length - 1]!;
    expectClose(p!, p0.map((_, i) => threeVisits(i, current).p));
    expectClose(buf!, p0.map((_, i) => threeVisits(i, current).buf));
  });

  it("the two weight-decay modes differ with repeated visits and agree with one", () => {
    const [pIn] = sgdUpdates(3, true).run();
    const [pOut] = sgdUpdates(3, false).run();
    expect(pIn!.some((v, i) => Math.abs(v - pOut![i]!) > 1e-6)).toBe(true);
    expect(sgdUpdates(1, true).run()).toEqual(sgdUpdates(1, false).run());
  });

  it("one visit is g <- g + wd p, buf <- mu buf + g, p <- p - lr buf", () => {
    const [p, buf] = sgdUpdates(1, true).run();
    const b1 = p0.map((v, i) => mu * b0[i]! + g[i]! + wd * v);
    expectClose(buf!, b1);
    expectClose(p!, p0.map((v, i) => v - lr * b1[i]!));
  });

  it("declares a zero-initialised momentum buffer per parameter, named after it", () => {
    const { res } = sgdUpdates(1, true);
    expect(res.state.map((e) => [e.name, e.spec.kind, e.spec.init])).toEqual([["sgd/m.w", "state", constant(0)]]);
    expect(Object.keys(res.updates).sort()).toEqual(["m/w", "sgd/m.w"]);
  });
});

describe("Adam, both eps placements (adaptsegnet.md 3.7)", () => {
  const p0 = [0.5, -1.25, 2, 0.125, -0.75, 1];
  const grads = [
    [0.2, 0.4, -0.6, 1.5, -0.05, 0.01],
    [-0.1, 0.3, 0.2, 1.2, 0.02, -0.5],
  ];
  const [lr, b1, b2, eps] = [0.01, 0.9, 0.99, 1e-3];

  /** Two steps of one element, written out; `stepOf` is the update subtracted from p at step t. */
  function twoSteps(i: number, stepOf: (m: number, v: number, t: number) => number): { p: number; m: number; v: number } {
    const ga = grads[0]![i]!;
    const gb = grads[1]![i]!;
    const m1 = (1 - b1) * ga;
    const v1 = (1 - b2) * ga * ga;
    const p1 = p0[i]! - stepOf(m1, v1, 1);
    const m2 = b1 * m1 + (1 - b1) * gb;
    const v2 = b2 * v1 + (1 - b2) * gb * gb;
    return { p: p1 - stepOf(m2, v2, 2), m: m2, v: v2 };
  }
  const pytorch1 = (m: number, v: number, t: number) => ((lr / (1 - b1 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
  const pytorch04 = (m: number, v: number, t: number) => ((lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t)) * (m / (Math.sqrt(v) + eps));

  function adamTwoSteps(epsPlacement: "pytorch1" | "pytorch0.4") {
    const entry = oneParam();
    const grad = op.input("g", SHAPE, "f32") as F32;
    const step = op.input("step", [], "f32") as F32<0>;
    const res = optim.adam("adam", [{ entry, grad }], { lr: op.scalar(lr), beta1: b1, beta2: b2, eps, step, epsPlacement });
    const names = ["m/w", "adam/m.w.exp_avg", "adam/m.w.exp_avg_sq"];
    const outs = names.map((n) => res.updates[n]!);
    let state: number[][] = [p0, p0.map(() => 0), p0.map(() => 0)];
    grads.forEach((g, k) => {
      state = evalAll(outs, { "m/w": state[0]!, "adam/m.w.exp_avg": state[1]!, "adam/m.w.exp_avg_sq": state[2]!, g, step: [k + 1] });
    });
    return { res, state };
  }

  it.each([
    ["pytorch1", pytorch1],
    ["pytorch0.4", pytorch04],
  ] as const)("%s: two steps match the hand computation", (placement, stepOf) => {
    const { state } = adamTwoSteps(placement);
    expectClose(state[0]!, p0.map((_, i) => twoSteps(i, stepOf).p));
    expectClose(state[1]!, p0.map((_, i) => twoSteps(i, stepOf).m));
    expectClose(state[2]!, p0.map((_, i) => twoSteps(i, stepOf).v));
  });

  it("the placements differ only through eps", () => {
    const a = adamTwoSteps("pytorch1").state[0]!;
    const b = adamTwoSteps("pytorch0.4").state[0]!;
    expect(a.some((v, i) => Math.abs(v - b[i]!) > 1e-7)).toBe(true);
    expectClose(a, b, 1);
  });

  it("declares both moments as zero-initialised state", () => {
    const { res } = adamTwoSteps("pytorch1");
    expect(res.state.map((e) => e.name)).toEqual(["adam/m.w.exp_avg", "adam/m.w.exp_avg_sq"]);
    expect(res.state.every((e) => e.spec.kind === "state" && e.spec.init.kind === "constant")).toBe(true);
  });
});

describe("optimizers match PyTorch 1.13 step by step", () => {
  interface Stored {
    shape: number[];
    data: number[];
  }
  interface Fixture {
    p0: Stored;
    grads: Stored[];
    sgd: { lr: number; momentum: number; weightDecay: number; params: Stored[]; momentumBuffer: Stored };
    adam: { lr: number; beta1: number; beta2: number; eps: number; params: Stored[]; expAvg: Stored; expAvgSq: Stored };
  }
  const fx = JSON.parse(readFileSync(new URL("./fixtures/optim.json", import.meta.url), "utf8")) as Fixture;
  const shape = fx.p0.shape;

  it("SGD (momentum, weight decay): three steps, and the momentum buffer", () => {
    const entry = declareModel("m", { w: param(shape, { init: constant(0) }) }).entries[0]!;
    const grad = op.input("g", shape, "f32") as F32;
    const { updates } = optim.sgd("sgd", [{ entry, grad }], {
      lr: () => op.scalar(fx.sgd.lr),
      momentum: fx.sgd.momentum,
      weightDecay: fx.sgd.weightDecay,
    });
    let [p, buf]: number[][] = [fx.p0.data, fx.p0.data.map(() => 0)];
    fx.grads.forEach((g, k) => {
      [p, buf] = evalAll([updates["m/w"]!, updates["sgd/m.w"]!], { "m/w": p!, "sgd/m.w": buf!, g: g.data });
      expectClose(p!, fx.sgd.params[k]!.data);
    });
    expectClose(buf!, fx.sgd.momentumBuffer.data);
  });

  it("Adam (eps after the bias correction): three steps, and both moments", () => {
    const entry = declareModel("m", { w: param(shape, { init: constant(0) }) }).entries[0]!;
    const grad = op.input("g", shape, "f32") as F32;
    const step = op.input("step", [], "f32") as F32<0>;
    const { lr, beta1, beta2, eps } = fx.adam;
    const { updates } = optim.adam("adam", [{ entry, grad }], { lr: op.scalar(lr), beta1, beta2, eps, step, epsPlacement: "pytorch1" });
    const outs = ["m/w", "adam/m.w.exp_avg", "adam/m.w.exp_avg_sq"].map((n) => updates[n]!);
    let [p, m, v]: number[][] = [fx.p0.data, fx.p0.data.map(() => 0), fx.p0.data.map(() => 0)];
    fx.grads.forEach((g, k) => {
      [p, m, v] = evalAll(outs, { "m/w": p!, "adam/m.w.exp_avg": m!, "adam/m.w.exp_avg_sq": v!, g: g.data, step: [k + 1] });
      expectClose(p!, fx.adam.params[k]!.data);
    });
    expectClose(m!, fx.adam.expAvg.data);
    expectClose(v!, fx.adam.expAvgSq.data);
  });
});

describe("poly learning rate", () => {
  it("is base (1 - i/maxIter)^power: about 0.4384 of the base at i = 150000 of 250000", () => {
    const i = op.input("i", [], "i32") as I32<0>;
    const lr = optim.polyLearningRate(2.5e-4, i, 250000, 0.9);
    expect(evaluateScalar(lr, { i: [0] })).toBeCloseTo(2.5e-4, 15);
    expect(evaluateScalar(lr, { i: [150000] }) / 2.5e-4).toBeCloseTo(0.4384, 4);
    expect(evaluateScalar(lr, { i: [150000] })).toBeCloseTo(2.5e-4 * Math.pow(0.4, 0.9), 15);
  });
});
