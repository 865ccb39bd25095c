// Small training programs made of AdaptSegNet's building blocks (examples/adaptsegnet):
// one DeepLab-v2 bottleneck with an SGD step, and one FCDiscriminator with an Adam step.
// Each has a "forward" phase (the block alone) and a "step" phase (forward, loss, backward,
// update), so that kernel counts can be stated per phase.

import * as d from "../../dsl/index";
import type { F32, I32, Program } from "../../dsl/index";
import * as losses from "../../dsl/losses";
import * as optim from "../../dsl/optim";
import { bottleneck, deeplabSpec, discriminator, discriminatorSpec } from "../../examples/adaptsegnet/networks";

/** Input [1, 8, 9, 11] -> output [1, 16, 5, 6]: layer2.0 of a width-2 DeepLab. */
export const BOTTLENECK_INPUT = [1, 8, 9, 11] as const;

/**
 * layer2.0 of DeepLab-v2 at width 2: 1x1 stride-2 conv (8 -> 4), 3x3 conv, 1x1 conv (4 -> 16),
 * and the downsample branch (1x1 stride-2 conv 8 -> 16 with its BN), residual add, ReLU.
 * The step's loss is mean(y * target) (so dy is a random map), the update SGD with momentum
 * and weight decay on the four conv weights (DeepLab's BN affine parameters are frozen), and
 * in train mode the BN running statistics are updated too.
 */
export function bottleneckProgram(mode: "train" | "eval"): Program {
  const spec = deeplabSpec({ blocks: [1, 1, 1, 1], width: 2, numClasses: 2, asppBranches: 2, heads: "single" }).layer2[0]!;
  const G = d.declareModel("G", spec);
  const x = d.input("x", BOTTLENECK_INPUT, "f32") as F32<4>;
  const block = (thread: d.StateThread) => bottleneck(x, G.p, { stride: 2, dilation: 1 }, { mode, thread });
  const y = block(new d.StateThread()); // the forward phase does not update the statistics
  const thread = new d.StateThread();
  const target = d.input("target", y.shape, "f32") as F32<4>;
  const loss = d.mean(d.mul(block(thread), target));
  const iteration = d.input("iteration", [], "i32") as I32<0>;
  const lr = optim.polyLearningRate(0.05, iteration, 100, 0.9);
  const trained = d.trainable(G.entries);
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  const sgd = optim.sgd("sgd_G", trained.map((entry, i) => ({ entry, grad: grads[i]! })), { lr: () => lr, momentum: 0.9, weightDecay: 5e-4 });
  return d.defineProgram({
    name: `bottleneck-${mode}`,
    params: [...G.entries, ...sgd.state],
    phases: [
      { name: "forward", outputs: { y }, updates: {} },
      { name: "step", outputs: { loss }, updates: { ...sgd.updates, ...thread.updates() } },
    ],
  });
}

/** Input [1, 5, 35, 37]: 5 classes; the five 4x4 stride-2 convs give 17x18, 8x9, 4x4, 2x2, 1x1. */
export const DISCRIMINATOR_INPUT = [1, 5, 35, 37] as const;

/**
 * An FCDiscriminator (ndf 4: 4-8-16-32-1 channels, no upsampling, as the official code) and
 * one Adam step on BCE-with-logits against the "target" domain label 1.
 */
export function discriminatorProgram(): Program {
  const cfg = { inChannels: DISCRIMINATOR_INPUT[1], ndf: 4, upsample: false };
  const D = d.declareModel("D", discriminatorSpec(cfg));
  const x = d.input("x", DISCRIMINATOR_INPUT, "f32") as F32<4>;
  const logits = discriminator(x, D.p, cfg);
  const loss = losses.bceWithLogits(discriminator(x, D.p, cfg), 1);
  const iteration = d.input("iteration", [], "i32") as I32<0>;
  const trained = d.trainable(D.entries);
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  const adam = optim.adam("adam_D", trained.map((entry, i) => ({ entry, grad: grads[i]! })), {
    lr: optim.polyLearningRate(1e-3, iteration, 100, 0.9),
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    step: d.add(d.cast(iteration, "f32"), 1),
  });
  return d.defineProgram({
    name: "discriminator",
    params: [...D.entries, ...adam.state],
    phases: [
      { name: "forward", outputs: { logits }, updates: {} },
      { name: "step", outputs: { loss }, updates: adam.updates },
    ],
  });
}
