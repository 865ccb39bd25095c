// hardtanh and ReLU6 against PyTorch 1.13 (float64): torch.nn.functional.hardtanh / relu6 and
// their gradient for the cotangent g = 1, 2, ..., 14, at points on both sides of each bound, on
// the bounds themselves (where PyTorch's hardtanh_backward gives 0), at the infinities and at
// NaN (value NaN, gradient passed through). Values printed by python3-torch, copied as literals.

import { describe, expect, it } from "vitest";
import { type F32, evaluate, grad, input, nn } from "../index";
import * as op from "../ops";

const X = [-7.5, -1.0, -1e-9, 0.0, 1e-9, 0.5, 3.0, 5.999999, 6.0, 6.000001, 9.25, NaN, Infinity, -Infinity];
const G = X.map((_, i) => i + 1);
const TORCH_RELU6 = [0, 0, 0, 0, 1e-9, 0.5, 3, 5.999999, 6, 6, 6, NaN, 6, 0];
const TORCH_RELU6_GRAD = [0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 12, 0, 0];
const TORCH_HARDTANH = [-1, -1, -1e-9, 0, 1e-9, 0.5, 1, 1, 1, 1, 1, NaN, 1, -1];
const TORCH_HARDTANH_GRAD = [0, 0, 3, 4, 5, 6, 0, 0, 0, 0, 0, 12, 0, 0];

const x = input("x", [X.length], "f32") as F32<1>;
const g = input("g", [X.length], "f32") as F32<1>;
const feeds = { x: X, g: G };

/** Value and gradient of sum(g * f(x)) with respect to x. */
function run(f: (t: F32<1>) => F32<1>): { y: number[]; dx: number[] } {
  const y = f(x);
  const [dx] = grad(op.sum(op.mul(y, g)), [x]);
  const [yv, dv] = evaluate([y, dx!], feeds);
  return { y: Array.from(yv!.data), dx: Array.from(dv!.data) };
}

describe("hardtanh matches PyTorch in float64", () => {
  it("relu6 = hardtanh(x, 0, 6): values, NaN kept", () => {
    const { y } = run(nn.relu6);
    expect(y).toEqual(TORCH_RELU6);
  });

  it("relu6's gradient: 0 at and beyond the bounds 0 and 6, passed through at NaN", () => {
    expect(run(nn.relu6).dx).toEqual(TORCH_RELU6_GRAD);
  });

  it("hardtanh with PyTorch's default bounds -1 and 1", () => {
    const { y, dx } = run((t) => op.hardtanh(t));
    expect(y).toEqual(TORCH_HARDTANH);
    expect(dx).toEqual(TORCH_HARDTANH_GRAD);
  });

  it("refuses min above max and integer operands, naming the op", () => {
    expect(() => op.hardtanh(x, 6, 0)).toThrow(/hardtanh.*min 6 must not exceed max 0/);
    expect(() => op.hardtanh(input("i", [2], "i32") as never, 0, 6)).toThrow(/hardtanh: x has dtype i32, expected f32/);
  });
});
