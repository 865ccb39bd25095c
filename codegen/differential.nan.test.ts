// NaN and infinity propagation: generated kernels (every kernel variant the module has, run on
// this device) and the float32 interpreter against PyTorch 1.13's values.
//
// A NaN in an input or a weight must reach the loss as it does in PyTorch: relu, leaky_relu,
// maximum/minimum, clamp (relu6), max_pool2d and amax return NaN when an operand is NaN, where
// WGSL's max/min/clamp may return the other operand. Expected values were computed once with
// Debian's python3-torch (1.13) and are written out here; the tests do not need Python.
// NaN must come back as NaN, infinities exactly, finite values within rtol 1e-5 / atol 1e-6
// (f32 ops a few ulps from PyTorch's).

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, I32, Program, Tensor } from "../dsl/index";
import { compileProgram } from "./compile";
import { program, stack } from "./testing/cases";
import { device, deviceFeatures, hasDistinctVariants, rng, runCompiled, runOnInterpreter, uniformF32, uniformInts } from "./testing/differential";

const NaN_ = Number.NaN;
const Inf = Number.POSITIVE_INFINITY;
const TOL = { rtol: 1e-5, atol: 1e-6 };

type Outputs = ReadonlyMap<string, ArrayLike<number>>;

/** The outputs of every GPU kernel variant of `p` and of the float32 interpreter, labelled. */
async function everyPath(p: Program, data: ReadonlyMap<string, ArrayLike<number>>): Promise<{ readonly label: string; readonly outputs: Outputs }[]> {
  const compiled = compileProgram(p);
  const own = (await device()).adapterClass;
  const classes = hasDistinctVariants(compiled.module, await deviceFeatures()) ? [own, own === "cpu" ? "gpu" : "cpu"] as const : [own];
  const runs: { label: string; outputs: Outputs }[] = [];
  for (const adapterClass of classes) {
    const gpu = await runCompiled(compiled, new Map(), data, 1, adapterClass);
    gpu.instance.destroy();
    runs.push({ label: `gpu (${adapterClass} variants)`, outputs: gpu.outputs });
  }
  runs.push({ label: "interpreter", outputs: runOnInterpreter(p, new Map(), data).outputs });
  return runs;
}

/** One line per element that is not PyTorch's: NaN where it is NaN, else equal or close. */
function torchMismatches(label: string, actual: ArrayLike<number> | undefined, expected: readonly number[]): string[] {
  if (actual === undefined) return [`${label}: missing`];
  if (actual.length !== expected.length) return [`${label}: ${actual.length} values, expected ${expected.length}`];
  return expected.flatMap((e, i) => {
    const a = actual[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : a === e || Math.abs(a - e) <= TOL.atol + TOL.rtol * Math.abs(e);
    return ok ? [] : [`${label}[${i}]: got ${a}, PyTorch ${e}`];
  });
}

/** Checks every named output of every path against PyTorch's values. */
async function expectTorch(p: Program, data: ReadonlyMap<string, ArrayLike<number>>, expected: Readonly<Record<string, readonly number[]>>): Promise<void> {
  const runs = await everyPath(p, data);
  const wrong = runs.flatMap((r) => Object.entries(expected).flatMap(([name, values]) => torchMismatches(`${r.label} ${name}`, r.outputs.get(name), values)));
  expect(wrong).toEqual([]);
}

/** The parts of a stack as one flat expected array, in stack order. */
const flat = (...parts: (readonly number[])[]): number[] => parts.flat();

// The elementwise operands: a NaN, both infinities, zero and ordinary values; y puts NaN
// against ordinary values and infinities (no ties: PyTorch splits a tie's gradient in half).
const X = [NaN_, -1, 2, Inf, -Inf, 0, -0.5, 0.25];
const Y = [1, NaN_, NaN_, 1, 0, NaN_, -1, 0.5];

describe("NaN and infinities propagate through activations as in PyTorch", () => {
  it("relu, leakyRelu, relu6 (a clamp), maximum, minimum, -|x| as minimum(x, -x), abs, sign, sigmoid and tanh", async () => {
    const x = d.input("x", [8], "f32") as F32;
    const y = d.input("y", [8], "f32") as F32;
    const s = stack([
      { label: "relu", value: d.relu(x) },
      { label: "leakyRelu", value: d.leakyRelu(x, 0.2) },
      { label: "relu6", value: d.minimum(d.maximum(x, 0), 6) },
      { label: "maximum", value: d.maximum(x, y) },
      { label: "minimum", value: d.minimum(x, y) },
      // bce-with-logits' -|x|: a NaN test that returned a + b would give x + -x, folded to 0.
      { label: "minimum of x and -x", value: d.minimum(x, d.neg(x)) },
      { label: "abs", value: d.abs(x) },
      { label: "sign", value: d.sign(x) },
      { label: "sigmoid", value: d.sigmoid(x) },
      { label: "tanh", value: d.tanh(x) },
    ]);
    await expectTorch(program({ s: s.tensor }), new Map([["x", X], ["y", Y]]), {
      s: flat(
        [NaN_, 0, 2, Inf, 0, 0, 0, 0.25],
        [NaN_, -0.2, 2, Inf, -Inf, 0, -0.1, 0.25],
        [NaN_, 0, 2, 6, 0, 0, 0, 0.25],
        [NaN_, NaN_, NaN_, Inf, 0, NaN_, -0.5, 0.5],
        [NaN_, NaN_, NaN_, 1, -Inf, NaN_, -1, 0.25],
        [NaN_, -1, -2, -Inf, -Inf, 0, -0.5, -0.25],
        [NaN_, 1, 2, Inf, Inf, 0, 0.5, 0.25],
        // PyTorch 1.13's sign is (0 < x) - (x < 0): 0 for NaN.
        [0, -1, 1, 1, -1, 0, -1, 1],
        [NaN_, 0.2689414322376251, 0.8807970285415649, 1, 0, 0.5, 0.3775406777858734, 0.562176525592804],
        [NaN_, -0.7615941762924194, 0.9640275835990906, 1, -1, 0, -0.46211716532707214, 0.24491865932941437],
      ),
    });
  });

  it("their gradients: relu passes dy where x <= 0 is false (a NaN x too), maximum/minimum give a NaN's dy to both operands, a NaN dy propagates", async () => {
    const x = d.input("x", [8], "f32") as F32;
    const y = d.input("y", [8], "f32") as F32;
    const ones = d.input("ones", [8], "f32") as F32;
    const nans = d.input("nans", [8], "f32") as F32;
    const vjp = (out: F32, dy: F32, wrt: F32) => d.vjp([out], [dy], [wrt])[0]!;
    const s = stack([
      { label: "relu dx", value: vjp(d.relu(x), ones, x) },
      { label: "relu dx of a NaN dy", value: vjp(d.relu(x), nans, x) },
      { label: "leakyRelu dx", value: vjp(d.leakyRelu(x, 0.2), ones, x) },
      { label: "maximum dx", value: vjp(d.maximum(x, y), ones, x) },
      { label: "maximum dy", value: vjp(d.maximum(x, y), ones, y) },
      { label: "minimum dx", value: vjp(d.minimum(x, y), ones, x) },
      { label: "minimum dy", value: vjp(d.minimum(x, y), ones, y) },
      { label: "abs dx", value: vjp(d.abs(x), ones, x) },
      { label: "abs dx of a NaN dy", value: vjp(d.abs(x), nans, x) },
    ]);
    const data = new Map([["x", X], ["y", Y], ["ones", new Array<number>(8).fill(1)], ["nans", new Array<number>(8).fill(NaN_)]]);
    await expectTorch(program({ s: s.tensor }), data, {
      s: flat(
        [1, 0, 1, 1, 0, 0, 0, 1],
        [NaN_, 0, NaN_, NaN_, 0, 0, 0, NaN_],
        [0.2, 0.2, 1, 1, 0.2, 0.2, 0.2, 1],
        [1, 1, 1, 1, 0, 1, 1, 0],
        [1, 1, 1, 0, 1, 1, 0, 1],
        [1, 1, 1, 0, 1, 1, 0, 1],
        [1, 1, 1, 1, 0, 1, 1, 0],
        [0, -1, 1, 1, -1, 0, -1, 1],
        new Array<number>(8).fill(NaN_),
      ),
    });
  });
});

describe("hardtanh keeps NaN and masks its gradient as PyTorch's hardtanh_backward", () => {
  it("relu6 = hardtanh(x, 0, 6) and hardtanh(x, -1, 1): NaN kept, gradient 0 at and beyond the bounds, dy at a NaN", async () => {
    const x = d.input("x", [8], "f32") as F32;
    const ones = d.input("ones", [8], "f32") as F32;
    const dx = (out: F32) => d.vjp([out], [ones], [x])[0]!;
    const s = stack([
      { label: "relu6", value: d.nn.relu6(x) },
      { label: "hardtanh", value: d.hardtanh(x, -1, 1) },
      { label: "relu6 dx", value: dx(d.nn.relu6(x)) },
      { label: "hardtanh dx", value: dx(d.hardtanh(x, -1, 1)) },
    ]);
    await expectTorch(program({ s: s.tensor }), new Map([["x", X], ["ones", new Array<number>(8).fill(1)]]), {
      s: flat(
        [NaN_, 0, 2, 6, 0, 0, 0, 0.25],
        [NaN_, -1, 1, 1, -1, 0, -0.5, 0.25],
        [1, 0, 1, 0, 0, 0, 0, 1],
        [1, 0, 0, 0, 0, 1, 1, 1],
      ),
    });
  });
});

describe("NaN and infinities propagate through reductions, softmax and pooling as in PyTorch", () => {
  it("amax is NaN over a NaN (its gradient NaN over the whole row), argmax points at the first NaN, sum is NaN", async () => {
    const x = d.input("x", [3, 5], "f32") as F32<2>;
    const ones = d.input("ones", [3], "f32") as F32<1>;
    const max = d.max(x, [1]);
    const p = program({ max, dx: d.vjp([max], [ones], [x])[0]!, argmax: d.argmax(x, 1), sum: d.sum(x, [1]) });
    const data = new Map([["x", [1, NaN_, 3, NaN_, 2, Inf, 1, Inf, 0, -Inf, -1, -2, -3, -4, -5]], ["ones", [1, 1, 1]]]);
    await expectTorch(p, data, {
      max: [NaN_, Inf, -1],
      // Tied maxima share dy (PyTorch's amax); no element equals a NaN maximum: dy / 0 * 0.
      dx: [NaN_, NaN_, NaN_, NaN_, NaN_, 0.5, 0, 0.5, 0, 0, 1, 0, 0, 0, 0],
      argmax: [1, 0, 0],
      sum: [NaN_, NaN_, -15],
    });
  });

  it("long max reductions (a subgroup per output; two stages) are NaN over a NaN", async () => {
    // 100 elements per output take the CPU subgroup variant; 5000 take two stages (4 splits).
    const cases = [
      { name: "k100", k: 100, nanAt: 37 },
      { name: "k5000", k: 5000, nanAt: 3001 },
    ];
    const outputs: Record<string, Tensor> = {};
    const data = new Map<string, ArrayLike<number>>();
    const expected: Record<string, number[]> = {};
    const r = rng(7);
    for (const c of cases) {
      const x = d.input(c.name, [2, c.k], "f32") as F32<2>;
      outputs[`${c.name}.max`] = d.max(x, [1]);
      const values = uniformF32(2 * c.k, r);
      values[c.nanAt] = NaN_; // row 0
      data.set(c.name, values);
      expected[`${c.name}.max`] = [NaN_, Math.max(...values.subarray(c.k))];
    }
    await expectTorch(program(outputs), data, expected);
  });

  it("softmax and log-softmax rows holding a NaN or +Inf are NaN; -Inf gives probability 0", async () => {
    const x = d.input("x", [5, 3], "f32") as F32<2>;
    const p = program({ softmax: d.softmax(x, 1), logSoftmax: d.logSoftmax(x, 1) });
    const data = new Map([["x", [NaN_, 1, 2, Inf, 1, 2, -Inf, 1, 2, Inf, Inf, 1, 0, 1, 2]]]);
    const nanRow = [NaN_, NaN_, NaN_];
    await expectTorch(p, data, {
      softmax: flat(nanRow, nanRow, [0, 0.2689414322376251, 0.7310585975646973], nanRow, [0.09003057330846786, 0.2447284758090973, 0.6652409434318542]),
      logSoftmax: flat(nanRow, nanRow, [-Inf, -1.31326162815094, -0.31326165795326233], nanRow, [-2.4076058864593506, -1.4076058864593506, -0.40760594606399536]),
    });
  });

  it("maxPool2d is NaN over a window holding a NaN, and its gradient goes to the window's last NaN (PyTorch's index)", async () => {
    // Channel 0 holds NaNs, channel 1 +-Inf, channel 2 only -Inf (the window's first element
    // takes the gradient). Two geometries with the same windows' contents.
    const x = d.input("x", [1, 3, 3, 3], "f32") as F32<4>;
    const ones = d.input("ones", [1, 3, 2, 2], "f32") as F32<4>;
    const simple = d.maxPool2d(x, { kernel: 2, stride: 1 });
    const padded = d.maxPool2d(x, { kernel: 3, stride: 2, padding: 1, ceilMode: true });
    const p = program({
      y: simple,
      dx: d.vjp([simple], [ones], [x])[0]!,
      yPadded: padded,
      dxPadded: d.vjp([padded], [ones], [x])[0]!,
    });
    const data = new Map([
      ["x", [1, NaN_, 3, NaN_, 0, 2, 5, 1, NaN_, 1, 2, 0, Inf, -Inf, 0, 0, 0, 0, ...new Array<number>(9).fill(-Inf)]],
      ["ones", new Array<number>(12).fill(1)],
    ]);
    const y = [NaN_, NaN_, NaN_, NaN_, Inf, 2, Inf, 0, -Inf, -Inf, -Inf, -Inf];
    const dx = [0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0];
    await expectTorch(p, data, { y, dx, yPadded: y, dxPadded: dx });
  });
});

describe("NaN and infinities reach the training losses as in PyTorch", () => {
  // Logits [1, 3, 1, 2]: pixel 0 holds the NaN (or +Inf) in class 0, pixel 1 is ordinary.
  const logitsWith = (first: number) => [first, 1, 1, 2, 2, 3];

  it("softmax cross-entropy and its gradient: NaN over a NaN or +Inf logit of a valid pixel, finite when that pixel is ignored", async () => {
    const outputs: Record<string, Tensor> = {};
    const data = new Map<string, ArrayLike<number>>();
    for (const [name, first] of [["nan", NaN_], ["inf", Inf]] as const) {
      const x = d.input(`${name}.x`, [1, 3, 1, 2], "f32") as F32<4>;
      data.set(`${name}.x`, logitsWith(first));
      for (const [case_, labels] of [["valid", [0, 1]], ["ignored", [255, 1]]] as const) {
        const l = d.input(`${name}.${case_}.labels`, [1, 1, 2], "i32") as I32;
        data.set(`${name}.${case_}.labels`, labels);
        const loss = d.losses.crossEntropy(x, l);
        outputs[`${name}.${case_}`] = loss;
        if (case_ === "valid") outputs[`${name}.${case_}.dx`] = d.grad(loss, [x])[0]!;
      }
    }
    // (PyTorch's gradient at an ignored pixel holding a NaN is NaN, through log_softmax's
    // backward; the fused gradient here is 0 there, so that pixel's gradient is not compared.)
    const dxValid = [NaN_, 0.04501529037952423, NaN_, -0.37763574719429016, NaN_, 0.3326204717159271];
    await expectTorch(program(outputs), data, {
      "nan.valid": [NaN_],
      "nan.ignored": [1.4076058864593506],
      "nan.valid.dx": dxValid,
      "inf.valid": [NaN_],
      "inf.ignored": [1.4076058864593506],
      "inf.valid.dx": dxValid,
    });
  });

  it("bce-with-logits, mse and the entropy loss are NaN over a NaN, mse is +Inf over +Inf", async () => {
    const x = d.input("x", [2], "f32") as F32;
    const xInf = d.input("xInf", [2], "f32") as F32;
    const logits = d.input("logits", [1, 3, 1, 2], "f32") as F32<4>;
    const bce = d.losses.bceWithLogits(x, 0);
    const mse = d.losses.mse(x, 0);
    const p = program({
      bce,
      bceDx: d.grad(bce, [x])[0]!,
      // +Inf with target 1: (1 - z) x + ... is NaN in PyTorch, relu(x) - x z here: Inf - Inf.
      bceInf: d.losses.bceWithLogits(xInf, 1),
      mse,
      mseDx: d.grad(mse, [x])[0]!,
      mseInf: d.losses.mse(xInf, 0),
      entropy: d.losses.entropyLoss(d.softmax(logits, 1)),
    });
    const data = new Map([["x", [NaN_, 0.5]], ["xInf", [Inf, 0.5]], ["logits", logitsWith(NaN_)]]);
    await expectTorch(p, data, {
      bce: [NaN_],
      bceDx: [NaN_, 0.3112296760082245],
      bceInf: [NaN_],
      mse: [NaN_],
      mseDx: [NaN_, 0.5],
      mseInf: [Inf],
      entropy: [NaN_],
    });
  });
});

describe("one NaN weight reaches the loss on the GPU", () => {
  it("conv + train-mode batchnorm + relu + maxpool + cross-entropy with one NaN in the conv weight: the loss and every weight gradient are NaN", async () => {
    // As PyTorch: the NaN channel's batch statistics are NaN, so is the whole channel, then
    // every pixel's softmax, so the loss, and every gradient through the softmax.
    const x = d.input("x", [2, 3, 7, 7], "f32") as F32<4>;
    const w = d.input("conv1.weight", [4, 3, 3, 3], "f32") as F32<4>;
    const gamma = d.input("bn1.weight", [4], "f32") as F32<1>;
    const beta = d.input("bn1.bias", [4], "f32") as F32<1>;
    const labels = d.input("labels", [2, 4, 4], "i32") as I32;
    const h = d.relu(d.batchNormTrain(d.conv2d(x, w, undefined, { padding: 1 }), gamma, beta));
    const loss = d.losses.crossEntropy(d.maxPool2d(h, { kernel: 3, stride: 2, padding: 1, ceilMode: true }), labels);
    const [dw, dgamma] = d.grad(loss, [w, gamma]);
    const p = program({ loss, dw: dw!, dgamma: dgamma! });
    const r = rng(3);
    const weights = uniformF32(4 * 27, r);
    const data = new Map<string, ArrayLike<number>>([
      ["x", uniformF32(2 * 3 * 49, r)],
      ["bn1.weight", uniformF32(4, r, 0.5, 1.5)],
      ["bn1.bias", uniformF32(4, r)],
      ["labels", uniformInts(32, r, 0, 3)],
    ]);
    // Finite first (the same program, so NaN is not a symptom of a broken one).
    const finite = await everyPath(p, new Map([...data, ["conv1.weight", weights]]));
    expect(finite.filter((run) => !Number.isFinite(run.outputs.get("loss")![0]!)).map((run) => run.label)).toEqual([]);
    const poisoned = Float32Array.from(weights);
    poisoned[40] = NaN_; // out-channel 1, in-channel 1, the centre tap
    await expectTorch(p, new Map([...data, ["conv1.weight", poisoned]]), {
      loss: [NaN_],
      dw: new Array<number>(4 * 27).fill(NaN_),
      dgamma: new Array<number>(4).fill(NaN_),
    });
  });
});
