// A reduced gradcheck (a few cases per row; `npm run gradcheck` runs the full table), and the
// checker's own guarantees: it fails on a wrong gradient, it diagnoses kinks, it refuses a row
// whose graph lost its op, and it counts differentiable ops without a row as failures.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type F32, type Tensor, grad } from "../dsl/index";
import { streamFor } from "../format/init";
import * as op from "../dsl/ops";
import {
  type GradCase,
  type OpCheck,
  DEFAULT_TOLERANCE,
  OP_CHECKS,
  checkCase,
  drawValues,
  runCheck,
  runGradcheck,
  uncoveredOps,
} from "./index";

const SEED = 20180618;

describe("reduced gradcheck", () => {
  it("covers every differentiable op in the VJP table", () => {
    expect(uncoveredOps(OP_CHECKS)).toEqual([]);
  });

  it.each(OP_CHECKS.map((c) => [c.name, c] as const))("%s", (_, check) => {
    const row = runCheck(check, { seed: SEED, numRuns: 4 });
    expect(row.failure).toBeUndefined();
    expect(row.cases).toBe(4);
    expect(row.worst).toBeLessThanOrEqual(1);
  });
});

/** One hand-made case: y = exp(x) on a small vector. */
const expCase: GradCase = {
  label: "x [5]",
  seed: 3,
  inputs: { x: { shape: [5], dtype: "f32", dist: { kind: "uniform", lo: -1, hi: 1 }, wrt: true } },
  build: (t) => op.exp(t.f("x")),
};

/** A gradient off by a relative factor `scale`, to show what the tolerance admits. */
const scaledGradient = (scale: number) => (loss: F32<0>, wrt: readonly Tensor[]) => grad(loss, wrt).map((g) => op.mul(g, scale));

describe("the checker", () => {
  it("passes the true gradient with a wide margin", () => {
    const r = checkCase(expCase);
    expect(r.ok).toBe(true);
    expect(r.elements).toBe(5);
    expect(r.worst).toBeLessThan(0.05);
  });

  it("fails a gradient 1e-3 off, and tolerates one 1e-6 off (rtol is 1e-4)", () => {
    const off = checkCase(expCase, DEFAULT_TOLERANCE, scaledGradient(1 + 1e-3));
    expect(off.ok).toBe(false);
    expect(off.mismatches.length).toBe(5);
    expect(off.mismatches.every((m) => !m.kink)).toBe(true);
    expect(checkCase(expCase, DEFAULT_TOLERANCE, scaledGradient(1 + 1e-6)).ok).toBe(true);
  });

  it("a row reports a wrong gradient with its case and the seed to replay it", () => {
    const row = runCheck(OP_CHECKS.find((c) => c.name === "conv2d")!, { seed: SEED, numRuns: 5, gradient: scaledGradient(-1) });
    expect(row.failure).toMatch(/^N\d C\d O\d size .* elements differ; .* \(fast-check seed -?\d+, path [\d:]+\)$/);
  });

  it("flags a finite difference that straddles a kink", () => {
    const kinked: GradCase = {
      label: "relu at 0",
      seed: 1,
      inputs: { x: { shape: [3], dtype: "f32", dist: { kind: "uniform", lo: -1e-7, hi: 1e-7 }, wrt: true } },
      build: (t) => op.relu(t.f("x")),
    };
    const r = checkCase(kinked);
    expect(r.ok).toBe(false);
    expect(r.mismatches.every((m) => m.kink)).toBe(true);
  });

  it("refuses a row whose builder elided the op it claims to cover", () => {
    const elided: OpCheck = {
      name: "broadcastTo (elided)",
      op: "broadcastTo",
      cases: fc.constant<GradCase>({ ...expCase, build: (t) => op.broadcastTo(t.f("x"), [5]) }),
    };
    expect(runCheck(elided, { seed: SEED, numRuns: 1 }).failure).toContain("does not contain broadcastTo");
  });

  it("refuses a case whose differentiated input is not in the graph", () => {
    const unused: GradCase = { ...expCase, inputs: { ...expCase.inputs, y: { ...expCase.inputs.x!, wrt: true } } };
    expect(() => checkCase(unused)).toThrow("differentiated input y is not in the graph");
  });

  it("counts a differentiable op without a row as a failure", () => {
    const withoutExp = OP_CHECKS.filter((c) => c.op !== "exp" && c.op !== undefined).slice(0, 3);
    const report = runGradcheck(withoutExp, { seed: SEED, numRuns: 1 });
    expect(report.uncovered).toContain("exp");
    expect(report.failed).toBe(report.uncovered.length);
  });
});

describe("value distributions keep off kinks", () => {
  const next = () => streamFor(5, "x");

  it("distinct values are at least spacing/2 apart", () => {
    const xs = drawValues({ kind: "distinct", spacing: 0.1 }, 200, next()).sort((a, b) => a - b);
    const gaps = xs.slice(1).map((v, i) => v - xs[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(0.05 - 1e-12);
  });

  it("lattices offset by half a step never come within step/2 of each other", () => {
    const a = drawValues({ kind: "lattice", step: 0.2, offset: 0, count: 8 }, 100, next());
    const b = drawValues({ kind: "lattice", step: 0.2, offset: 0.1, count: 8 }, 100, streamFor(6, "y"));
    expect(Math.min(...a.flatMap((u) => b.map((v) => Math.abs(u - v))))).toBeGreaterThanOrEqual(0.1 - 1e-12);
  });

  it("awayFromZero respects its margin and takes both signs", () => {
    const xs = drawValues({ kind: "awayFromZero", margin: 0.05, hi: 2 }, 500, next());
    expect(xs.every((v) => Math.abs(v) >= 0.05 && Math.abs(v) <= 2)).toBe(true);
    expect(xs.some((v) => v < 0) && xs.some((v) => v > 0)).toBe(true);
  });

  it("labels are class ids or the ignore index, all ignored at rate 1", () => {
    const some = drawValues({ kind: "labels", classes: 3, ignoreIndex: 255, ignoreRate: 0.3 }, 500, next());
    expect(new Set(some)).toEqual(new Set([0, 1, 2, 255]));
    expect(drawValues({ kind: "labels", classes: 3, ignoreIndex: 255, ignoreRate: 1 }, 50, next()).every((l) => l === 255)).toBe(true);
  });
});
