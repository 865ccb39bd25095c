// The fusion rules of fusion.ts (M1-M4: what is materialised; E1: epilogue fusion; R1:
// reduction groups; S1: sibling fusion) on tiny graphs, after canonicalisation as compileProgram runs them.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Tensor } from "../dsl/index";
import { canonicalize } from "./canonical";
import { planFusion } from "./fusion";

const x = () => d.input("x", [1, 3, 8, 8], "f32") as F32<4>;
const w = (name = "w", o = 4, c = 3) => d.input(name, [o, c, 3, 3], "f32", "param") as F32<4>;
const conv = (t: F32<4>, name = "w", o = 4) => d.conv2d(t, w(name, o, t.shape[1]), undefined, { padding: 1 });

function plan(roots: readonly Tensor[]) {
  const canon = canonicalize(roots);
  const fusion = planFusion(canon);
  /** One line per kernel: its root's op, and the anchor it is built around (if any). */
  const kernels = fusion.kernels.map(
    (k) =>
      `${k.root.node.op}${k.anchor && k.anchor !== k.root ? ` <- ${k.anchor.node.op}` : ""}${k.siblings ? ` + ${k.siblings.map((t) => t.node.op).join(" + ")}` : ""}` +
      `${k.reductions ? ` then ${k.reductions.map((m) => m.root.node.op).join(" then ")}` : ""}`,
  );
  const materializedOps = fusion.order.filter((t) => fusion.materialized.has(t.id) && t.node.op !== "input").map((t) => t.node.op);
  return { canon, fusion, kernels, materializedOps };
}

describe("planFusion", () => {
  it("E1: relu of a convolution is one kernel, the conv template with a relu epilogue", () => {
    const c = conv(x());
    const { kernels, fusion } = plan([d.relu(c)]);
    expect(kernels).toEqual(["relu <- conv2d"]);
    expect(fusion.fusedAnchors.has(c.id)).toBe(true);
    expect(fusion.materialized.has(c.id)).toBe(false);
  });

  it("E1: conv + bias + eval-mode BN + residual add + ReLU is one kernel", () => {
    const input = x();
    const c = d.conv2d(input, w(), d.input("b", [4], "f32", "param") as F32<1>, { padding: 1 });
    const vec = (n: string) => d.input(n, [4], "f32", "state") as F32<1>;
    const bn = d.batchNormEval(c, vec("g"), vec("beta"), vec("m"), vec("v"));
    const residual = d.input("r", [1, 4, 8, 8], "f32") as F32<4>;
    expect(plan([d.relu(d.add(bn, residual))]).kernels).toEqual(["relu <- conv2d"]);
  });

  it("E1: the sum of two convolutions fuses the later one and reads the other from its buffer", () => {
    const input = x();
    const a = conv(input, "wa");
    const b = conv(input, "wb");
    const { kernels, fusion } = plan([d.add(a, b)]);
    expect(kernels).toEqual(["conv2d", "add <- conv2d"]);
    const position = (t: Tensor) => fusion.order.findIndex((o) => o.id === t.id);
    const fused = [...fusion.fusedAnchors].map((id) => fusion.order.find((t) => t.id === id)!);
    expect(fused).toHaveLength(1);
    expect(position(fused[0]!)).toBe(Math.max(position(a), position(b)));
    expect(fusion.materialized.has(position(a) < position(b) ? a.id : b.id)).toBe(true);
  });

  it("E1 does not fuse an anchor that has another reader", () => {
    const c = conv(x());
    const { kernels } = plan([d.relu(c), d.add(c, 1)]);
    // (The two readers, roots of one shape reading only the stored conv, then share one
    // pointwise kernel: S1.)
    expect(kernels).toEqual(["conv2d", "relu + add"]);
  });

  it("E1 does not fuse through a view (the anchor would be read at another index)", () => {
    const c = conv(x());
    expect(plan([d.relu(d.permute(c, [0, 1, 3, 2]))]).kernels).toEqual(["conv2d", "relu"]);
  });

  it("M1: a root that is only a view of an input still gets its own kernel", () => {
    const { kernels } = plan([d.permute(x(), [0, 2, 3, 1])]);
    expect(kernels).toEqual(["permute"]);
  });

  it("M3: an inlined expression read by a convolution is stored first", () => {
    const { kernels, materializedOps } = plan([conv(d.relu(d.mul(x(), 2)))]);
    expect(kernels).toEqual(["relu", "conv2d"]);
    expect(materializedOps).toEqual(["relu", "conv2d"]);
  });

  it("M4: an expression over more than three buffers read by two kernels is stored once", () => {
    const [a, b, c, e] = ["a", "b", "c", "e"].map((n) => d.input(n, [2, 3], "f32") as F32<2>) as [F32<2>, F32<2>, F32<2>, F32<2>];
    const wide = d.add(d.add(a, b), d.add(c, e));
    const { materializedOps } = plan([d.exp(wide), d.log(wide)]);
    expect(materializedOps).toEqual(["add", "exp", "log"]);
  });

  it("M4: a chain of more than six ops read by two kernels is stored once", () => {
    let chain: F32 = d.input("a", [2, 3], "f32") as F32<2>;
    for (let i = 0; i < 7; i++) chain = d.mul(d.exp(chain), 0.5);
    const { materializedOps } = plan([d.neg(chain), d.abs(chain)]);
    expect(materializedOps).toEqual(["mul", "neg", "abs"]);
  });

  it("M4: a small expression read by two kernels is recomputed by each rather than stored", () => {
    const e = d.exp(d.mul(x(), 2));
    const { materializedOps } = plan([d.add(e, 1), d.mul(e, 3)]);
    expect(materializedOps).toEqual(["add", "mul"]);
  });

  it("M4: a scalar read by several kernels is computed once", () => {
    const lr = d.mul(d.input("lr", [], "f32") as F32<0>, 10);
    // Different ranks: each use reshapes the scalar differently, so the scalar has two readers.
    const [p, q] = [d.input("p", [4], "f32") as F32<1>, d.input("q", [2, 3], "f32") as F32<2>];
    const { materializedOps } = plan([d.sub(p, d.mul(p, lr)), d.sub(q, d.mul(q, lr))]);
    expect(materializedOps).toContain("mul");
    expect(materializedOps.filter((op) => op === "mul")).toHaveLength(1);
  });

  it("M4: a view of a buffer read by two kernels is cheap and stays inline", () => {
    const v = d.permute(x(), [0, 1, 3, 2]);
    const { materializedOps } = plan([d.add(v, 1), d.mul(v, 2)]);
    expect(materializedOps).toEqual(["add", "mul"]);
  });

  it("M4: a resize of a buffer is never stored, even with three readers", () => {
    const logits = d.input("logits", [1, 5, 4, 4], "f32") as F32<4>;
    const up = d.resize(logits, [16, 16], { alignCorners: true });
    const labels = d.input("labels", [1, 16, 16], "i32");
    const { materializedOps } = plan([d.softmaxCrossEntropy(up, labels), d.softmax(up, 1), d.add(up, 1)]);
    expect(materializedOps).not.toContain("resize");
  });

  it("M4: a resize of an expression over more than three buffers, read twice, is stored", () => {
    const [a, b, c, e] = ["a", "b", "c", "e"].map((n) => d.input(n, [1, 2, 4, 4], "f32") as F32<4>) as [F32<4>, F32<4>, F32<4>, F32<4>];
    const up = d.resize(d.add(d.add(a, b), d.add(c, e)), [16, 16], { alignCorners: false });
    const { materializedOps } = plan([d.exp(up), d.log(up)]);
    expect(materializedOps).toContain("resize");
  });

  it("input-gradient fan-in: the gradient of a value read by two convs is one input-gradient kernel that adds the other and applies the ReLU mask", () => {
    const input = x();
    const h = d.relu(conv(input, "w0"));
    const y1 = conv(h, "w1");
    const y2 = conv(h, "w2", 5);
    const [g1, g2] = [d.input("g1", y1.shape, "f32") as F32<4>, d.input("g2", y2.shape, "f32") as F32<4>];
    const [dx] = d.vjp([y1, y2], [g1, g2], [input]);
    const { kernels } = plan([dx!]);
    // The forward conv is stored (the mask reads it: h > 0 is relu(conv) > 0, recomputed).
    // h's cotangent, the two input-gradients summed and masked (where(h > 0, ., 0)), is stored
    // once for w0's input-gradient by one kernel: the later input-gradient's, which reads the
    // earlier one from its buffer.
    expect(kernels).toEqual(["conv2d", "conv2dInputGrad", "where <- conv2dInputGrad", "conv2dInputGrad"]);
  });
  it("S1: roots of one shape whose inputs are ready share a pointwise kernel (an Adam update)", () => {
    const g = d.input("g", [4, 3], "f32") as F32<2>;
    const m = d.input("m", [4, 3], "f32", "state") as F32<2>;
    const v = d.input("v", [4, 3], "f32", "state") as F32<2>;
    const p = d.input("p", [4, 3], "f32", "param") as F32<2>;
    const m1 = d.add(d.mul(m, 0.9), d.mul(g, 0.1));
    const v1 = d.add(d.mul(v, 0.999), d.mul(d.mul(g, g), 0.001));
    // p1 reads m1 and v1 at its own index: it joins too, taking them from registers.
    const p1 = d.sub(p, d.div(d.mul(m1, 0.01), d.add(d.sqrt(v1), 1e-8)));
    expect(plan([m1, v1]).kernels).toEqual(["add + add"]);
    expect(plan([m1, v1, p1]).kernels).toEqual(["add + add + sub"]);
  });

  it("S1: no sharing when a root reads another at a different index, or reads a later value, or differs in shape", () => {
    const g = d.input("g", [3, 3], "f32") as F32<2>;
    const m = d.input("m", [3, 3], "f32", "state") as F32<2>;
    const m1 = d.add(d.mul(m, 0.9), d.mul(g, 0.1));
    // q reads m1 transposed: at another element than the one the kernel holds
    const q = d.add(g, d.permute(m1, [1, 0]));
    expect(plan([m1, q]).kernels).toEqual(["add", "add"]);
    // s reads a reduction scheduled after m1's kernel
    const total = d.sum(d.mul(g, g), [0], { keepdims: true });
    expect(plan([m1, d.mul(g, total)]).kernels).toEqual(["add", "sum", "mul"]);
    expect(plan([m1, d.sum(g, [0])]).kernels).toEqual(["add", "sum", "reshape"]);
  });

  it("R1: BatchNorm's mean and variance are one reduction kernel, and so are its backward's sum(dy) and sum(dy * xhat)", () => {
    const input = d.input("x", [1, 3, 16, 16], "f32") as F32<4>;
    const vec = (n: string) => d.input(n, [3], "f32", "param") as F32<1>;
    const y = d.batchNormTrain(input, vec("g"), vec("b"));
    const dy = d.input("dy", [1, 3, 16, 16], "f32") as F32<4>;
    const [dx] = d.vjp([y], [dy], [input]);
    // dy is a program input here, ready from the start, so all four share one kernel; in a
    // training step it comes from the later layers, and the backward's pair is a second kernel.
    expect(plan([y, dx!]).kernels.filter((k) => k.includes("sum"))).toEqual(["sum then sum then sum then sum"]);
    const late = d.mul(d.input("dz", [1, 3, 16, 16], "f32") as F32<4>, d.sum(d.relu(y), [0, 1, 2, 3], { keepdims: true }));
    const [dxLate] = d.vjp([y], [late], [input]);
    expect(plan([y, dxLate!]).kernels.filter((k) => k.includes("sum then"))).toEqual(["sum then sum", "sum then sum"]);
  });

  it("R1: no group when the later reduction reads the earlier one at another index, over other axes, or before it is ready", () => {
    const g = d.input("g", [4, 6], "f32") as F32<2>;
    const rows = d.sum(g, [1], { keepdims: true });
    // Over the same axes, but reading the row sums rotated by one row (another index).
    const rotated = d.concat([d.slice(rows, [1, 0], [4, 1]), d.slice(rows, [0, 0], [1, 1])], 0);
    const shifted = d.sum(d.mul(g, d.broadcastTo(rotated, [4, 6])), [1], { keepdims: true });
    expect(plan([rows, shifted]).kernels).toEqual(["sum", "sum"]);
    // Over other axes.
    expect(plan([rows, d.sum(g, [0], { keepdims: true })]).kernels).toEqual(["sum", "sum"]);
    // Reading a value only computed after the earlier reduction: column sums that need it.
    const columns = d.sum(d.mul(g, d.broadcastTo(rows, [4, 6])), [0], { keepdims: true });
    const later = d.sum(d.mul(g, d.broadcastTo(columns, [4, 6])), [1], { keepdims: true });
    expect(plan([rows, later]).kernels).toEqual(["sum", "sum", "sum"]);
    // The same loop reading the earlier result at its own index does group.
    const centred = d.sum(d.sub(g, d.broadcastTo(rows, [4, 6])), [1], { keepdims: true });
    expect(plan([rows, centred]).kernels).toEqual(["sum then sum"]);
  });
});
