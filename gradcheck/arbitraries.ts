// fast-check arbitraries for the shapes and attributes of gradient-check cases.

import fc from "fast-check";
import { type Dist, type Shape, convOutSize } from "../dsl/index";
import type { InputSpec } from "./harness";

export const f32In = (shape: Shape, dist: Dist, wrt = true): InputSpec => ({ shape, dtype: "f32", dist, wrt });


export const dim = (lo: number, hi: number) => fc.integer({ min: lo, max: hi });
export const seedA = fc.nat();
export const shapeA = (minRank: number, maxRank: number, maxDim: number) =>
  fc.array(dim(1, maxDim), { minLength: minRank, maxLength: maxRank });

/** A shape that broadcasts to `full`: some leading axes dropped and some axes set to 1. */
export const broadcastVariantA = (full: Shape) =>
  fc
    .tuple(dim(0, full.length), fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }))
    .map(([drop, ones]) => full.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

/** Two shapes that broadcast together (NumPy rules), often differently. */
export const broadcastPairA = shapeA(0, 4, 3).chain((full) => fc.tuple(broadcastVariantA(full), broadcastVariantA(full)));

/** A subset of the axes of a rank, possibly written with negative indices. */
export const axesA = (rank: number) =>
  fc
    .subarray(Array.from({ length: rank }, (_, i) => i))
    .chain((axes) => fc.tuple(...axes.map((a) => fc.constantFrom(a, a - rank))).map((xs) => [...xs]));

export const pairA = (arb: fc.Arbitrary<number>) => fc.tuple(arb, arb);

/** Dilations used by DeepLab's ASPP (6) and the residual layers (2, 4), and 1 and 3. */
export const dilationA = fc.constantFrom(1, 2, 3, 4, 6);

export interface ConvCase {
  readonly n: number;
  readonly c: number;
  readonly o: number;
  readonly size: readonly [number, number];
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly out: readonly [number, number];
  readonly seed: number;
}

/**
 * Convolutions with strides 1-2, dilations up to 6 and padding up to max(2, dilation) (the
 * "same" padding of a dilated 3x3 is its dilation), whose windows fit the padded input.
 */
export const convCaseA: fc.Arbitrary<ConvCase> = fc
  .record({
    n: dim(1, 2),
    c: dim(1, 3),
    o: dim(1, 3),
    size: pairA(dim(1, 6)),
    kernel: pairA(dim(1, 3)),
    stride: pairA(dim(1, 2)),
    padFraction: pairA(fc.double({ min: 0, max: 1, noNaN: true })),
    dilation: pairA(dilationA),
    seed: seedA,
  })
  .map(({ padFraction, ...r }) => {
    const padding = [0, 1].map((a) => Math.round(padFraction[a]! * Math.max(2, r.dilation[a]!))) as [number, number];
    const out = [0, 1].map((a) => convOutSize(r.size[a]!, r.kernel[a]!, r.stride[a]!, padding[a]!, r.dilation[a]!)) as [number, number];
    return { ...r, padding, out };
  })
  .filter((r) => r.out[0] >= 1 && r.out[1] >= 1);

/**
 * Depthwise convolutions (MobileNetV2's 3x3 stages and their dilated DeepLab form): strides 1-2,
 * dilations 1, 2 and 4, padding up to max(2, dilation); `o` equals `c` (one filter per channel).
 */
export const depthwiseCaseA: fc.Arbitrary<ConvCase> = fc
  .record({
    n: dim(1, 2),
    c: dim(1, 3),
    size: pairA(dim(1, 7)),
    kernel: pairA(dim(1, 3)),
    stride: pairA(dim(1, 2)),
    padFraction: pairA(fc.double({ min: 0, max: 1, noNaN: true })),
    dilation: pairA(fc.constantFrom(1, 2, 4)),
    seed: seedA,
  })
  .map(({ padFraction, ...r }) => {
    const padding = [0, 1].map((a) => Math.round(padFraction[a]! * Math.max(2, r.dilation[a]!))) as [number, number];
    const out = [0, 1].map((a) => convOutSize(r.size[a]!, r.kernel[a]!, r.stride[a]!, padding[a]!, r.dilation[a]!)) as [number, number];
    return { ...r, o: r.c, padding, out };
  })
  .filter((r) => r.out[0] >= 1 && r.out[1] >= 1);

export const convLabel = (r: ConvCase) =>
  `N${r.n} C${r.c} O${r.o} size ${r.size} kernel ${r.kernel} stride ${r.stride} padding ${r.padding} dilation ${r.dilation}`;

// ---------------------------------------------------------------------------------------------
// The rows