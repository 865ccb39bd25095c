// Builders: the shapes they infer, the nodes they elide, and the errors they report. A shape
// error must say what to fix from the message alone: the op, every operand's shape, and the
// attributes; tryBuild turns it into a Left.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type DType, type F32, type Shape, type Tensor } from "./ir";
import * as op from "./ops";
import { ShapeError, tryBuild } from "./shape";

const f32 = (shape: Shape, name = "t") => op.input(name, shape, "f32") as F32;
const f4 = (shape: Shape, name = "t") => op.input(name, shape, "f32") as F32<4>;
const typed = (shape: Shape, dtype: DType) => op.input("t", shape, dtype) as Tensor;

/** The error a build raises, as tryBuild reports it. */
function errorOf(build: () => unknown): ShapeError {
  const r = tryBuild(build);
  if (E.isRight(r)) throw new Error("expected a ShapeError, the build succeeded");
  expect(r.left).toBeInstanceOf(ShapeError);
  return r.left as ShapeError;
}

describe("shape errors name the op, every operand's shape and the attributes", () => {
  // [what, build, op, fragments the message must contain]
  const cases: [string, () => unknown, string, string[]][] = [
    [
      "conv2d channel mismatch",
      () => op.conv2d(f4([1, 3, 8, 8]), f4([4, 2, 3, 3])),
      "conv2d",
      ["3 channels", "[1,3,8,8]", "[4,2,3,3]", "stride [1,1]", "padding [0,0]", "dilation [1,1]"],
    ],
    [
      "conv2d with a rank-3 input",
      () => op.conv2d(f32([3, 8, 8]) as F32<4>, f4([4, 3, 3, 3]), undefined, { stride: 2 }),
      "conv2d",
      ["rank 4", "input [3,8,8]", "weight [4,3,3,3]", "stride [2,2]"],
    ],
    [
      "conv2d bias of the wrong length",
      () => op.conv2d(f4([1, 3, 8, 8]), f4([4, 3, 3, 3]), f32([3]) as F32<1>),
      "conv2d",
      ["bias must be [4]", "[1,3,8,8]", "[4,3,3,3]", "bias [3]", "stride"],
    ],
    [
      "conv2d window larger than the padded input",
      () => op.conv2d(f4([1, 3, 2, 2]), f4([4, 3, 3, 3]), undefined, { dilation: 2, padding: 1 }),
      "conv2d",
      ["does not fit", "[1,3,2,2]", "[4,3,3,3]", "padding [1,1]", "dilation [2,2]"],
    ],
    [
      "conv2d stride 0",
      () => op.conv2d(f4([1, 3, 8, 8]), f4([4, 3, 3, 3]), undefined, { stride: [0, 1] }),
      "conv2d",
      ["positive integers", "[1,3,8,8]", "[4,3,3,3]", "stride [0,1]"],
    ],
    [
      "conv2d integer weights",
      () => op.conv2d(f4([1, 3, 8, 8]), typed([4, 3, 3, 3], "i32") as F32<4>),
      "conv2d",
      ["weight has dtype i32", "input [1,3,8,8]", "weight [4,3,3,3]", "dilation"],
    ],
    [
      "conv2dInputGrad size that does not give the gradient's size",
      () => op.conv2dInputGrad(f4([1, 4, 3, 3]), f4([4, 3, 3, 3]), [9, 9], { stride: 2 }),
      "conv2dInputGrad",
      ["gives 4x4, not 3x3", "gradOutput [1,4,3,3]", "weight [4,3,3,3]", "stride [2,2]", "inputSize [9,9]"],
    ],
    [
      "conv2dWeightGrad batch mismatch",
      () => op.conv2dWeightGrad(f4([1, 3, 8, 8]), f4([2, 4, 6, 6]), [3, 3]),
      "conv2dWeightGrad",
      ["batch sizes differ", "input [1,3,8,8]", "gradOutput [2,4,6,6]", "kernel [3,3]"],
    ],
    [
      "add of shapes that do not broadcast",
      () => op.add(f32([2, 3]), f32([4])),
      "add",
      ["do not broadcast", "a [2,3]", "b [4]"],
    ],
    [
      "mul of f32 and i32 (bypassing the types)",
      () => op.mul(f32([2, 3]), typed([2, 3], "i32") as F32),
      "mul",
      ["dtypes differ: f32 and i32", "a [2,3]", "b [2,3]"],
    ],
    [
      "div of integers (bypassing the types)",
      () => op.div(typed([2], "i32") as F32, typed([1], "i32") as F32),
      "div",
      ["dtype i32, expected f32", "a [2]", "b [2]"],
    ],
    ["matmul inner dimensions", () => op.matmul(f32([2, 3]) as F32<2>, f32([4, 5]) as F32<2>), "matmul", ["inner", "a [2,3]", "b [4,5]"]],
    ["matmul rank", () => op.matmul(f32([2, 3, 1]) as F32<2>, f32([4, 5]) as F32<2>), "matmul", ["rank 2", "a [2,3,1]", "b [4,5]"]],
    [
      "maxPool2d padding over half the kernel",
      () => op.maxPool2d(f4([1, 1, 8, 8]), { kernel: 2, padding: 2 }),
      "maxPool2d",
      ["at most half", "input [1,1,8,8]", "kernel [2,2]", "stride [2,2]", "padding [2,2]", "ceilMode false"],
    ],
    [
      "maxPool2dGrad with a gradient of the wrong size",
      () => op.maxPool2dGrad(f4([1, 1, 4, 4]), f4([1, 1, 3, 3]), { kernel: [2, 2], stride: [2, 2], padding: [0, 0], ceilMode: false }),
      "maxPool2dGrad",
      ["must be [1,1,2,2]", "input [1,1,4,4]", "gradOutput [1,1,3,3]", "kernel [2,2]"],
    ],
    ["reshape to another element count", () => op.reshape(f32([2, 3]), [4, 2]), "reshape", ["6 elements", "x [2,3]", "shape [4,2]"]],
    ["reshape with two -1", () => op.reshape(f32([2, 3]), [-1, -1]), "reshape", ["invalid", "x [2,3]", "shape [-1,-1]"]],
    [
      "cross-entropy labels of the wrong shape",
      () => op.softmaxCrossEntropy(f32([2, 19, 8, 8]), typed([2, 8, 9], "i32") as never),
      "softmaxCrossEntropy",
      ["without the class axis", "logits [2,19,8,8]", "labels [2,8,9]", "ignoreIndex 255"],
    ],
    [
      "cross-entropy with f32 labels",
      () => op.softmaxCrossEntropy(f32([2, 19, 8, 8]), f32([2, 8, 8]) as never, { ignoreIndex: -1 }),
      "softmaxCrossEntropy",
      ["labels has dtype f32", "logits [2,19,8,8]", "labels [2,8,8]", "ignoreIndex -1"],
    ],
    ["concat off-axis mismatch", () => op.concat([f32([2, 3]), f32([3, 3])], 1), "concat", ["off the concatenation axis", "x0 [2,3]", "x1 [3,3]", "axis 1"]],
    ["empty slice", () => op.slice(f32([2, 3]), [0, 2], [2, 2]), "slice", ["axis 1", "x [2,3]", "starts [0,2]", "ends [2,2]"]],
    ["pad with too few pairs", () => op.pad(f32([2, 3]), [[1, 1]]), "pad", ["pair per axis", "x [2,3]", "pads [[1,1]]"]],
    [
      "batchNormEval running mean of the wrong length",
      () => op.batchNormEval(f4([1, 3, 4, 4]), f32([3]) as F32<1>, f32([3]) as F32<1>, f32([2]) as F32<1>, f32([3]) as F32<1>),
      "batchNormEval",
      ["runningMean must be [3]", "input [1,3,4,4]", "weight [3]", "runningMean [2]", "runningVar [3]", "eps"],
    ],
    [
      "batchNormTrain with one value per channel",
      () => op.batchNormTrain(f4([1, 3, 1, 1]), f32([3]) as F32<1>, f32([3]) as F32<1>),
      "batchNormTrain",
      ["more than one value", "input [1,3,1,1]", "weight [3]", "bias [3]", "eps"],
    ],
    ["sum over a missing axis", () => op.sum(f32([2, 3]), [2]), "sum", ["axis 2 out of range", "x [2,3]", "axes [2]"]],
    ["sum over a repeated axis", () => op.sum(f32([2, 3]), [1, -1]), "sum", ["repeated", "x [2,3]", "axes [1,-1]"]],
    ["softmax axis out of range", () => op.softmax(f32([2, 3]), 2), "softmax", ["axis", "x [2,3]", "axis 2"]],
    ["resize to size 0", () => op.resize(f4([1, 3, 4, 4]), [0, 4], { alignCorners: true }), "resize", ["positive", "input [1,3,4,4]", "size [0,4]", "alignCorners true"]],
    ["broadcastTo an incompatible shape", () => op.broadcastTo(f32([2, 3]), [3, 3]), "broadcastTo", ["cannot broadcast", "x [2,3]", "shape [3,3]"]],
    ["permute with a repeated axis", () => op.permute(f32([2, 3]), [0, 0]), "permute", ["permutation", "x [2,3]", "perm [0,0]"]],
    [
      "where over shapes that do not broadcast",
      () => op.where(op.gt(f32([2, 3]), 0), f32([4]), 0),
      "where",
      ["do not broadcast", "cond [2,3]", "a [4]", "b []"],
    ],
    ["input with a zero dimension", () => op.input("x", [2, 0], "f32"), "input", ["dimension 0", "x [2,0]"]],
    ["i32 scalar that is not an integer", () => op.scalar(0.5, "i32"), "scalar", ["integer", "value 0.5"]],
  ];

  it.each(cases)("%s", (_, build, name, fragments) => {
    const e = errorOf(build);
    expect(e.op).toBe(name);
    expect(e.message.startsWith(`${name}: `)).toBe(true);
    for (const fragment of fragments) expect(e.message).toContain(fragment);
  });

  it("carries the operands and attributes as data too", () => {
    const e = errorOf(() => op.conv2d(f4([1, 3, 8, 8]), f4([4, 2, 3, 3]), undefined, { stride: 2, padding: 1 }));
    expect(e.operands).toEqual([
      ["input", [1, 3, 8, 8]],
      ["weight", [4, 2, 3, 3]],
    ]);
    expect(e.attrs).toEqual({ stride: [2, 2], padding: [1, 1], dilation: [1, 1] });
  });

  it("tryBuild returns Right for a graph that builds, and rethrows errors that are not the user's", () => {
    const r = tryBuild(() => op.conv2d(f4([1, 3, 8, 8]), f4([4, 3, 3, 3])));
    expect(E.isRight(r) && r.right.shape).toEqual([1, 4, 6, 6]);
    expect(() => tryBuild(() => { throw new TypeError("compiler bug"); })).toThrow(TypeError);
  });
});

describe("shape inference", () => {
  it("conv2d follows floor((n + 2p - d(k-1) - 1)/s) + 1 per axis", () => {
    const y = op.conv2d(f4([2, 3, 65, 33]), f4([8, 3, 3, 3]), undefined, { stride: [2, 1], padding: [1, 6], dilation: [1, 6] });
    expect(y.shape).toEqual([2, 8, 33, 33]);
  });

  it("conv2dInputGrad and conv2dWeightGrad restore the input and weight shapes", () => {
    const opts = { stride: 2, padding: 1 } as const;
    const y = op.conv2d(f4([1, 3, 8, 8]), f4([4, 3, 3, 3]), undefined, opts);
    expect(op.conv2dInputGrad(y, f4([4, 3, 3, 3]), [8, 8], opts).shape).toEqual([1, 3, 8, 8]);
    // An input of 7 gives the same 4 outputs: inputSize disambiguates.
    expect(op.conv2dInputGrad(y, f4([4, 3, 3, 3]), [7, 7], opts).shape).toEqual([1, 3, 7, 7]);
    expect(op.conv2dWeightGrad(f4([1, 3, 8, 8]), y, [3, 3], opts).shape).toEqual([4, 3, 3, 3]);
  });

  it("maxPool2d uses PyTorch's ceil-mode rule and defaults stride to the kernel", () => {
    expect(op.maxPool2d(f4([1, 1, 6, 6]), { kernel: 3, stride: 2, padding: 1, ceilMode: true }).shape).toEqual([1, 1, 4, 4]);
    expect(op.maxPool2d(f4([1, 1, 5, 5]), { kernel: 2, stride: 2, padding: 1, ceilMode: true }).shape).toEqual([1, 1, 3, 3]);
    expect(op.maxPool2d(f4([1, 1, 7, 7]), { kernel: 2 }).shape).toEqual([1, 1, 3, 3]);
  });

  it("broadcasting aligns trailing axes", () => {
    expect(op.add(f32([2, 1, 4]), f32([3, 1])).shape).toEqual([2, 3, 4]);
    expect(op.where(op.gt(f32([3, 1]), 0), f32([4]), 1).shape).toEqual([3, 4]);
  });

  it("reshape infers one -1 entry", () => {
    expect(op.reshape(f32([2, 3, 4]), [-1, 4]).shape).toEqual([6, 4]);
  });

  it("reductions drop or keep the reduced axes", () => {
    const x = f32([2, 3, 4]);
    expect(op.sum(x).shape).toEqual([]);
    expect(op.mean(x, [0, -1]).shape).toEqual([3]);
    expect(op.max(x, [1], { keepdims: true }).shape).toEqual([2, 1, 4]);
    expect(op.argmax(x, -1).shape).toEqual([2, 3]);
  });

  it("slice reads negative indices from the end; pad and concat add up lengths", () => {
    expect(op.slice(f32([5, 6]), [-3, 1], [5, -1]).shape).toEqual([3, 4]);
    expect(op.pad(f32([2, 3]), [[1, 0], [2, 2]]).shape).toEqual([3, 7]);
    expect(op.concat([f32([2, 3]), f32([2, 1])], -1).shape).toEqual([2, 4]);
  });

  it("cross-entropy accepts labels of the logits' shape without axis 1, at any rank", () => {
    expect(op.softmaxCrossEntropy(f32([5, 3]), typed([5], "i32") as never).shape).toEqual([]);
    expect(op.softmaxCrossEntropyGrad(f32([2, 3, 4]), typed([2, 4], "i32") as never).shape).toEqual([2, 3, 4]);
  });
});

describe("builders elide no-op nodes", () => {
  it.each([
    ["broadcastTo the same shape", (x: F32) => op.broadcastTo(x, [2, 3])],
    ["reshape to the same shape", (x: F32) => op.reshape(x, [2, -1])],
    ["identity permute", (x: F32) => op.permute(x, [0, 1])],
    ["full slice", (x: F32) => op.slice(x, [0, 0], [2, 3])],
    ["zero padding", (x: F32) => op.pad(x, [[0, 0], [0, 0]])],
    ["concat of one tensor", (x: F32) => op.concat([x], 0)],
    ["cast to its own dtype", (x: F32) => op.cast(x, "f32")],
  ])("%s returns its operand", (_, f) => {
    const x = f32([2, 3]);
    expect(f(x)).toBe(x);
  });

  it("broadcasting to a higher rank inserts a reshape before broadcastTo", () => {
    const y = op.broadcastTo(f32([3]), [2, 3]);
    expect(y.node.op).toBe("broadcastTo");
    expect(y.node.inputs[0]!.node.op).toBe("reshape");
    expect(y.node.inputs[0]!.shape).toEqual([1, 3]);
  });
});
