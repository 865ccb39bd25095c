// erf and GELU against PyTorch 1.13 (float64): torch.erf, torch.nn.functional.gelu (exact, the
// default) and its gradient, at points on both sides of the reference's switch at |x| = 2.5,
// near 0, and in both tails. Values printed by python3-torch, copied here as literals.

import { describe, expect, it } from "vitest";
import { type F32, evaluate, grad, input } from "../index";
import * as op from "../ops";

const X = [-6.0, -3.2, -2.5, -1.0, -0.3, -1e-4, 0.0, 1e-6, 0.25, 0.7, 1.5, 2.49, 2.51, 4.0, 7.5];
const TORCH_ERF = [
  -1.0, -0.9999939742388483, -0.999593047982555, -0.8427007929497149, -0.3286267594591274, -0.00011283791633342487, 0.0,
  1.1283791670951364e-6, 0.27632639016823696, 0.6778011938374184, 0.9661051464753108, 0.9995707121322661, 0.9996142945182758,
  0.9999999845827421, 1.0,
];
const TORCH_GELU = [
  -5.919525869479969e-9, -0.0021988414013307533, -0.015524163314440398, -0.15865525393145702, -0.1146265733433142,
  -4.9996010577202634e-5, 0.0, 5.000003989422804e-7, 0.14967658142073093, 0.5306254434438489, 1.399789198096713,
  2.4740959846352917, 2.494848239218164, 3.9998733150326675, 7.49999999999976,
];
const TORCH_GELU_GRAD = [
  -3.546870945402639e-8, -0.006941944306771629, -0.03761108590814519, -0.08331547058768635, 0.26767223317289013,
  0.49992021154418564, 0.5, 0.5000007978845609, 0.695373354883636, 0.9766141011336599, 1.1274691922299795,
  1.0383609662906155, 1.0368710647679047, 1.0005036496612265, 1.0000000000017937,
];

/**
 * Relative differences above 1e-12: twelve digits. GELU's negative tail is x/2 (1 + erf(x/sqrt 2))
 * with 1 + erf cancelling to about 1e-9 at x = -6, so a few ulps of erf become ~1e-13 there.
 */
const close = (a: ArrayLike<number>, b: readonly number[]) =>
  b.map((v, i) => Math.abs(a[i]! - v) / Math.max(Math.abs(v), 1e-300)).filter((rel) => rel > 1e-12);

describe("erf and gelu match PyTorch in float64", () => {
  const x = input("x", [X.length], "f32") as F32<1>;

  it("erf", () => {
    expect(close(evaluate([op.erf(x)], { x: X })[0]!.data, TORCH_ERF)).toEqual([]);
  });

  it("gelu (exact, PyTorch's default)", () => {
    expect(close(evaluate([op.gelu(x)], { x: X })[0]!.data, TORCH_GELU)).toEqual([]);
  });

  it("the gradient of sum(gelu(x))", () => {
    const [dx] = grad(op.sum(op.gelu(x)), [x]);
    expect(close(evaluate([dx!], { x: X })[0]!.data, TORCH_GELU_GRAD)).toEqual([]);
  });

  it("erf is odd and saturates; NaN stays NaN", () => {
    const [y] = evaluate([op.erf(x)], { x: X });
    const [minus] = evaluate([op.erf(x)], { x: X.map((v) => -v) });
    expect(Array.from(minus!.data)).toEqual(Array.from(y!.data, (v) => (v === 0 ? 0 : -v)));
    const [nan] = evaluate([op.erf(input("n", [2], "f32"))], { n: [NaN, Infinity] });
    expect(Number.isNaN(nan!.data[0])).toBe(true);
    expect(nan!.data[1]).toBe(1);
  });

  it("refuses i32 operands, naming the op", () => {
    expect(() => op.gelu(input("i", [2], "i32") as never)).toThrow(/gelu: x has dtype i32, expected f32/);
  });
});
