// How many kernels AdaptSegNet's blocks compile to, so that a fusion regression fails.
//
// Two levels:
//  - kernels: the fusion plan (one kernel per fused group; codegen/testing: kernelPlans).
//    These change only when fusion changes; each expectation is derived in a comment.
//  - dispatches: what the compiled module runs per phase. A template may take several
//    dispatches for one kernel (two-stage reductions, split-K weight-gradients, weight
//    packing), so these are the numbers observed with today's templates; update them when a
//    template changes its stages, and read a change in the kernel counts above as a fusion
//    change.
// Programs: codegen/testing/blocks.ts (layer2.0 of DeepLab-v2 with an SGD step; an
// FCDiscriminator with an Adam step). Compiling only: no GPU needed.

import { describe, expect, it } from "vitest";
import { compileProgram } from "../../codegen/compile";
import { bottleneckProgram, discriminatorProgram } from "../../codegen/testing/blocks";
import { dispatchCounts, kernelCounts, kernelPlans } from "../../codegen/testing/differential";

const kernelsOf = (p: ReturnType<typeof bottleneckProgram>, phase: string) => kernelCounts(kernelPlans(p).get(phase)!);
/** Per phase: the total, and the dispatches by template. */
const dispatchesOf = (p: ReturnType<typeof bottleneckProgram>) => Object.fromEntries(dispatchCounts(compileProgram(p)));

describe("kernel counts of a DeepLab-v2 bottleneck (layer2.0, with the downsample branch)", () => {
  it("eval-mode BN forward: exactly four conv kernels; BN affines, the residual add and the ReLUs are conv epilogues", () => {
    // conv1+bn1+relu, conv2+bn2+relu, conv3 (stored: read by the block output), and the
    // downsample conv whose epilogue is bn_ds + bn3(conv3) + add + relu (E1 fuses the
    // later-scheduled of the two convs the sum reads). No pointwise kernel at all.
    expect(kernelsOf(bottleneckProgram("eval"), "forward")).toEqual({ conv2d: 4 });
  });

  it("eval-mode BN step: forward, loss, backward and SGD in 19 kernels", () => {
    expect(kernelsOf(bottleneckProgram("eval"), "step")).toEqual({
      // The forward pass again (phases share nothing).
      conv2d: 4,
      // The loss: mean(y * target) as a sum with a 1/n epilogue.
      sum: 1,
      // Into conv3's and conv2's inputs, each with the ReLU mask and the BN affine of the
      // layer below as its epilogue. None into x (a data input): conv1 and the downsample
      // conv need no input-gradient.
      conv2dInputGrad: 2,
      // One per conv weight, each with its momentum-buffer update fused as the epilogue.
      conv2dWeightGrad: 4,
      // 4 parameter updates (p - lr * buf, reading the stored buffer); the loss scalar (the
      // mean's reshape to a scalar is a view, which E1 does not fuse through); the ReLU-masked
      // output gradient (read by both branches' BN backward); bn3's and the downsample BN's
      // scaled gradients, operands of conv3's and the downsample's gradient templates (M3).
      pointwise: 8,
    });
  });

  it("train-mode BN forward: batch statistics keep BN out of the conv epilogues", () => {
    expect(kernelsOf(bottleneckProgram("train"), "forward")).toEqual({
      conv2d: 4,
      // Two reductions per BN (the mean, then the variance of the centred values).
      sum: 8,
      // bn1+relu and bn2+relu (operands of conv2 and conv3, M3), and the block output
      // (bn3 + bn_ds + add + relu).
      pointwise: 3,
    });
  });

  it("train-mode BN step: forward, running statistics, loss, backward and SGD in 57 kernels", () => {
    expect(kernelsOf(bottleneckProgram("train"), "step")).toEqual({
      conv2d: 4,
      // 8 batch statistics; 4 unbiased variances for the running statistics (nn.batchNorm2d
      // writes them differently from BN's own variance, so CSE does not share them); the
      // loss; 7 BN-backward means (mean(dy) and mean(dy * xhat) per BN, mean(dy) shared by
      // bn3 and bn_ds, which receive the same gradient).
      sum: 20,
      conv2dInputGrad: 2,
      conv2dWeightGrad: 4,
      // Forward: 4 normalised activations (read by the forward and the backward pass) and 3
      // as in the forward phase; running statistics: 3 per BN (new mean, centred values,
      // new variance); the loss scalar; the masked output gradient; 4 BN-backward input
      // gradients (they need reductions of the gradient, so they are not epilogues); 4
      // parameter updates. Less 2: two running-statistics updates are stored by an earlier
      // kernel updating another statistic of the same shape, whose inputs are ready by then
      // (sibling fusion, S1).
      pointwise: 27,
    });
  });

  it("dispatches per phase and template (eval and train BN)", () => {
    // conv2d: per kernel a weight packing and the convolution, plus a channel packing of each
    // computed input (conv2's and conv3's; x, a data input read by conv1 and the downsample
    // conv, is packed once per phase): 4 + 4 + 3. conv2dInputGrad (conv2, conv3): weight
    // packing, kernel, and the channel packing of dy it shares with the weight-gradient
    // (2 x 3). conv2dWeightGrad: 4 kernels, the packings of conv2's and conv3's inputs (x's is
    // the forward's), and of dy for conv1 and the downsample conv, which have no input-gradient
    // to share it with: 4 + 2 + 2. No reduction here is long enough to split.
    expect(dispatchesOf(bottleneckProgram("eval"))).toEqual({
      forward: { total: 11, byTemplate: { conv2d: 11 } },
      step: { total: 34, byTemplate: { conv2d: 11, sum: 1, pointwise: 8, conv2dInputGrad: 6, conv2dWeightGrad: 8 } },
    });
    expect(dispatchesOf(bottleneckProgram("train"))).toEqual({
      forward: { total: 22, byTemplate: { conv2d: 11, sum: 8, pointwise: 3 } },
      step: { total: 72, byTemplate: { conv2d: 11, sum: 20, pointwise: 27, conv2dInputGrad: 6, conv2dWeightGrad: 8 } },
    });
  });
});

describe("kernel counts of an FCDiscriminator with an Adam step", () => {
  it("forward: five conv kernels, the LeakyReLUs are conv epilogues", () => {
    expect(kernelsOf(discriminatorProgram(), "forward")).toEqual({ conv2d: 5 });
  });

  it("step: forward, BCE loss, backward and Adam in 34 kernels", () => {
    expect(kernelsOf(discriminatorProgram(), "step")).toEqual({
      conv2d: 5,
      // The loss, and the 5 bias gradients (sum of dy over n, h, w).
      sum: 6,
      // Into the inputs of the classifier and conv4..conv2; none into x (a data input).
      conv2dInputGrad: 4,
      // Stored plain: Adam's m and v both read the gradient, so it is no epilogue.
      conv2dWeightGrad: 5,
      // Adam: m, v and p in one kernel per parameter (sibling fusion, S1: one shape; m and v
      // read the gradient and their old state, p reads the new m and v at its own index, from
      // registers), for 5 weights and 5 biases (10); 4 scalars shared by every update (the
      // step count and the bias corrections) in one kernel (S1 moves scalars too); the loss
      // scalar; the gradient of the 1x1 output
      // map (2 kernels: one intermediate is read twice). The LeakyReLU backward,
      // dy * (y > 0 ? 1 : 0.2), reads dy once and is each input-gradient's epilogue (E1).
      pointwise: 14,
    });
  });

  it("dispatches per phase and template", () => {
    // conv2d: weight packing, channel packing of the input, convolution: 3 x 5.
    // conv2dInputGrad (conv2..classifier): weight packing, kernel, and the channel packing of
    // dy it shares with the weight-gradient: 3 x 4. conv2dWeightGrad: 5 kernels, the packings
    // of conv2..classifier's inputs (x's, a data input, is the forward's), and conv1's dy
    // (no input-gradient into x to share it with): 5 + 4 + 1.
    expect(dispatchesOf(discriminatorProgram())).toEqual({
      forward: { total: 15, byTemplate: { conv2d: 15 } },
      step: { total: 57, byTemplate: { pointwise: 14, conv2d: 15, sum: 6, conv2dInputGrad: 12, conv2dWeightGrad: 10 } },
    });
  });
});
