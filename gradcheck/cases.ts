// Gradient checks of the ops whose record asks for cases (gradcheck: { kind: "cases" }): each
// needs its own generator of shapes and attributes. CASES is keyed by exactly those op names
// (CaseOp), so an op whose record asks for cases does not compile without its generator.

import fc from "fast-check";
import { type CaseOp, type F32, type Shape, convOutSize, numel, showShape } from "../dsl/index";
import { awayFromZero, distinct, standard, uniform } from "../dsl/ops/def";
import * as op from "../dsl/ops";
import { axesA, broadcastVariantA, convCaseA, convLabel, depthwiseCaseA, dim, f32In, pairA, seedA, shapeA } from "./arbitraries";
import type { CaseInputs, Dist, OpCheck } from "./harness";

/** where: the condition and both branches broadcast together in every way. */
const whereCheck: OpCheck = {
  name: "where",
  op: "where",
  cases: fc
    .record({ full: shapeA(0, 4, 3), seed: seedA })
    .chain(({ full, seed }) =>
      fc.tuple(broadcastVariantA(full), broadcastVariantA(full), broadcastVariantA(full)).map(([sc, sa, sb]) => ({
        label: `cond ${showShape(sc)}, a ${showShape(sa)}, b ${showShape(sb)}`,
        seed,
        inputs: { cond: { shape: sc, dtype: "bool", dist: { kind: "mask" }, wrt: false }, a: f32In(sa, standard), b: f32In(sb, standard) },
        build: (t: CaseInputs) => op.where(t.b("cond"), t.f("a"), t.f("b")),
      })),
    ),
};

function reduceCheck(name: "sum" | "mean" | "max", dist: Dist): OpCheck {
  const f = (x: F32, axes: readonly number[] | undefined, keepdims: boolean): F32 =>
    name === "sum" ? op.sum(x, axes, { keepdims }) : name === "mean" ? op.mean(x, axes, { keepdims }) : op.max(x, axes, { keepdims });
  return {
    name,
    op: name,
    cases: fc
      .record({ shape: shapeA(1, 4, 4), keepdims: fc.boolean(), all: fc.boolean(), seed: seedA })
      .chain((r) => axesA(r.shape.length).map((axes) => ({ ...r, axes: r.all ? undefined : axes })))
      .map(({ shape, keepdims, axes, seed }) => ({
        label: `x ${showShape(shape)}, axes ${axes === undefined ? "all" : showShape(axes)}, keepdims ${keepdims}`,
        seed,
        inputs: { x: f32In(shape, dist) },
        build: (t: CaseInputs) => f(t.f("x"), axes, keepdims),
      })),
  };
}

/** Target shapes with the same element count, all different from `shape`. */
function reshapeTargets(shape: Shape): Shape[] {
  const n = numel(shape);
  const candidates: Shape[] = [[n], [...shape, 1], [1, ...shape], [...shape].reverse(), [-1, shape[shape.length - 1]!]];
  const resolved = (s: Shape) => s.map((d) => (d === -1 ? n / numel(s.filter((e) => e !== -1)) : d));
  return candidates.filter((s) => showShape(resolved(s)) !== showShape(shape));
}

const viewChecks: OpCheck[] = [
  {
    name: "reshape",
    op: "reshape",
    cases: fc
      .record({ shape: shapeA(1, 4, 4), seed: seedA })
      .chain((r) => fc.constantFrom(...reshapeTargets(r.shape)).map((target) => ({ ...r, target })))
      .map(({ shape, target, seed }) => ({
        label: `x ${showShape(shape)} to ${showShape(target)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.reshape(t.f("x"), target),
      })),
  },
  {
    name: "permute",
    op: "permute",
    cases: fc
      .record({ shape: shapeA(2, 4, 4), seed: seedA })
      .chain((r) => {
        const axes = r.shape.map((_, i) => i);
        const perm = fc.shuffledSubarray(axes, { minLength: axes.length, maxLength: axes.length });
        return perm.filter((p) => p.some((a, i) => a !== i)).map((perm) => ({ ...r, perm }));
      })
      .map(({ shape, perm, seed }) => ({
        label: `x ${showShape(shape)}, perm ${showShape(perm)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.permute(t.f("x"), perm),
      })),
  },
  {
    name: "broadcastTo",
    op: "broadcastTo",
    cases: fc
      .record({ target: shapeA(1, 4, 3), seed: seedA })
      .chain((r) => broadcastVariantA(r.target).map((shape) => ({ ...r, shape })))
      .filter(({ target, shape }) => {
        // Some axis must actually repeat, or the builder returns a reshape (or x itself).
        const lifted = [...new Array<number>(target.length - shape.length).fill(1), ...shape];
        return lifted.some((d, i) => d === 1 && target[i]! > 1);
      })
      .map(({ target, shape, seed }) => ({
        label: `x ${showShape(shape)} to ${showShape(target)}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.broadcastTo(t.f("x"), target),
      })),
  },
  {
    name: "slice",
    op: "slice",
    cases: fc
      .record({ shape: shapeA(1, 4, 5), seed: seedA })
      .chain((r) =>
        fc
          .tuple(...r.shape.map((d) => fc.tuple(dim(0, d - 1), dim(1, d), fc.boolean()).map(([a, b, neg]) => [Math.min(a, b - 1), b, neg] as const)))
          .map((bounds) => ({ ...r, bounds })),
      )
      .filter(({ shape, bounds }) => bounds.some(([s, e], i) => s > 0 || e < shape[i]!))
      .map(({ shape, bounds, seed }) => {
        // Negative indices count from the end; half of the bounds are written that way.
        const starts = bounds.map(([s, , neg], i) => (neg && s > 0 ? s - shape[i]! : s));
        const ends = bounds.map(([, e, neg], i) => (neg && e < shape[i]! ? e - shape[i]! : e));
        return {
          label: `x ${showShape(shape)}, starts ${showShape(starts)}, ends ${showShape(ends)}`,
          seed,
          inputs: { x: f32In(shape, standard) },
          build: (t: CaseInputs) => op.slice(t.f("x"), starts, ends),
        };
      }),
  },
  {
    name: "pad",
    op: "pad",
    cases: fc
      .record({ shape: shapeA(1, 4, 3), value: fc.constantFrom(0, -1.5), seed: seedA })
      .chain((r) => fc.tuple(...r.shape.map(() => pairA(dim(0, 2)))).map((pads) => ({ ...r, pads })))
      .filter(({ pads }) => pads.some(([a, b]) => a + b > 0))
      .map(({ shape, pads, value, seed }) => ({
        label: `x ${showShape(shape)}, pads ${JSON.stringify(pads)}, value ${value}`,
        seed,
        inputs: { x: f32In(shape, standard) },
        build: (t: CaseInputs) => op.pad(t.f("x"), pads, value),
      })),
  },
  {
    name: "concat",
    op: "concat",
    cases: fc
      .record({ shape: shapeA(1, 4, 3), parts: dim(2, 3), seed: seedA })
      .chain((r) =>
        fc
          .tuple(dim(0, r.shape.length - 1), fc.boolean(), fc.array(dim(1, 3), { minLength: r.parts, maxLength: r.parts }))
          .map(([axis, negative, lengths]) => ({ ...r, axis, written: negative ? axis - r.shape.length : axis, lengths })),
      )
      .map(({ shape, axis, written, lengths, seed }) => {
        const shapes = lengths.map((l) => shape.map((d, i) => (i === axis ? l : d)));
        return {
          label: `${shapes.map(showShape).join(" ++ ")} on axis ${written}`,
          seed,
          inputs: Object.fromEntries(shapes.map((s, k) => [`x${k}`, f32In(s, standard)])),
          build: (t: CaseInputs) => op.concat(shapes.map((_, k) => t.f(`x${k}`)), written),
        };
      }),
  },
];


function convCheck(name: string, withBias: boolean): OpCheck {
  return {
    name,
    op: "conv2d",
    cases: convCaseA.map((r) => ({
      label: convLabel(r) + (withBias ? ", bias" : ""),
      seed: r.seed,
      inputs: {
        x: f32In([r.n, r.c, ...r.size], standard),
        w: f32In([r.o, r.c, ...r.kernel], standard),
        ...(withBias ? { bias: f32In([r.o], standard) } : {}),
      },
      build: (t) => op.conv2d(t.f4("x"), t.f4("w"), withBias ? t.f1("bias") : undefined, r),
    })),
  };
}

const convChecks: OpCheck[] = [
  convCheck("conv2d", false),
  convCheck("conv2d bias", true),
  {
    name: "conv2dInputGrad",
    op: "conv2dInputGrad",
    cases: convCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { dy: f32In([r.n, r.o, ...r.out], standard), w: f32In([r.o, r.c, ...r.kernel], standard) },
      build: (t) => op.conv2dInputGrad(t.f4("dy"), t.f4("w"), r.size, r),
    })),
  },
  {
    name: "conv2dWeightGrad",
    op: "conv2dWeightGrad",
    cases: convCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { x: f32In([r.n, r.c, ...r.size], standard), dy: f32In([r.n, r.o, ...r.out], standard) },
      build: (t) => op.conv2dWeightGrad(t.f4("x"), t.f4("dy"), r.kernel, r),
    })),
  },
];

/** Depthwise convolution, with and without bias, and its two adjoints; weights [C, 1, KH, KW]. */
function depthwiseCheck(name: string, withBias: boolean): OpCheck {
  return {
    name,
    op: "depthwiseConv2d",
    cases: depthwiseCaseA.map((r) => ({
      label: convLabel(r) + (withBias ? ", bias" : ""),
      seed: r.seed,
      inputs: {
        x: f32In([r.n, r.c, ...r.size], standard),
        w: f32In([r.c, 1, ...r.kernel], standard),
        ...(withBias ? { bias: f32In([r.c], standard) } : {}),
      },
      build: (t) => op.depthwiseConv2d(t.f4("x"), t.f4("w"), withBias ? t.f1("bias") : undefined, r),
    })),
  };
}

const depthwiseChecks: OpCheck[] = [
  depthwiseCheck("depthwiseConv2d", false),
  depthwiseCheck("depthwiseConv2d bias", true),
  {
    name: "depthwiseConv2dInputGrad",
    op: "depthwiseConv2dInputGrad",
    cases: depthwiseCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { dy: f32In([r.n, r.c, ...r.out], standard), w: f32In([r.c, 1, ...r.kernel], standard) },
      build: (t) => op.depthwiseConv2dInputGrad(t.f4("dy"), t.f4("w"), r.size, r),
    })),
  },
  {
    name: "depthwiseConv2dWeightGrad",
    op: "depthwiseConv2dWeightGrad",
    cases: depthwiseCaseA.map((r) => ({
      label: convLabel(r),
      seed: r.seed,
      inputs: { x: f32In([r.n, r.c, ...r.size], standard), dy: f32In([r.n, r.c, ...r.out], standard) },
      build: (t) => op.depthwiseConv2dWeightGrad(t.f4("x"), t.f4("dy"), r.kernel, r),
    })),
  },
];

/** Max pooling, PyTorch's size rule; distinct values, so every window has one clear maximum. */
function maxPoolCheck(ceilMode: boolean): OpCheck {
  return {
    name: `maxPool2d ceilMode ${ceilMode}`,
    op: "maxPool2d",
    cases: fc
      .record({
        n: dim(1, 2),
        c: dim(1, 2),
        size: pairA(dim(1, 9)),
        kernel: pairA(dim(1, 3)),
        stride: fc.option(pairA(dim(1, 2)), { nil: undefined }),
        padFraction: pairA(fc.double({ min: 0, max: 1, noNaN: true })),
        seed: seedA,
      })
      .map(({ padFraction, ...r }) => ({
        ...r,
        padding: [0, 1].map((a) => Math.round(padFraction[a]! * Math.floor(r.kernel[a]! / 2))) as [number, number],
      }))
      .filter((r) =>
        [0, 1].every((a) => {
          const s = r.stride?.[a] ?? r.kernel[a]!;
          return convOutSize(r.size[a]!, r.kernel[a]!, s, r.padding[a]!, 1) >= 1;
        }),
      )
      .map((r) => ({
        label: `N${r.n} C${r.c} size ${r.size} kernel ${r.kernel} stride ${r.stride ?? "= kernel"} padding ${r.padding}`,
        seed: r.seed,
        inputs: { x: f32In([r.n, r.c, ...r.size], distinct()) },
        build: (t: CaseInputs) => op.maxPool2d(t.f4("x"), { kernel: r.kernel, stride: r.stride, padding: r.padding, ceilMode }),
      })),
  };
}

function resizeCheck(name: "resize" | "resizeGrad", alignCorners: boolean): OpCheck {
  return {
    name: `${name} alignCorners ${alignCorners}`,
    op: name,
    // Sizes 1-6 each way: upsampling, downsampling, equal sizes and outputs of size 1.
    cases: fc.record({ n: dim(1, 2), c: dim(1, 2), from: pairA(dim(1, 6)), to: pairA(dim(1, 6)), seed: seedA }).map((r) => ({
      label: `N${r.n} C${r.c} ${r.from.join("x")} -> ${r.to.join("x")}`,
      seed: r.seed,
      inputs: { x: f32In([r.n, r.c, ...r.from], standard) },
      build: (t) => (name === "resize" ? op.resize : op.resizeGrad)(t.f4("x"), r.to, { alignCorners }),
    })),
  };
}

function softmaxCheck(name: "softmax" | "logSoftmax"): OpCheck {
  return {
    name,
    op: name,
    cases: fc
      .record({ shape: shapeA(1, 4, 4), seed: seedA })
      .chain((r) => dim(-r.shape.length, r.shape.length - 1).map((axis) => ({ ...r, axis })))
      .map(({ shape, axis, seed }) => ({
        label: `x ${showShape(shape)}, axis ${axis}`,
        seed,
        inputs: { x: f32In(shape, uniform(-3, 3)) },
        build: (t: CaseInputs) => (name === "softmax" ? op.softmax : op.logSoftmax)(t.f("x"), axis),
      })),
  };
}

export const bnShapeA = fc.record({ n: dim(1, 3), c: dim(1, 3), h: dim(1, 3), w: dim(1, 3), eps: fc.constantFrom(1e-5, 0.1), seed: seedA });

const normChecks: OpCheck[] = [
  maxPoolCheck(false),
  maxPoolCheck(true),
  resizeCheck("resize", true),
  resizeCheck("resize", false),
  resizeCheck("resizeGrad", true),
  resizeCheck("resizeGrad", false),
  softmaxCheck("softmax"),
  softmaxCheck("logSoftmax"),
  {
    name: "batchNormEval",
    op: "batchNormEval",
    cases: bnShapeA.map((r) => ({
      label: `x [${r.n},${r.c},${r.h},${r.w}], eps ${r.eps}`,
      seed: r.seed,
      inputs: {
        x: f32In([r.n, r.c, r.h, r.w], standard),
        weight: f32In([r.c], standard),
        bias: f32In([r.c], standard),
        mean: f32In([r.c], standard),
        var: f32In([r.c], uniform(0.3, 2)),
      },
      build: (t) => op.batchNormEval(t.f4("x"), t.f1("weight"), t.f1("bias"), t.f1("mean"), t.f1("var"), r.eps),
    })),
  },
  {
    name: "batchNormTrain",
    op: "batchNormTrain",
    // Distinct values keep each channel's variance at least spacing^2 / 16, away from the eps floor.
    cases: bnShapeA
      .filter((r) => r.n * r.h * r.w >= 2)
      .map((r) => ({
        label: `x [${r.n},${r.c},${r.h},${r.w}], eps ${r.eps}`,
        seed: r.seed,
        inputs: { x: f32In([r.n, r.c, r.h, r.w], distinct(0.3)), weight: f32In([r.c], standard), bias: f32In([r.c], standard) },
        build: (t) => op.batchNormTrain(t.f4("x"), t.f1("weight"), t.f1("bias"), r.eps),
      })),
  },
  {
    name: "matmul",
    op: "matmul",
    cases: fc.record({ m: dim(1, 4), k: dim(1, 4), n: dim(1, 4), seed: seedA }).map((r) => ({
      label: `[${r.m},${r.k}] x [${r.k},${r.n}]`,
      seed: r.seed,
      inputs: { a: f32In([r.m, r.k], standard), b: f32In([r.k, r.n], standard) },
      build: (t) => op.matmul(t.f2("a"), t.f2("b")),
    })),
  },
  {
    name: "softmaxCrossEntropy",
    op: "softmaxCrossEntropy",
    // Ignore rates 0, some, and all (the loss and its gradient are then exactly 0).
    cases: fc
      .record({
        n: dim(1, 2),
        classes: dim(1, 4),
        spatial: shapeA(0, 2, 3),
        ignoreIndex: fc.constantFrom(255, -100, 1),
        ignoreRate: fc.constantFrom(0, 0.3, 1),
        seed: seedA,
      })
      .map((r) => ({
        label: `logits [${r.n},${r.classes},${r.spatial}], ignoreIndex ${r.ignoreIndex}, ignore rate ${r.ignoreRate}`,
        seed: r.seed,
        inputs: {
          logits: f32In([r.n, r.classes, ...r.spatial], uniform(-3, 3)),
          labels: { shape: [r.n, ...r.spatial], dtype: "i32", dist: { kind: "labels", classes: r.classes, ignoreIndex: r.ignoreIndex, ignoreRate: r.ignoreRate }, wrt: false },
        },
        build: (t) => op.softmaxCrossEntropy(t.f("logits"), t.i("labels"), { ignoreIndex: r.ignoreIndex }),
      })),
  },
];

/** Composites: losses, the BN layer with its running statistics, and the optimizer updates. */

const byOp = (checks: readonly OpCheck[], name: CaseOp): OpCheck[] => checks.filter((c) => c.op === name);
const listed = [...viewChecks, ...convChecks, ...depthwiseChecks, ...normChecks];

/** The generators of every op whose record asks for cases, keyed by op. */
export const CASES: { readonly [K in CaseOp]: readonly OpCheck[] } = {
  where: [whereCheck],
  sum: [reduceCheck("sum", standard)],
  mean: [reduceCheck("mean", standard)],
  max: [reduceCheck("max", distinct())],
  reshape: byOp(listed, "reshape"),
  permute: byOp(listed, "permute"),
  broadcastTo: byOp(listed, "broadcastTo"),
  slice: byOp(listed, "slice"),
  pad: byOp(listed, "pad"),
  concat: byOp(listed, "concat"),
  conv2d: byOp(listed, "conv2d"),
  conv2dInputGrad: byOp(listed, "conv2dInputGrad"),
  conv2dWeightGrad: byOp(listed, "conv2dWeightGrad"),
  depthwiseConv2d: byOp(listed, "depthwiseConv2d"),
  depthwiseConv2dInputGrad: byOp(listed, "depthwiseConv2dInputGrad"),
  depthwiseConv2dWeightGrad: byOp(listed, "depthwiseConv2dWeightGrad"),
  maxPool2d: byOp(listed, "maxPool2d"),
  resize: byOp(listed, "resize"),
  resizeGrad: byOp(listed, "resizeGrad"),
  softmax: byOp(listed, "softmax"),
  logSoftmax: byOp(listed, "logSoftmax"),
  batchNormEval: byOp(listed, "batchNormEval"),
  batchNormTrain: byOp(listed, "batchNormTrain"),
  matmul: byOp(listed, "matmul"),
  softmaxCrossEntropy: byOp(listed, "softmaxCrossEntropy"),
};
