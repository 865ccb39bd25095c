// Losses with PyTorch semantics, as compositions of primitives (or the fused primitive, for
// cross-entropy, whose gradient is one expression).

import { type F32, type I32 } from "./ir";
import * as op from "./ops";

/**
 * Cross-entropy over the class axis 1 with an ignore label: the mean over valid pixels only,
 * 0 (not NaN) when none is valid (the official CrossEntropy2d).
 */
export function crossEntropy(logits: F32, labels: I32, ignoreIndex = 255): F32<0> {
  return op.softmaxCrossEntropy(logits, labels, { ignoreIndex });
}

/**
 * BCEWithLogitsLoss, mean over all elements, in the stable form
 *   l(x, z) = max(x, 0) - x z + log(1 + e^-|x|),  dl/dx = sigmoid(x) - z everywhere.
 * -|x| is written min(x, -x): at x = 0 the tie gives the first operand the gradient, so
 * d(-|x|) = 1 there and the pieces sum to 0 - z + 1/2 = sigmoid(0) - z, as PyTorch. Written
 * with abs (d|x| = sign(0) = 0) the derivative at 0 would be -z.
 */
export function bceWithLogits(x: F32, target: number | F32): F32<0> {
  const z = typeof target === "number" ? op.scalar(target) : target;
  return op.mean(op.add(op.sub(op.relu(x), op.mul(x, z)), op.log1p(op.exp(op.minimum(x, op.neg(x))))));
}

/** MSELoss, mean of (x - z)^2 (the LS-GAN objective). */
export function mse(x: F32, target: number | F32): F32<0> {
  const d = op.sub(x, typeof target === "number" ? op.scalar(target) : target);
  return op.mean(op.mul(d, d));
}

/**
 * ADVENT's weighted self-information map of class probabilities p (axis 1, C classes):
 *   I = -p log2(p + 1e-30) / log2(C), per channel, the discriminator's input in AdvEnt.
 */
export function selfInformation(prob: F32<4>): F32<4> {
  const c = prob.shape[1]!;
  return op.div(op.neg(op.mul(prob, op.div(op.log(op.add(prob, 1e-30)), Math.LN2))), Math.log2(c));
}

/**
 * ADVENT's entropy loss (MinEnt): sum over classes of the self-information, averaged over
 * batch and pixels:  sum -p log2(p + 1e-30) / (n h w log2 C).
 */
export function entropyLoss(prob: F32<4>): F32<0> {
  return op.mul(op.sum(selfInformation(prob)), 1 / (prob.shape[0]! * prob.shape[2]! * prob.shape[3]!));
}
