// Differential tests of the three convolution templates: conv2d (register-tiled direct
// convolution), conv2dInputGrad (gather form by stride phase) and conv2dWeightGrad (split-K
// with a deterministic combine), on awkward geometries. Gradients come from autodiff (vjp
// with a random output cotangent, so dy is a plain buffer rather than a broadcast 1), exactly
// as training programs get them.
//
// Tolerances: forward and input-gradient sums have at most a few hundred terms (C*KH*KW or
// O*KH*KW) of products of values in [-1, 1]: rtol 1e-4 / atol 1e-5 is ~100x their f32
// rounding error. The weight-gradient sums over every output position (up to ~3000 terms
// here) in a different order from the interpreter's f64 sum: rtol 1e-3 / atol 1e-4.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Pair, Tensor } from "../dsl/index";
import { numel } from "../dsl/index";
import { program } from "./testing/cases";
import { type Tolerance, differential, rng, uniformF32, variantShaders } from "./testing/differential";

const CONV = { rtol: 1e-4, atol: 1e-5 };
const WGRAD = { rtol: 1e-3, atol: 1e-4 };

interface ConvCase {
  readonly name: string;
  readonly x: readonly [number, number, number, number];
  readonly w: readonly [number, number, number, number];
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly dilation?: number | Pair;
  readonly bias?: boolean;
}

/**
 * One program with, per case, the forward convolution and its gradients with respect to the
 * input, the weight and the bias, as outputs `<name>.y`, `.dx`, `.dw`, `.db`.
 */
function convProgram(cases: readonly ConvCase[]) {
  const outputs: Record<string, Tensor> = {};
  const inputs: Tensor[] = [];
  for (const c of cases) {
    const x = d.input(`${c.name}.x`, c.x, "f32") as F32<4>;
    const w = d.input(`${c.name}.w`, c.w, "f32") as F32<4>;
    const b = c.bias ? (d.input(`${c.name}.b`, [c.w[0]], "f32") as F32<1>) : undefined;
    const y = d.conv2d(x, w, b, { stride: c.stride ?? 1, padding: c.padding ?? 0, dilation: c.dilation ?? 1 });
    const dy = d.input(`${c.name}.dy`, y.shape, "f32") as F32<4>;
    const [dx, dw, db] = d.vjp([y], [dy], b ? [x, w, b] : [x, w]);
    Object.assign(outputs, { [`${c.name}.y`]: y, [`${c.name}.dx`]: dx!, [`${c.name}.dw`]: dw! }, db ? { [`${c.name}.db`]: db } : {});
    inputs.push(x, w, dy, ...(b ? [b] : []));
  }
  const r = rng(cases.length * 7919 + cases[0]!.x[1]);
  const data = new Map(inputs.map((t) => [(t.node.attrs as { name: string }).name, uniformF32(numel(t.shape), r)]));
  return { program: program(outputs), data };
}

const tolerance = (name: string): Tolerance => (name.endsWith(".dw") || name.endsWith(".db") ? WGRAD : CONV);

async function expectAgree(cases: readonly ConvCase[]) {
  const { program: p, data } = convProgram(cases);
  const res = await differential(p, new Map(), data, tolerance);
  expect(res.mismatches).toEqual([]);
  return res;
}

describe("convolutions and their gradients on the GPU agree with the float32 interpreter", () => {
  it("strides 1 and 2, paddings, 1x1, 3x3 and 7x7 kernels, and channel counts 3, 5, 7 and 13", async () => {
    await expectAgree([
      { name: "c3to5", x: [2, 3, 11, 13], w: [5, 3, 3, 3], padding: 1, bias: true },
      { name: "c7to13s2", x: [1, 7, 13, 11], w: [13, 7, 3, 3], stride: 2, padding: 1, bias: true },
      { name: "k7s2", x: [1, 5, 17, 19], w: [3, 5, 7, 7], stride: 2, padding: 3 },
      { name: "k1s2", x: [2, 6, 9, 9], w: [5, 6, 1, 1], stride: 2 },
      { name: "asym", x: [1, 3, 8, 11], w: [5, 3, 3, 5], stride: [2, 1], padding: [1, 2] },
    ]);
  });

  it("strides with dilations (taps of a stride phase stepping by s / gcd(s, d)), the discriminator's 4x4/2, and channels past 32", async () => {
    await expectAgree([
      { name: "s2d2", x: [1, 6, 15, 13], w: [9, 6, 3, 3], stride: 2, padding: 2, dilation: 2 },
      { name: "s3d", x: [1, 4, 14, 16], w: [3, 4, 3, 2], stride: 3, padding: [1, 2], dilation: [3, 2] },
      { name: "k4s2", x: [1, 19, 16, 15], w: [9, 19, 4, 4], stride: 2, padding: 1, bias: true },
      { name: "wide", x: [2, 37, 6, 5], w: [41, 37, 3, 3], padding: 1 },
    ]);
  });

  it("dilations 2, 4, 6 and 12 with padding equal to the dilation (ASPP)", async () => {
    await expectAgree([
      { name: "d2", x: [1, 5, 13, 11], w: [7, 5, 3, 3], padding: 2, dilation: 2, bias: true },
      { name: "d4", x: [1, 5, 13, 11], w: [7, 5, 3, 3], padding: 4, dilation: 4 },
      { name: "d6", x: [1, 5, 13, 11], w: [7, 5, 3, 3], padding: 6, dilation: 6, bias: true },
      // Wider than the input: most taps of every output fall in the padding.
      { name: "d12", x: [1, 5, 13, 11], w: [7, 5, 3, 3], padding: 12, dilation: 12 },
    ]);
  });

  it("1x1 spatial sizes, a one-column image and a batch of three", async () => {
    await expectAgree([
      { name: "px3x3", x: [1, 5, 1, 1], w: [3, 5, 3, 3], padding: 1, bias: true },
      { name: "column", x: [3, 3, 7, 1], w: [5, 3, 3, 1], stride: 2, padding: [1, 0] },
    ]);
  });

  it("images large enough for the CPU variants' 64-pixel tiles, with a ragged last tile, a batch of two and stride phases", async () => {
    const res = await expectAgree([
      // 2*41*53 = 4346 output pixels: 68 tiles of 64, the last one holding 58.
      { name: "tall", x: [2, 5, 41, 53], w: [7, 5, 3, 3], padding: 1, bias: true },
      // Stride 2: 65*66 = 4290 outputs, and 4 input-gradient phases of up to 4290 pixels each.
      { name: "talls2", x: [1, 3, 129, 131], w: [6, 3, 3, 3], stride: 2, padding: 1 },
    ]);
    const cpuShaders = variantShaders(res.gpu.compiled, "cpu");
    // Both the forward and the input-gradient of both cases took the tall tile.
    expect(cpuShaders.filter((w) => w.includes("// 64 pixels x 32 out-channels per subgroup"))).toHaveLength(2);
    expect(cpuShaders.filter((w) => w.includes("// 64 same-phase pixels x 32 channels per subgroup"))).toHaveLength(2);
  });

  // Operands are read in place or channel-packed by a pass first, by their size and how often
  // the kernel reads them (packingPays): both ways must give the same results. The small cases
  // above read in place; these are large enough to be packed, one with a channel count that is
  // not a multiple of 4 (zero lanes in the packing).
  it("operands large enough to be channel-packed, and small ones read in place, agree alike", async () => {
    const res = await expectAgree([
      { name: "packed", x: [1, 32, 48, 48], w: [32, 32, 3, 3], padding: 1 },
      { name: "packedodd", x: [1, 30, 40, 40], w: [18, 30, 3, 3], padding: 2, dilation: 2, bias: true },
      { name: "inplace", x: [1, 6, 9, 11], w: [5, 6, 1, 1] },
    ]);
    const names = res.gpu.compiled.module.phases[0]!.dispatches.map((k) => k.name);
    // Per packed case, x (program inputs are packed once per phase: the forward's packing is the
    // weight-gradient's) and dy (the input-gradient's packing is the weight-gradient's); none for
    // "inplace" (a fifth).
    expect(names.filter((n) => n.endsWith("_packc"))).toHaveLength(4);
  });

  it("weight gradients over many output positions split K and combine the partials", async () => {
    const res = await expectAgree([{ name: "long", x: [1, 3, 47, 53], w: [5, 3, 3, 3], padding: 1, bias: true }]);
    const names = res.gpu.compiled.module.phases[0]!.dispatches.map((k) => k.name);
    expect(names.filter((n) => /conv2dWeightGrad.*_stage1$/.test(n))).toHaveLength(1);
  });
});
