// Elementwise unary ops: y[i] = f(x[i]).

import type { Bool, DType, F32, Tensor } from "../ir";
import { fail, node, requireDType, wrapI32 } from "./build";
import { type Dist, type Evaluate, NONDIFF, type OpDef, awayFromZero, standard, uniform } from "./def";
// Cycles between family files are safe: other families' builders are only called inside rules.
import { add, div, ge, gt, le, mul, or, sub, where } from "./binary";

export interface UnaryAttrs {
  neg: {};
  abs: {};
  sign: {};
  exp: {};
  log: {};
  log1p: {};
  sqrt: {};
  rsqrt: {};
  relu: {};
  leakyRelu: { readonly slope: number };
  hardtanh: { readonly min: number; readonly max: number };
  sigmoid: {};
  tanh: {};
  erf: {};
  gelu: {};
  not: {};
  cast: { readonly to: DType };
  stopGradient: {};
}

type Plain = Exclude<keyof UnaryAttrs, "leakyRelu" | "hardtanh" | "not" | "cast" | "stopGradient">;

function unaryOp<Allowed extends DType>(op: Plain, allowed: readonly Allowed[]) {
  return <R extends number, D extends Allowed>(x: Tensor<R, D>): Tensor<R, D> => {
    requireDType(op, "x", x, allowed);
    return node({ op, inputs: [x], attrs: {} }, x.shape, x.dtype);
  };
}

/** -x */
export const neg = unaryOp("neg", ["f32", "i32"]);
/** |x|; its derivative is sign(x) (0 at 0, as PyTorch) */
export const abs = unaryOp("abs", ["f32", "i32"]);
/** -1, 0 or 1; derivative 0 */
export const sign = unaryOp("sign", ["f32", "i32"]);
/** e^x */
export const exp = unaryOp("exp", ["f32"]);
/** ln x */
export const log = unaryOp("log", ["f32"]);
/** ln(1 + x), accurate for small x */
export const log1p = unaryOp("log1p", ["f32"]);
/** sqrt x */
export const sqrt = unaryOp("sqrt", ["f32"]);
/** 1 / sqrt x */
export const rsqrt = unaryOp("rsqrt", ["f32"]);
/** max(x, 0); derivative 1 where x > 0, else 0 */
export const relu = unaryOp("relu", ["f32"]);
/** 1 / (1 + e^-x) */
export const sigmoid = unaryOp("sigmoid", ["f32"]);
/** tanh x */
export const tanh = unaryOp("tanh", ["f32"]);
/** erf x = 2/sqrt(pi) * integral_0^x e^(-t^2) dt */
export const erf = unaryOp("erf", ["f32"]);
/** x * Phi(x) = x/2 (1 + erf(x / sqrt 2)): PyTorch's exact GELU (nn.GELU(), approximate='none') */
export const gelu = unaryOp("gelu", ["f32"]);

/** x if x > 0 else slope * x */
export function leakyRelu<R extends number>(x: F32<R>, slope: number): F32<R> {
  requireDType("leakyRelu", "x", x, ["f32"]);
  return node({ op: "leakyRelu", inputs: [x], attrs: { slope } }, x.shape, "f32");
}

/**
 * min(max(x, min), max), PyTorch's hardtanh (defaults -1, 1); NaN stays NaN. ReLU6 is
 * hardtanh(x, 0, 6) (MobileNetV2's activation; nn.relu6).
 */
export function hardtanh<R extends number>(x: F32<R>, min = -1, max = 1): F32<R> {
  requireDType("hardtanh", "x", x, ["f32"]);
  if (!(min <= max)) fail("hardtanh", [["x", x]], { min, max }, `min ${min} must not exceed max ${max}`);
  return node({ op: "hardtanh", inputs: [x], attrs: { min, max } }, x.shape, "f32");
}

export function not<R extends number>(x: Bool<R>): Bool<R> {
  requireDType("not", "x", x, ["bool"]);
  return node({ op: "not", inputs: [x], attrs: {} }, x.shape, "bool");
}

/** Converts dtype: f32 -> i32 truncates toward zero; bool -> number gives 0/1; number -> bool is x != 0. */
export function cast<R extends number, To extends DType>(x: Tensor<R>, to: To): Tensor<R, To> {
  if (x.dtype === to) return x as unknown as Tensor<R, To>;
  return node({ op: "cast", inputs: [x], attrs: { to } }, x.shape, to);
}

/** Identity in the forward pass; no gradient flows through it (PyTorch's detach). */
export function stopGradient<R extends number, D extends DType>(x: Tensor<R, D>): Tensor<R, D> {
  return node({ op: "stopGradient", inputs: [x], attrs: {} }, x.shape, x.dtype);
}

/** y[i] = f(x[i]); i32 results wrap as on the GPU. */
function pointwise1<K extends keyof UnaryAttrs>(f: (x: number, attrs: UnaryAttrs[K]) => number): Evaluate<K> {
  return (n, [x], out, _shape, dtype) => {
    const wrap = dtype === "i32" ? wrapI32 : (v: number) => v;
    const attrs = (n as { readonly attrs: unknown }).attrs as UnaryAttrs[K];
    for (let i = 0; i < out.length; i++) out[i] = wrap(f(x!.data[i]!, attrs));
  };
}

/**
 * erf in float64, the reference: the Maclaurin series 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
 * below 2.5 (its largest term is under e^(x^2) < 520, so rounding stays below 1e-13), and above
 * Laplace's continued fraction erfc x = e^(-x^2) / (sqrt(pi) (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))),
 * evaluated from depth 120 up, which has converged to double precision for x >= 2.5.
 */
function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    const z = a * a;
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= -z / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) <= 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let cf = a;
    for (let k = 120; k >= 1; k--) cf = a + k / 2 / cf;
    r = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * cf);
  }
  return x < 0 ? -r : r;
}

/**
 * erf in f32 for kernels. Below 0.5, the Maclaurin series to x^11 (the next term is under 3e-8
 * relative); above, Abramowitz and Stegun 7.1.26, 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5))))
 * e^(-x^2) with t = 1 / (1 + p |x|), absolute error under 1.5e-7 (relative, under 3e-7 there);
 * odd symmetry by select, which keeps NaN (NaN compares false, and every branch keeps it).
 */
const ERF_WGSL = `fn erf_(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.5f) {
    let z = x * x;
    return x * (1.1283791670955126f + z * (-0.3761263890318375f + z * (0.11283791670955126f + z * (-0.026866170645131252f + z * (0.005223977625442188f + z * -0.0008548327023450853f)))));
  }
  let t = 1.0f / (1.0f + 0.3275911f * a);
  let r = 1.0f - t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) * exp(-a * a);
  return select(r, -r, x < 0.0f);
}`;

const saturateI32 = (v: number): number => (Number.isNaN(v) ? 0 : Math.min(2147483647, Math.max(-2147483648, Math.trunc(v))));

function castExpr(a: string, from: DType, to: DType): string {
  if (from === to) return a;
  if (to === "bool") return from === "f32" ? `(${a} != 0.0f)` : `(${a} != 0i)`;
  if (from === "bool") return to === "f32" ? `select(0.0f, 1.0f, ${a})` : `select(0i, 1i, ${a})`;
  return `${to}(${a})`; // f32 -> i32 truncates toward zero, as the interpreter
}

const f = (t: Tensor) => t as F32;

/**
 * Odd tenths in [-7.9, 8.1]: 0.1 + 0.2k stays 0.1 (1e5 finite-difference steps) from every
 * integer and every even tenth, so hardtanh's gradient check stays off its kinks at the bounds
 * it is checked with (0 and 6, -1 and 1, -2 and 0.4).
 */
const HARDTANH_LATTICE: Dist = { kind: "lattice", step: 0.2, offset: 0.1, count: 40 };

export const UNARY_OPS = {
  // d(-x) = -dy
  neg: {
    evaluate: pointwise1((x) => -x),
    vjp: (_n, dy) => [neg(dy)],
    lowering: { kind: "elementwise", wgsl: (c) => `(-${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: standard },
  },
  // d|x| = sign(x) dy
  abs: {
    evaluate: pointwise1((x) => Math.abs(x)),
    vjp: (n, dy) => [mul(dy, sign(f(n.inputs[0]!)))],
    lowering: { kind: "elementwise", wgsl: (c) => `abs(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: awayFromZero() },
  },
  // PyTorch 1.13: (0 < x) - (x < 0), 0 for NaN, where WGSL's sign(NaN) is not defined.
  sign: {
    evaluate: pointwise1((x) => (x > 0 ? 1 : x < 0 ? -1 : 0)),
    vjp: NONDIFF,
    lowering: {
      kind: "elementwise",
      wgsl: (c) => (c.dtype === "f32" ? `(f32(${c.arg(0)} > 0.0f) - f32(${c.arg(0)} < 0.0f))` : `sign(${c.arg(0)})`),
    },
    gradcheck: { kind: "none" },
  },
  // d e^x = e^x dy
  exp: {
    evaluate: pointwise1((x) => Math.exp(x)),
    vjp: (_n, dy, y) => [mul(dy, f(y))],
    lowering: { kind: "elementwise", wgsl: (c) => `exp(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: standard },
  },
  // d ln x = dy / x
  log: {
    evaluate: pointwise1((x) => Math.log(x)),
    vjp: (n, dy) => [div(dy, f(n.inputs[0]!))],
    lowering: { kind: "elementwise", wgsl: (c) => `log(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: uniform(0.2, 3) },
  },
  // d ln(1+x) = dy / (1+x)
  log1p: {
    evaluate: pointwise1((x) => Math.log1p(x)),
    vjp: (n, dy) => [div(dy, add(f(n.inputs[0]!), 1))],
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        // log(1 + x) without cancellation for small x: log(u) * x / (u - 1) with u = 1 + x (Goldberg).
        c.define(
          "log1p",
          `fn log1p_(x: f32) -> f32 {
  let u = 1.0f + x;
  if (u == 1.0f) { return x; }
  return log(u) * x / (u - 1.0f);
}`,
        );
        return `log1p_(${x})`;
      },
    },
    gradcheck: { kind: "unary", dist: uniform(-0.5, 2) },
  },
  // d sqrt x = dy / (2 sqrt x)
  sqrt: {
    evaluate: pointwise1((x) => Math.sqrt(x)),
    vjp: (_n, dy, y) => [div(mul(dy, 0.5), f(y))],
    lowering: { kind: "elementwise", wgsl: (c) => `sqrt(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: uniform(0.2, 3) },
  },
  // d x^-1/2 = -1/2 x^-3/2 dy = -1/2 y^3 dy
  rsqrt: {
    evaluate: pointwise1((x) => 1 / Math.sqrt(x)),
    vjp: (_n, dy, y) => [mul(dy, mul(-0.5, mul(f(y), mul(f(y), f(y)))))],
    lowering: { kind: "elementwise", wgsl: (c) => `inverseSqrt(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: uniform(0.2, 3) },
  },
  // PyTorch's threshold: x <= 0 ? 0 : x, so relu(NaN) = NaN (x > 0 ? x : 0 would give 0); the
  // WGSL helper keeps the NaN too (HELPERS.relu). ReLU passes dy except where y <= 0
  // (PyTorch's threshold_backward): where x is NaN too, as PyTorch. y <= 0 exactly when
  // x <= 0, and y is what backward keeps.
  relu: {
    evaluate: pointwise1((x) => (x <= 0 ? 0 : x)),
    vjp: (_n, dy, y) => [where(le(f(y), 0), 0, dy)],
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        c.helper("relu");
        return `relu_(${x})`;
      },
    },
    gradcheck: { kind: "unary", dist: awayFromZero() },
  },
  // PyTorch's x > 0 ? x : x * slope; a NaN x gives x * slope, NaN. For slope > 0, y > 0
  // exactly when x > 0, so the mask can come from the saved output. Written as
  // dy * slope-or-1 so dy is read once: the input-gradient producing dy can then take the
  // whole rule as its epilogue.
  leakyRelu: {
    evaluate: pointwise1((x, a) => (x > 0 ? x : a.slope * x)),
    vjp: (n, dy, y) => [
      mul(dy, add(mul(cast(gt(n.attrs.slope > 0 ? f(y) : f(n.inputs[0]!), 0), "f32"), 1 - n.attrs.slope), n.attrs.slope)),
    ],
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        return `select(${x} * ${c.literal(c.node.attrs.slope, "f32")}, ${x}, ${x} > 0.0f)`;
      },
    },
    // slope > 0 masks on the output, slope <= 0 on the input: both branches.
    gradcheck: { kind: "unary", dist: awayFromZero(), attrs: [{ slope: 0.2 }, { slope: -0.5 }] },
  },
  // PyTorch's clamp of x to [min, max], NaN kept: the WGSL keeps it by select (WGSL's clamp may
  // drop a NaN, as its max does: HELPERS.relu). The gradient is PyTorch's hardtanh_backward:
  // 0 where x <= min or x >= max (both kinks count as outside), dy elsewhere, including where
  // x is NaN (both comparisons are false). The mask reads the saved output: for min < max,
  // y <= min exactly when x <= min and y >= max exactly when x >= max, NaN giving NaN; and it
  // is written as where(mask, 0, dy) so dy is read once (an input-gradient takes it as epilogue).
  hardtanh: {
    evaluate: pointwise1((x, a) => Math.min(Math.max(x, a.min), a.max)),
    vjp: (n, dy, y) => [where(or(le(f(y), n.attrs.min), ge(f(y), n.attrs.max)), 0, dy)],
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        c.helper("isnan");
        const [lo, hi] = [c.literal(c.node.attrs.min, "f32"), c.literal(c.node.attrs.max, "f32")];
        return `select(clamp(${x}, ${lo}, ${hi}), ${x}, isnan_(${x}))`;
      },
    },
    // ReLU6, a symmetric and an asymmetric window; the lattice keeps x 0.1 from every bound.
    gradcheck: { kind: "unary", dist: HARDTANH_LATTICE, attrs: [{ min: 0, max: 6 }, { min: -1, max: 1 }, { min: -2, max: 0.4 }] },
  },
  // d sigmoid = y (1 - y) dy
  sigmoid: {
    evaluate: pointwise1((x) => 1 / (1 + Math.exp(-x))),
    vjp: (_n, dy, y) => [mul(dy, mul(f(y), sub(1, f(y))))],
    lowering: { kind: "elementwise", wgsl: (c) => `(1.0f / (1.0f + exp(-${c.arg(0)})))` },
    gradcheck: { kind: "unary", dist: uniform(-3, 3) },
  },
  // d tanh = (1 - y^2) dy
  tanh: {
    evaluate: pointwise1((x) => Math.tanh(x)),
    vjp: (_n, dy, y) => [mul(dy, sub(1, mul(f(y), f(y))))],
    lowering: { kind: "elementwise", wgsl: (c) => `tanh(${c.arg(0)})` },
    gradcheck: { kind: "unary", dist: uniform(-3, 3) },
  },
  // d erf x = 2/sqrt(pi) e^(-x^2) dy
  erf: {
    evaluate: pointwise1((x) => erf64(x)),
    vjp: (n, dy) => {
      const x = f(n.inputs[0]!);
      return [mul(dy, mul(exp(mul(mul(x, x), -1)), 2 / Math.sqrt(Math.PI)))];
    },
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        c.define("erf", ERF_WGSL);
        return `erf_(${x})`;
      },
    },
    gradcheck: { kind: "unary", dist: uniform(-3, 3) },
  },
  // gelu x = x Phi(x):  d gelu = (Phi(x) + x phi(x)) dy,  Phi(x) = (1 + erf(x / sqrt 2)) / 2,
  // phi(x) = e^(-x^2/2) / sqrt(2 pi).
  gelu: {
    evaluate: pointwise1((x) => 0.5 * x * (1 + erf64(x * Math.SQRT1_2))),
    vjp: (n, dy) => {
      const x = f(n.inputs[0]!);
      const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
      const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
      return [mul(dy, add(cdf, mul(x, pdf)))];
    },
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const x = c.arg(0);
        c.define("erf", ERF_WGSL);
        return `(0.5f * ${x} * (1.0f + erf_(${x} * ${c.literal(Math.SQRT1_2, "f32")})))`;
      },
    },
    gradcheck: { kind: "unary", dist: uniform(-4, 4) },
  },
  not: {
    evaluate: pointwise1((x) => (x ? 0 : 1)),
    vjp: NONDIFF,
    lowering: { kind: "elementwise", wgsl: (c) => `(!${c.arg(0)})` },
    gradcheck: { kind: "none" },
  },
  // f32 -> i32 truncates toward zero and saturates (WGSL's i32(f32); NaN gives 0). Only
  // f32 -> f32 would carry a gradient, and the builder elides that cast.
  cast: {
    evaluate: (n, [x], out) => {
      const to = n.attrs.to;
      for (let i = 0; i < out.length; i++) {
        const v = x!.data[i]!;
        out[i] = to === "bool" ? (v !== 0 ? 1 : 0) : to === "i32" ? saturateI32(v) : v;
      }
    },
    vjp: NONDIFF,
    lowering: { kind: "elementwise", wgsl: (c) => castExpr(c.arg(0), c.node.inputs[0]!.dtype, c.node.attrs.to) },
    gradcheck: { kind: "none" },
  },
  // Autodiff has run before codegen: in the forward pass it is the identity.
  stopGradient: {
    evaluate: (_n, [x], out) => out.set(x!.data),
    vjp: NONDIFF,
    lowering: { kind: "decomposed", into: (_n, [x]) => x! },
    gradcheck: { kind: "none" },
  },
} satisfies { readonly [K in keyof UnaryAttrs]: OpDef<K> };
