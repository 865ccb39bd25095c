// The primitive ops of the DSL: builders that check shapes and dtypes and create nodes.
//
// Each op is declared once, in its family file under ops/: its attributes, its builder (with
// the math and the shape rule), and its registry record (ops/def.ts: reference evaluation,
// VJP, lowering, gradient check). This module gathers the builders. Conventions follow
// PyTorch: NCHW layout, floor division for window sizes, ties in argmax to the first index.

export { type MaxRank, type Numeric } from "./ops/build";
export { input, scalar, iota } from "./ops/sources";
export { neg, abs, sign, exp, log, log1p, sqrt, rsqrt, relu, leakyRelu, sigmoid, tanh, not, cast, stopGradient } from "./ops/unary";
export { type BinaryOp, type CompareOp, add, sub, mul, div, pow, maximum, minimum, lt, le, gt, ge, eq, ne, and, or, where } from "./ops/binary";
export { type ReduceOp, type ReduceOpts, sum, mean, max, argmax } from "./ops/reductions";
export { reshape, permute, broadcastTo, slice, pad, concat } from "./ops/views";
export { type ConvOpts, conv2d, conv2dInputGrad, conv2dWeightGrad } from "./ops/conv";
export { type PoolOpts, maxPool2d, maxPool2dGrad, resize, resizeGrad } from "./ops/sampling";
export { matmul } from "./ops/matmul";
export { softmax, logSoftmax, batchNormEval, batchNormTrain, softmaxCrossEntropy, softmaxCrossEntropyGrad } from "./ops/normalization";
