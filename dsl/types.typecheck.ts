// Type-level checks of the DSL, compiled (never run) by `npm run typecheck`.
//
// Each `@ts-expect-error` line is a misuse that must not compile: if the types ever accept
// it, the directive itself becomes an error ("unused @ts-expect-error") and typecheck fails.
// The positive cases pin the inferred ranks and dtypes with an exact type equality, so a
// regression to `number` rank (which would still be assignable) is caught too.
//
// Nothing here executes: the module only declares values and a function that is never called.

import { type Bool, type F32, type I32, type Tensor } from "./ir";
import * as op from "./ops";
import { grad } from "./grad";
import * as losses from "./losses";
import { declareModel, param, constant } from "./params";
import * as nn from "./nn";

/** Exact type equality (mutual assignability is too weak for literal ranks against `number`). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when its argument is `true`. */
function assertType<T extends true>(): T | void {}

declare const logits: F32<4>;
declare const labels: I32<3>;
declare const classIds: I32<4>;
declare const image: F32<4>;
declare const weight: F32<4>;
declare const bias: F32<1>;
declare const chw: F32<3>;
declare const matrix: F32<2>;
declare const cube: F32<3>;
declare const vector: F32<1>;
declare const mask: Bool<4>;
declare const anyRank: F32;

export function typeChecks(): void {
  // ---- misuse that must not compile ------------------------------------------------------

  // @ts-expect-error an i32 label map cannot be added to f32 logits
  op.add(logits, labels);
  // @ts-expect-error nor the other way round
  op.sub(labels, logits);
  // @ts-expect-error conv2d takes NCHW (rank 4) input, not CHW
  op.conv2d(chw, weight);
  // @ts-expect-error nor a rank-3 weight
  op.conv2d(image, chw);
  // @ts-expect-error nor a tensor whose rank is unknown
  op.conv2d(anyRank, weight);
  // @ts-expect-error conv2d bias is a vector
  op.conv2d(image, weight, matrix);
  // @ts-expect-error cross-entropy labels are integers
  op.softmaxCrossEntropy(logits, logits);
  // @ts-expect-error the loss helper too
  losses.crossEntropy(logits, op.cast(labels, "f32"));
  // @ts-expect-error matmul multiplies matrices: rank 3 is rejected
  op.matmul(cube, matrix);
  // @ts-expect-error and rank 1
  op.matmul(matrix, vector);
  // @ts-expect-error where needs a bool condition, not f32
  op.where(logits, logits, 0);
  // @ts-expect-error nor i32
  op.where(labels, logits, 0);
  // @ts-expect-error both branches of where share one dtype
  op.where(mask, logits, labels);
  // @ts-expect-error exp is only defined on f32
  op.exp(labels);
  // @ts-expect-error division is f32 only
  op.div(labels, labels);
  // @ts-expect-error booleans are not numbers
  op.add(mask, mask);
  // @ts-expect-error comparisons of booleans are not defined
  op.gt(mask, 0);
  // @ts-expect-error logical not takes booleans
  op.not(logits);
  // @ts-expect-error and/or take booleans
  op.and(mask, logits);
  // @ts-expect-error mean of integers is not defined
  op.mean(labels);
  // @ts-expect-error maxPool2d takes NCHW
  op.maxPool2d(chw, { kernel: 3 });
  // @ts-expect-error resize takes NCHW
  op.resize(chw, [8, 8], { alignCorners: true });
  // @ts-expect-error batch-norm vectors are rank 1
  op.batchNormEval(image, matrix, bias, bias, bias);
  // @ts-expect-error concat joins tensors of one rank
  op.concat([logits, chw], 1);
  // @ts-expect-error and of one dtype
  op.concat([logits, classIds], 1);
  // @ts-expect-error grad needs a scalar loss
  grad(logits, [logits]);
  // @ts-expect-error the result of adding rank 4 and rank 1 is rank 4, not rank 2
  const wrongRank: F32<2> = op.add(logits, vector);
  // @ts-expect-error a reshape to two axes is rank 2, not rank 4
  const wrongReshape: F32<4> = op.reshape(logits, [2, -1]);
  // @ts-expect-error a mask is not f32
  const notFloat: F32<4> = op.gt(logits, 0);
  // @ts-expect-error argmax gives i32
  const notFloatIndex: F32 = op.argmax(logits, 1);
  // @ts-expect-error labels of a loss are i32, and a BCE target is f32 or a number
  losses.bceWithLogits(logits, labels);
  // @ts-expect-error declared parameters keep their rank: a conv weight is rank 4
  const badParam: F32<2> = declareModel("m", { w: param([4, 3, 3, 3], { init: constant(0) }) }).p.w;
  void [wrongRank, wrongReshape, notFloat, notFloatIndex, badParam];

  // ---- what must compile, with the exact inferred types ----------------------------------

  assertType<Equal<ReturnType<typeof op.add<4, 1, "f32">>, F32<4>>>();
  const sum41 = op.add(logits, vector);
  assertType<Equal<typeof sum41, F32<4>>>();
  const sum14 = op.mul(vector, logits);
  assertType<Equal<typeof sum14, F32<4>>>();
  const scaled = op.mul(2, image);
  assertType<Equal<typeof scaled, F32<4>>>();
  const shifted = op.sub(labels, 1);
  assertType<Equal<typeof shifted, I32<3>>>();
  const unknown = op.add(anyRank, vector);
  assertType<Equal<typeof unknown, F32>>();
  const reshaped = op.reshape(logits, [2, -1]);
  assertType<Equal<typeof reshaped, F32<2>>>();
  const flat = op.reshape(labels, [-1]);
  assertType<Equal<typeof flat, I32<1>>>();
  const broadcast = op.broadcastTo(vector, [2, 3, 4]);
  assertType<Equal<typeof broadcast, F32<3>>>();
  const positive = op.gt(logits, 0);
  assertType<Equal<typeof positive, Bool<4>>>();
  const selected = op.where(positive, logits, 0);
  assertType<Equal<typeof selected, F32<4>>>();
  const both = op.and(mask, positive);
  assertType<Equal<typeof both, Bool<4>>>();
  const total = op.sum(logits);
  assertType<Equal<typeof total, F32<0>>>();
  const kept = op.max(logits, [1], { keepdims: true });
  assertType<Equal<typeof kept, F32<4>>>();
  const features = op.conv2d(image, weight, bias, { stride: 2, dilation: 2, padding: 2 });
  assertType<Equal<typeof features, F32<4>>>();
  const pooled = op.maxPool2d(features, { kernel: 3, stride: 2, padding: 1, ceilMode: true });
  assertType<Equal<typeof pooled, F32<4>>>();
  const probabilities = op.softmax(logits, 1);
  assertType<Equal<typeof probabilities, F32<4>>>();
  const loss = losses.crossEntropy(logits, labels);
  assertType<Equal<typeof loss, F32<0>>>();
  const asFloat = op.cast(labels, "f32");
  assertType<Equal<typeof asFloat, Tensor<3, "f32">>>();
  const joined = op.concat([logits, features], 1);
  assertType<Equal<typeof joined, F32<4>>>();
  const product = op.matmul(matrix, op.permute(matrix, [1, 0]));
  assertType<Equal<typeof product, F32<2>>>();
  const grads = grad(op.add(loss, losses.bceWithLogits(logits, 1)), [logits, weight]);
  assertType<Equal<typeof grads, F32[]>>();
  const model = declareModel("m", { conv: nn.convSpec(4, 3, 3, { bias: true }), bn: nn.batchNormSpec(4) });
  assertType<Equal<typeof model.p.conv.weight, F32<4>>>();
  assertType<Equal<typeof model.p.bn.running_var, F32<1>>>();
  const out = nn.conv(image, model.p.conv);
  assertType<Equal<typeof out, F32<4>>>();
}
