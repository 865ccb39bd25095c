// NaN in the reference interpreter and the derivative table, against PyTorch 1.13 (values
// computed once with Debian's python3-torch and written out here): a NaN input reaches the
// output of every op whose PyTorch counterpart propagates it, in float64 and float32, and the
// VJP rules give a NaN input the gradient PyTorch gives it.

import { describe, expect, it } from "vitest";
import { type F32, type I32 } from "./ir";
import { evaluate } from "./interpret";
import { vjp } from "./grad";
import * as op from "./ops";

const NaN_ = Number.NaN;
const Inf = Number.POSITIVE_INFINITY;

/** Values equal to PyTorch's, NaN to NaN, within 1e-6 (the float32 runs). */
function same(actual: ArrayLike<number>, expected: readonly number[]): boolean {
  return (
    actual.length === expected.length &&
    expected.every((e, i) => (Number.isNaN(e) ? Number.isNaN(actual[i]!) : actual[i] === e || Math.abs(actual[i]! - e) <= 1e-6 * (1 + Math.abs(e))))
  );
}

function values(t: F32, feeds: Record<string, readonly number[]>, precision: "f64" | "f32"): number[] {
  return Array.from(evaluate([t], feeds, precision)[0]!.data);
}

const X = [NaN_, -1, 2, Inf, -Inf, 0, -0.5, 0.25];
const Y = [1, NaN_, NaN_, 1, 0, NaN_, -1, 0.5];
const x = op.input("x", [8], "f32") as F32;
const y = op.input("y", [8], "f32") as F32;
const ones = op.input("ones", [8], "f32") as F32;
const feeds = { x: X, y: Y, ones: new Array<number>(8).fill(1) };

describe.each(["f64", "f32"] as const)("the interpreter propagates NaN as PyTorch (%s)", (precision) => {
  it("relu(NaN) is NaN (PyTorch's x <= 0 ? 0 : x), and relu(+-Inf) is Inf, 0", () => {
    expect(values(op.relu(x), feeds, precision)).toEqual([NaN_, 0, 2, Inf, 0, 0, 0, 0.25]);
  });

  it("leakyRelu, maximum, minimum propagate NaN; sign(NaN) is 0", () => {
    expect(same(values(op.leakyRelu(x, 0.2), feeds, precision), [NaN_, -0.2, 2, Inf, -Inf, 0, -0.1, 0.25])).toBe(true);
    expect(values(op.maximum(x, y), feeds, precision)).toEqual([NaN_, NaN_, NaN_, Inf, 0, NaN_, -0.5, 0.5]);
    expect(values(op.minimum(x, y), feeds, precision)).toEqual([NaN_, NaN_, NaN_, 1, -Inf, NaN_, -1, 0.25]);
    expect(values(op.sign(x), feeds, precision)).toEqual([0, -1, 1, 1, -1, 0, -1, 1]);
  });

  it("max pooling: NaN over a window holding a NaN; the gradient goes to the window's last NaN", () => {
    const p = op.input("p", [1, 1, 3, 3], "f32") as F32<4>;
    const pooled = op.maxPool2d(p, { kernel: 2, stride: 1 });
    const dy = op.input("dy", [1, 1, 2, 2], "f32") as F32<4>;
    const [dx] = vjp([pooled], [dy], [p]);
    const pf = { p: [1, NaN_, 3, NaN_, 0, 2, 5, 1, NaN_], dy: [1, 1, 1, 1] };
    expect(values(pooled, pf, precision)).toEqual([NaN_, NaN_, NaN_, NaN_]);
    expect(values(dx!, pf, precision)).toEqual([0, 1, 0, 2, 0, 0, 0, 0, 1]);
  });

  it("softmax and cross-entropy over a NaN logit are NaN", () => {
    const logits = op.input("logits", [1, 3, 1, 2], "f32") as F32<4>;
    const labels = op.input("labels", [1, 1, 2], "i32") as I32;
    const lf = { logits: [NaN_, 1, 1, 2, 2, 3], labels: [0, 1] };
    expect(same(values(op.softmax(logits, 1), lf, precision), [NaN_, 0.09003057330846786, NaN_, 0.2447284758090973, NaN_, 0.6652409434318542])).toBe(true);
    expect(values(op.softmaxCrossEntropy(logits, labels), lf, precision)).toEqual([NaN_]);
  });
});

describe("the VJP rules give a NaN input PyTorch's gradient", () => {
  const dx = (out: F32, wrt: F32) => values(vjp([out], [ones], [wrt])[0]!, feeds, "f64");

  it("relu passes dy where x is NaN (threshold_backward: x <= 0 ? 0 : dy)", () => {
    expect(dx(op.relu(x), x)).toEqual([1, 0, 1, 1, 0, 0, 0, 1]);
  });

  it("maximum and minimum pass dy to both operands when either is NaN, ties to the first", () => {
    expect(dx(op.maximum(x, y), x)).toEqual([1, 1, 1, 1, 0, 1, 1, 0]);
    expect(dx(op.maximum(x, y), y)).toEqual([1, 1, 1, 0, 1, 1, 0, 1]);
    expect(dx(op.minimum(x, y), x)).toEqual([1, 1, 1, 0, 1, 1, 0, 1]);
    expect(dx(op.minimum(x, y), y)).toEqual([1, 1, 1, 1, 0, 1, 1, 0]);
  });

  it("amax: a row whose maximum is NaN gets NaN everywhere (dy / 0 ties * mask)", () => {
    const m = op.input("m", [2, 3], "f32") as F32<2>;
    const g = op.input("g", [2], "f32") as F32<1>;
    const [dm] = vjp([op.max(m, [1])], [g], [m]);
    expect(values(dm!, { m: [1, NaN_, 3, 2, 2, 1], g: [1, 1] }, "f64")).toEqual([NaN_, NaN_, NaN_, 0.5, 0.5, 0]);
  });
});
