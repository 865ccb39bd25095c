// Differential tests of the fused patterns that matter for AdaptSegNet: each is checked for
// agreement with the float32 interpreter AND for the fusion it is about (which kernels run),
// so a change that still computes the right values but stops fusing fails here.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, I32, Tensor } from "../dsl/index";
import { numel } from "../dsl/index";
import { canonicalize } from "./canonical";
import { planFusion } from "./fusion";
import { program } from "./testing/cases";
import { differential, kernelCounts, kernelPlans, rng, uniformF32 } from "./testing/differential";

/** Random f32 data for `inputs` (names and shapes from the nodes). */
function dataFor(inputs: readonly Tensor[], seed: number, ranges: Record<string, readonly [number, number]> = {}) {
  const r = rng(seed);
  return new Map(
    inputs.map((t) => {
      const name = (t.node.attrs as { name: string }).name;
      const [lo, hi] = ranges[name] ?? [-1, 1];
      return [name, uniformF32(numel(t.shape), r, lo, hi)];
    }),
  );
}

const TOL = { rtol: 1e-4, atol: 1e-5 };

describe("fused patterns on the GPU agree with the float32 interpreter and stay fused", () => {
  it("conv + bias + eval-mode BN + residual add + ReLU: one conv2d kernel", async () => {
    const x = d.input("x", [1, 5, 9, 7], "f32") as F32<4>;
    const w = d.input("w", [6, 5, 3, 3], "f32") as F32<4>;
    const b = d.input("b", [6], "f32") as F32<1>;
    const [g, beta, mean, variance] = ["g", "beta", "mean", "var"].map((n) => d.input(n, [6], "f32") as F32<1>) as [F32<1>, F32<1>, F32<1>, F32<1>];
    const residual = d.input("residual", [1, 6, 5, 4], "f32") as F32<4>;
    const conv = d.conv2d(x, w, b, { stride: 2, padding: 1 });
    const y = d.relu(d.add(d.batchNormEval(conv, g, beta, mean, variance), residual));
    const p = program({ y });
    const data = dataFor([x, w, b, g, beta, mean, variance, residual], 61, { var: [0.2, 2] });
    const res = await differential(p, new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
    expect(kernelCounts(kernelPlans(p).get("p")!)).toEqual({ conv2d: 1 });
  });

  it("input-gradient of a ReLU output read by two convs: the fan-in sum and the mask fuse into one input-gradient kernel", async () => {
    const x = d.input("x", [1, 3, 8, 7], "f32") as F32<4>;
    const [w0, w1, w2] = [
      d.input("w0", [5, 3, 3, 3], "f32") as F32<4>,
      d.input("w1", [4, 5, 3, 3], "f32") as F32<4>,
      d.input("w2", [6, 5, 1, 1], "f32") as F32<4>,
    ];
    const h = d.relu(d.conv2d(x, w0, undefined, { padding: 1 }));
    const y1 = d.conv2d(h, w1, undefined, { padding: 2, dilation: 2 });
    const y2 = d.conv2d(h, w2);
    const g1 = d.input("g1", y1.shape, "f32") as F32<4>;
    const g2 = d.input("g2", y2.shape, "f32") as F32<4>;
    const [dx, dw0] = d.vjp([y1, y2], [g1, g2], [x, w0]);
    const p = program({ dx: dx!, dw0: dw0! });
    const res = await differential(p, new Map(), dataFor([x, w0, w1, w2, g1, g2], 62), (n) => (n === "dw0" ? { rtol: 1e-3, atol: 1e-4 } : TOL));
    expect(res.mismatches).toEqual([]);
    // conv0 forward (for the mask); the two input-gradients into h, the later one applying
    // the sum and the ReLU mask in its epilogue; conv0's input- and weight-gradients. No
    // pointwise kernel: neither the sum nor the mask is a kernel of its own.
    expect(kernelCounts(kernelPlans(p).get("p")!)).toEqual({ conv2d: 1, conv2dInputGrad: 3, conv2dWeightGrad: 1 });
  });

  it("cross-entropy on upsampled logits: the loss and its gradient read the resize inline, never storing the upsampled logits", async () => {
    const logits = d.input("logits", [1, 5, 7, 9], "f32") as F32<4>;
    const labels = d.input("labels", [1, 25, 31], "i32") as I32<3>;
    const up = d.resize(logits, [25, 31], { alignCorners: true });
    const loss = d.softmaxCrossEntropy(up, labels);
    const [grad] = d.grad(loss, [logits]);
    const p = program({ loss, grad: grad! });
    const r = rng(63);
    const data = new Map<string, ArrayLike<number>>([
      ["logits", uniformF32(5 * 7 * 9, r, -3, 3)],
      ["labels", Int32Array.from({ length: 25 * 31 }, () => [0, 1, 2, 3, 4, 255][Math.floor(r() * 6)]!)],
    ]);
    const res = await differential(p, new Map(), data, TOL);
    expect(res.mismatches).toEqual([]);
    const fusion = planFusion(canonicalize([loss, grad!]));
    const stored = fusion.order.filter((t) => fusion.materialized.has(t.id)).map((t) => t.node.op);
    expect(stored).not.toContain("resize");
    // The loss; the valid-label count; the softmax with the gradient as its epilogue; the
    // resize adjoint. The valid-label mask is cheap (a label load, three comparisons and views),
    // so the count and the gradient each recompute it instead of reading it from memory.
    expect(kernelCounts(kernelPlans(p).get("p")!)).toEqual({ softmaxCrossEntropy: 1, sum: 1, softmax: 1, resizeGrad: 1 });
  });
});
