// Optimizers as DSL functions: they turn (parameter, gradient, state) into update expressions
// with PyTorch's semantics. Learning rates and step counts are scalar tensors computed from
// the program's iteration input, so one compiled program serves every step. Every coefficient
// (learning rate, momentum, weight decay, betas, eps) may be a scalar tensor, e.g. an element of
// the program's hyperparameter vector (hyper.ts), so one compiled program serves every value;
// a plain number is compiled in as a literal.

import { type F32, type I32, type Tensor } from "./ir";
import * as op from "./ops";
import { type ParamEntry, constant, declareState, state } from "./params";

/** A coefficient: a run-time scalar, or a number compiled into the kernels. */
export type Coefficient = F32<0> | number;

const tensorOf = (c: Coefficient): F32<0> => (typeof c === "number" ? op.scalar(c) : c);

/** Poly schedule (DeepLab): base (1 - i / maxIter)^power, set before the step at iteration i. */
export function polyLearningRate(base: Coefficient, iteration: I32<0>, maxIter: Coefficient, power: Coefficient): F32<0> {
  const progress = op.div(op.cast(iteration, "f32"), tensorOf(maxIter));
  return op.mul(tensorOf(base), op.pow(op.sub(1, progress), tensorOf(power)));
}

export interface ParamGrad {
  readonly entry: ParamEntry;
  readonly grad: F32;
}

export interface OptimizerResult {
  /** State the optimizer keeps (moments), to be declared among the program's params. */
  readonly state: readonly ParamEntry[];
  /** Entry name -> new value, for parameters and optimizer state. */
  readonly updates: Readonly<Record<string, Tensor>>;
}

export interface SgdOptions {
  /** The learning rate of each parameter (usually by optimizer group). */
  readonly lr: (entry: ParamEntry) => F32<0>;
  readonly momentum: Coefficient;
  readonly weightDecay: Coefficient;
  /**
   * How many times the parameter list holds this parameter (1 in clean PyTorch). The
   * official DeepLab optimizer lists backbone weights several times; PyTorch 0.3/0.4 then
   * runs the update once per entry, in sequence (adaptsegnet.md section 1.9).
   */
  readonly visits?: (entry: ParamEntry) => number;
  /**
   * PyTorch <= 1.4 added weight decay to p.grad in place, so with repeated visits the decay
   * terms accumulate in the gradient (g + wd (p1 + ... + pj) on visit j). Later versions
   * use g + wd pj. Only matters when visits > 1.
   */
  readonly weightDecayInPlace?: boolean;
}

/**
 * SGD with momentum (dampening 0, no Nesterov), PyTorch form, per visit:
 *   g <- g + wd p;  buf <- mu buf + g (buf = g on the very first step, the same as a zero
 *   buffer);  p <- p - lr buf.
 * Momentum buffers are state `<stateModel>/<param key>`, zero-initialised.
 */
export function sgd(stateModel: string, params: readonly ParamGrad[], opts: SgdOptions): OptimizerResult {
  const buffers = declareState(
    stateModel,
    params.map(({ entry }) => ({ key: `${entry.model}.${entry.key}`, spec: state(entry.spec.shape, constant(0)) })),
  );
  const updates: Record<string, Tensor> = {};
  const [momentum, weightDecay] = [tensorOf(opts.momentum), tensorOf(opts.weightDecay)];
  params.forEach(({ entry, grad }, i) => {
    const lr = opts.lr(entry);
    const visits = opts.visits?.(entry) ?? 1;
    let p = entry.tensor as F32;
    let buf = buffers[i]!.tensor as F32;
    let g = grad;
    for (let v = 0; v < visits; v++) {
      g = op.add(opts.weightDecayInPlace === false ? grad : g, op.mul(p, weightDecay));
      buf = op.add(op.mul(buf, momentum), g);
      p = op.sub(p, op.mul(buf, lr));
    }
    updates[entry.name] = p;
    updates[buffers[i]!.name] = buf;
  });
  return { state: buffers, updates };
}

export interface AdamOptions {
  readonly lr: F32<0>;
  readonly beta1: Coefficient;
  readonly beta2: Coefficient;
  readonly eps: Coefficient;
  /** The 1-based step count t of this update. */
  readonly step: F32<0>;
  /**
   * Where eps enters. "pytorch1": p -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps) (PyTorch
   * >= 1.0). "pytorch0.4": p -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps) (the official
   * runs). The two differ only through eps.
   */
  readonly epsPlacement?: "pytorch1" | "pytorch0.4";
}

/**
 * Adam without weight decay: m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2, then the
 * bias-corrected step. Moments are state `<stateModel>/<param key>.exp_avg` / `.exp_avg_sq`.
 */
export function adam(stateModel: string, params: readonly ParamGrad[], opts: AdamOptions): OptimizerResult {
  const moments = declareState(
    stateModel,
    params.flatMap(({ entry }) => [
      { key: `${entry.model}.${entry.key}.exp_avg`, spec: state(entry.spec.shape, constant(0)) },
      { key: `${entry.model}.${entry.key}.exp_avg_sq`, spec: state(entry.spec.shape, constant(0)) },
    ]),
  );
  const [beta1, beta2, eps] = [tensorOf(opts.beta1), tensorOf(opts.beta2), tensorOf(opts.eps)];
  // 1 - b as a number when b is one (PyTorch computes it in double, then rounds to f32).
  const oneMinus = (b: Coefficient): F32<0> => (typeof b === "number" ? op.scalar(1 - b) : op.sub(1, b));
  const [keep1, keep2] = [oneMinus(opts.beta1), oneMinus(opts.beta2)];
  const bc1 = op.sub(1, op.pow(beta1, opts.step));
  const bc2 = op.sub(1, op.pow(beta2, opts.step));
  const updates: Record<string, Tensor> = {};
  params.forEach(({ entry, grad }, i) => {
    const [mEntry, vEntry] = [moments[2 * i]!, moments[2 * i + 1]!];
    const m = op.add(op.mul(mEntry.tensor as F32, beta1), op.mul(grad, keep1));
    const v = op.add(op.mul(vEntry.tensor as F32, beta2), op.mul(op.mul(grad, grad), keep2));
    const step =
      opts.epsPlacement === "pytorch0.4"
        ? op.div(op.mul(m, op.div(op.mul(opts.lr, op.sqrt(bc2)), bc1)), op.add(op.sqrt(v), eps))
        : op.div(op.mul(m, op.div(opts.lr, bc1)), op.add(op.div(op.sqrt(v), op.sqrt(bc2)), eps));
    updates[entry.name] = op.sub(entry.tensor as F32, step);
    updates[mEntry.name] = m;
    updates[vEntry.name] = v;
  });
  return { state: moments, updates };
}
