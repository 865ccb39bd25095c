// Differential tests of the depthwise convolution templates (codegen/wgsl/templates/depthwise.ts):
// the forward, the input-gradient and the weight-gradient (one stage, or split rows with a
// combine), each in its portable and its CPU variant, against the float32 interpreter, on
// geometries whose sizes do not divide the CPU variants' 32-column rows. Gradients come from
// autodiff with a random output cotangent, as training programs get them.
//
// Tolerances: a forward or input-gradient output sums at most KH*KW = 25 products of values in
// [-1, 1]: rtol 1e-4 / atol 1e-5 is far above their f32 rounding. The weight-gradient sums up to
// N*OH*OW (~5000 here) products in another order than the interpreter's: rtol 1e-3 / atol 1e-4,
// as the conv weight-gradient's.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Pair, Tensor } from "../dsl/index";
import { numel } from "../dsl/index";
import { compileProgram } from "./compile";
import { program } from "./testing/cases";
import { type Tolerance, differential, dispatchCounts, kernelCounts, kernelPlans, rng, uniformF32, variantShaders } from "./testing/differential";

const CONV = { rtol: 1e-4, atol: 1e-5 };
const WGRAD = { rtol: 1e-3, atol: 1e-4 };

interface DepthwiseCase {
  readonly name: string;
  readonly x: readonly [number, number, number, number];
  readonly kernel: Pair;
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly dilation?: number | Pair;
  readonly bias?: boolean;
}

/** Per case, the forward and its gradients in x, w (and b) as outputs `<name>.y`, `.dx`, `.dw`, `.db`. */
function depthwiseProgram(cases: readonly DepthwiseCase[]) {
  const outputs: Record<string, Tensor> = {};
  const inputs: Tensor[] = [];
  for (const c of cases) {
    const x = d.input(`${c.name}.x`, c.x, "f32") as F32<4>;
    const w = d.input(`${c.name}.w`, [c.x[1], 1, ...c.kernel], "f32") as F32<4>;
    const b = c.bias ? (d.input(`${c.name}.b`, [c.x[1]], "f32") as F32<1>) : undefined;
    const y = d.depthwiseConv2d(x, w, b, { stride: c.stride ?? 1, padding: c.padding ?? 0, dilation: c.dilation ?? 1 });
    const dy = d.input(`${c.name}.dy`, y.shape, "f32") as F32<4>;
    const [dx, dw, db] = d.vjp([y], [dy], b ? [x, w, b] : [x, w]);
    Object.assign(outputs, { [`${c.name}.y`]: y, [`${c.name}.dx`]: dx!, [`${c.name}.dw`]: dw! }, db ? { [`${c.name}.db`]: db } : {});
    inputs.push(x, w, dy, ...(b ? [b] : []));
  }
  const r = rng(cases.length * 104729 + cases[0]!.x[1]);
  const data = new Map(inputs.map((t) => [(t.node.attrs as { name: string }).name, uniformF32(numel(t.shape), r)]));
  return { program: program(outputs), data };
}

const tolerance = (name: string): Tolerance => (name.endsWith(".dw") || name.endsWith(".db") ? WGRAD : CONV);

async function expectAgree(cases: readonly DepthwiseCase[]) {
  const { program: p, data } = depthwiseProgram(cases);
  const res = await differential(p, new Map(), data, tolerance);
  expect(res.mismatches).toEqual([]);
  return res;
}

describe("depthwise convolutions and their gradients on the GPU agree with the float32 interpreter", () => {
  it("MobileNetV2's 3x3 at strides 1 and 2, with bias, and odd channel counts", async () => {
    const res = await expectAgree([
      { name: "s1", x: [2, 5, 11, 13], kernel: [3, 3], padding: 1, bias: true },
      { name: "s2", x: [1, 7, 13, 11], kernel: [3, 3], stride: 2, padding: 1, bias: true },
      { name: "s2odd", x: [2, 3, 8, 9], kernel: [3, 3], stride: 2, padding: 1 },
    ]);
    // Every dispatch of the three templates has a CPU variant (one row of 32 columns per subgroup).
    const cpu = variantShaders(res.gpu.compiled, "cpu");
    expect(cpu.filter((w) => w.includes("// one row x 32 columns per subgroup, 4 per lane"))).toHaveLength(6);
    expect(cpu.filter((w) => w.includes("// one weight x one split per subgroup"))).toHaveLength(3);
  });

  it("dilations 2 and 4 (DeepLab's dilated MobileNetV2), stride with dilation, and asymmetric kernels and strides", async () => {
    await expectAgree([
      { name: "d2", x: [1, 6, 15, 13], kernel: [3, 3], padding: 2, dilation: 2, bias: true },
      { name: "d4", x: [1, 4, 17, 19], kernel: [3, 3], padding: 4, dilation: 4 },
      { name: "s2d2", x: [1, 3, 16, 15], kernel: [3, 3], stride: 2, padding: 2, dilation: 2 },
      { name: "asym", x: [2, 4, 9, 37], kernel: [5, 3], stride: [2, 1], padding: [2, 1], dilation: [1, 2], bias: true },
    ]);
  });

  it("windows mostly in the padding, a 1x1 image, a one-column image, and rows wider than one CPU tile", async () => {
    await expectAgree([
      { name: "d4p1", x: [1, 3, 9, 10], kernel: [3, 3], padding: 1, dilation: 4 },
      { name: "px", x: [1, 5, 1, 1], kernel: [3, 3], padding: 1, bias: true },
      { name: "column", x: [3, 2, 7, 1], kernel: [3, 1], stride: 2, padding: [1, 0] },
      { name: "wide", x: [1, 2, 5, 71], kernel: [3, 3], padding: 1 },
    ]);
  });

  it("weight gradients over many output rows split them and combine the partials in a second stage", async () => {
    const res = await expectAgree([{ name: "long", x: [2, 3, 47, 53], kernel: [3, 3], padding: 1, bias: true }]);
    const names = res.gpu.compiled.module.phases[0]!.dispatches.map((k) => k.name);
    expect(names.filter((n) => /depthwiseConv2dWeightGrad.*_stage1$/.test(n))).toHaveLength(1);
    expect(names.filter((n) => /depthwiseConv2dWeightGrad.*_stage2$/.test(n))).toHaveLength(1);
  });
});

describe("a depthwise convolution takes its activation as an epilogue", () => {
  it("depthwise conv + bias + ReLU6 is one dispatch, and agrees with the interpreter on both sides of 0 and 6", async () => {
    const x = d.input("x", [2, 6, 13, 11], "f32") as F32<4>;
    const w = d.input("w", [6, 1, 3, 3], "f32") as F32<4>;
    const b = d.input("b", [6], "f32") as F32<1>;
    const y = d.nn.relu6(d.depthwiseConv2d(x, w, b, { stride: 2, padding: 1 }));
    const p = program({ y });
    const r = rng(16);
    // x in [-4, 4]: window sums reach past 6, so the clamp is exercised at both bounds.
    const data = new Map([
      ["x", uniformF32(numel(x.shape), r, -4, 4)],
      ["w", uniformF32(numel(w.shape), r)],
      ["b", uniformF32(6, r)],
    ]);
    const res = await differential(p, new Map(), data, CONV);
    expect(res.mismatches).toEqual([]);
    const out = Array.from(res.reference.outputs.get("y")!);
    expect(out.some((v) => v === 0) && out.some((v) => v === 6) && out.some((v) => v > 0 && v < 6)).toBe(true);
    expect(kernelCounts(kernelPlans(p).get("p")!)).toEqual({ depthwiseConv2d: 1 });
    expect(dispatchCounts(compileProgram(p)).get("p")!.total).toBe(1);
  });
});
