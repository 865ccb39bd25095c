// Layers written in DSL ops: the building blocks models are made of.
//
// Each layer is a spec function (what parameters it declares, with PyTorch's shapes, names and
// initialisation) and an apply function (what it computes). Models compose both.

import { type F32, type Tensor } from "./ir";
import * as op from "./ops";
import { type Init, type ParamSpec, constant, convDefault, param, state } from "./params";
import { type StateThread } from "./program";

export interface ConvSpecOpts {
  readonly bias?: boolean;
  /** Weight init; PyTorch's default U(+-1/sqrt(fan_in)) when omitted. */
  readonly init?: Init;
  readonly biasInit?: Init;
  readonly group?: string;
  readonly trainable?: boolean;
}

export type ConvSpec = { readonly weight: ParamSpec<[number, number, number, number]>; readonly bias: ParamSpec<[number]> | undefined };

/** Conv2d(inC -> outC, k x k): weight [outC, inC, k, k] (OIHW), optional bias [outC]. */
export function convSpec(outC: number, inC: number, k: number, opts: ConvSpecOpts = {}): ConvSpec {
  const fanIn = inC * k * k;
  const common = { group: opts.group ?? "default", trainable: opts.trainable ?? true };
  return {
    weight: param([outC, inC, k, k], { init: opts.init ?? convDefault(fanIn), ...common }),
    bias: opts.bias ? param([outC], { init: opts.biasInit ?? convDefault(fanIn), ...common }) : undefined,
  };
}

export interface ConvParams {
  readonly weight: F32<4>;
  readonly bias: F32<1> | undefined;
}

export function conv(x: F32<4>, p: ConvParams, opts: op.ConvOpts = {}): F32<4> {
  return op.conv2d(x, p.weight, p.bias, opts);
}

/** ReLU6 = min(max(x, 0), 6) (torch.nn.ReLU6, MobileNetV2's activation): hardtanh(x, 0, 6). */
export function relu6<R extends number>(x: F32<R>): F32<R> {
  return op.hardtanh(x, 0, 6);
}

export type BatchNormSpec = {
  readonly weight: ParamSpec<[number]>;
  readonly bias: ParamSpec<[number]>;
  readonly running_mean: ParamSpec<[number]>;
  readonly running_var: ParamSpec<[number]>;
};

/** BatchNorm2d(C): affine weight 1 and bias 0, running mean 0 and variance 1 (PyTorch). */
export function batchNormSpec(c: number, opts: { readonly affineTrainable?: boolean; readonly group?: string } = {}): BatchNormSpec {
  const common = { trainable: opts.affineTrainable ?? true, group: opts.group ?? "default" };
  return {
    weight: param([c], { init: constant(1), ...common }),
    bias: param([c], { init: constant(0), ...common }),
    running_mean: state([c], constant(0)),
    running_var: state([c], constant(1)),
  };
}

export interface BatchNormParams {
  readonly weight: F32<1>;
  readonly bias: F32<1>;
  readonly running_mean: F32<1>;
  readonly running_var: F32<1>;
}

export type BatchNormMode = "train" | "eval";

export interface BatchNormOpts {
  readonly mode: BatchNormMode;
  readonly momentum?: number;
  readonly eps?: number;
  /** Where running statistics are read and (in train mode) written. */
  readonly thread: StateThread;
}

/**
 * BatchNorm2d as PyTorch computes it.
 * eval:  normalise with the running statistics.
 * train: normalise with the batch's mean and biased variance, and update the running
 *        statistics: r <- (1 - momentum) r + momentum s, with the unbiased variance
 *        (factor M / (M - 1), M = N H W) for r = running_var.
 */
export function batchNorm2d(x: F32<4>, p: BatchNormParams, opts: BatchNormOpts): F32<4> {
  const eps = opts.eps ?? 1e-5;
  const rm = opts.thread.read(p.running_mean);
  const rv = opts.thread.read(p.running_var);
  if (opts.mode === "eval") return op.batchNormEval(x, p.weight, p.bias, rm, rv, eps);
  const momentum = opts.momentum ?? 0.1;
  const m = x.shape[0]! * x.shape[2]! * x.shape[3]!;
  const xs = op.stopGradient(x); // statistics are state, not part of any loss
  // The statistics are written exactly as batchNormTrain's decomposition computes them (mean
  // with keepdims, x - mean, the biased variance as a mean), so the compiler's hash-consing
  // merges them with the forward pass's: no second pass over x for the running statistics.
  // unbiased = biased * M / (M - 1).
  const c = x.shape[1]!;
  const muKept = op.mean(xs, [0, 2, 3], { keepdims: true });
  const centred = op.sub(xs, muKept);
  const biased = op.mean(op.mul(centred, centred), [0, 2, 3], { keepdims: true });
  const mu = op.reshape(muKept, [c]);
  const unbiased = op.mul(op.reshape(biased, [c]), m / (m - 1));
  const blend = (r: Tensor, s: F32) => op.add(op.mul(r as F32, 1 - momentum), op.mul(s, momentum));
  opts.thread.write(p.running_mean, blend(rm, mu));
  opts.thread.write(p.running_var, blend(rv, unbiased));
  return op.batchNormTrain(x, p.weight, p.bias, eps);
}
