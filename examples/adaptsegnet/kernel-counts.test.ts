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

  it("eval-mode BN step: forward, loss, backward and SGD in 18 kernels", () => {
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
      // mean's reshape to a scalar is a view, which E1 does not fuse through); bn3's and the
      // downsample BN's scaled gradients, operands of conv3's and the downsample's gradient
      // templates (M3). The ReLU-masked output gradient both read is cheap (views are free in
      // M4's count), so each recomputes it.
      pointwise: 7,
    });
  });

  it("train-mode BN forward: batch statistics keep BN out of the conv epilogues", () => {
    expect(kernelsOf(bottleneckProgram("train"), "forward")).toEqual({
      conv2d: 4,
      // Per BN the mean, then the variance of the centred values, in one kernel (R1).
      sum: 4,
      // bn1+relu and bn2+relu (operands of conv2 and conv3, M3), and the block output
      // (bn3 + bn_ds + add + relu), which would read 10 buffers (both convolutions, both BNs'
      // statistics and affine parameters): M5 stores bn3's output first.
      pointwise: 4,
    });
  });

  it("train-mode BN step: forward, running statistics, loss, backward and SGD in 40 kernels", () => {
    expect(kernelsOf(bottleneckProgram("train"), "step")).toEqual({
      conv2d: 4,
      // The forward's 4 (mean and variance per BN, R1; the running statistics share them: nn.
      // batchNorm2d writes them as BN's decomposition does); the loss; the BN backward's 7
      // means (mean(dy) and mean(dy * xhat) per BN, mean(dy) shared by bn3 and bn_ds, which
      // receive the same gradient) in 4 kernels (R1 pairs them).
      sum: 9,
      conv2dInputGrad: 2,
      conv2dWeightGrad: 4,
      // Forward: 4 as in the forward phase (the normalised activations are recomputed by their
      // readers, not stored); running statistics: one kernel per BN, the new mean and variance
      // as siblings (S1); the loss scalar; 4 BN-backward input gradients (they need reductions
      // of the gradient, so they are not epilogues), each in two kernels (M5: one expression
      // would read more than 7 buffers, so its centred gradient is stored first); 4 parameter
      // updates.
      pointwise: 21,
    });
  });

  it("dispatches per phase and template (eval and train BN)", () => {
    // conv2d: per kernel a weight packing and the convolution: 4 x 2. The block's activations
    // are too small for a channel packing to pay (packingPays): every operand is read in
    // place. conv2dInputGrad (conv2, conv3): weight packing and kernel (2 x 2).
    // conv2dWeightGrad: 4 kernels. No reduction here is long enough to split.
    expect(dispatchesOf(bottleneckProgram("eval"))).toEqual({
      forward: { total: 8, byTemplate: { conv2d: 8 } },
      step: { total: 24, byTemplate: { conv2d: 8, sum: 1, pointwise: 7, conv2dInputGrad: 4, conv2dWeightGrad: 4 } },
    });
    expect(dispatchesOf(bottleneckProgram("train"))).toEqual({
      forward: { total: 16, byTemplate: { conv2d: 8, sum: 4, pointwise: 4 } },
      step: { total: 46, byTemplate: { conv2d: 8, sum: 9, pointwise: 21, conv2dInputGrad: 4, conv2dWeightGrad: 4 } },
    });
  });
});

describe("kernel counts of an FCDiscriminator with an Adam step", () => {
  it("forward: five conv kernels, the LeakyReLUs are conv epilogues", () => {
    expect(kernelsOf(discriminatorProgram(), "forward")).toEqual({ conv2d: 5 });
  });

  it("step: forward, BCE loss, backward and Adam in 44 kernels", () => {
    expect(kernelsOf(discriminatorProgram(), "step")).toEqual({
      conv2d: 5,
      // The loss, and the 5 bias gradients (sum of dy over n, h, w).
      sum: 6,
      // Into the inputs of the classifier and conv4..conv2; none into x (a data input).
      conv2dInputGrad: 4,
      // Stored plain: Adam's m and v both read the gradient, so it is no epilogue.
      conv2dWeightGrad: 5,
      // Adam: per parameter, m and v in one kernel (sibling fusion, S1: one shape, both read
      // the gradient and their old state) and p in a second (with m, v, p, the gradient and
      // the shared scalars one kernel would bind more than WebGPU's default 8 buffers), for 5
      // weights and 5 biases (20); 4 scalars shared by every update (the step count and the
      // bias corrections) in one kernel (S1 moves scalars too); the loss scalar; the gradient
      // of the 1x1 output map (2 kernels: one intermediate is read twice). The LeakyReLU
      // backward, dy * (y > 0 ? 1 : 0.2), reads dy once and is each input-gradient's epilogue (E1).
      pointwise: 24,
    });
  });

  it("dispatches per phase and template", () => {
    // conv2d: weight packing and convolution: 2 x 5 (operands this small are read in place,
    // packingPays). conv2dInputGrad (conv2..classifier): weight packing and kernel: 2 x 4.
    // conv2dWeightGrad: 5 kernels.
    expect(dispatchesOf(discriminatorProgram())).toEqual({
      forward: { total: 10, byTemplate: { conv2d: 10 } },
      step: { total: 53, byTemplate: { pointwise: 24, conv2d: 10, sum: 6, conv2dInputGrad: 8, conv2dWeightGrad: 5 } },
    });
  });
});
