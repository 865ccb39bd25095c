// The training step of output-space domain adaptation (Tsai et al., CVPR 2018) for any
// segmentation network (network.ts), as one DSL program, in the order of the official script
// (docs: adaptsegnet.md §3.4): source segmentation loss; the target forward pass and its
// adversarial loss through frozen discriminators; the discriminators' losses on detached source
// and target predictions; then SGD for the network and Adam for each discriminator, all with
// gradients of the pre-step parameters. The objective picks the variant: adversarial (one
// discriminator per head: multi-level with an auxiliary head, single-level without), entropy
// minimisation (MinEnt), or supervised on one domain (source-only, oracle).
//
// The program keeps the trainable-program contract (format/program-contract.ts): inputs
// iteration, source_image/source_label and/or target_image(/target_label), scalar loss outputs.

import * as d from "../dsl/index";
import type { F32, I32, ParamEntry, Program, SpecTree, Tensor } from "../dsl/index";
import * as losses from "../dsl/losses";
import * as optim from "../dsl/optim";
import { type FCDiscriminatorConfig, fcDiscriminator, fcDiscriminatorSpec } from "./discriminator";
import { type HyperparameterKey, type Hyper, declareHyperparameters, hyperparameterKeysFor } from "./hyperparameters";
import type { SegmentationNetwork } from "./network";

/** What the discriminators see of a prediction. */
export type DiscriminatorInput = "softmax" | "self-information" | "features";

export type Objective =
  /** Supervised on one domain only: source-only (source_image/label), oracle (target_image/label). */
  | { readonly kind: "supervised"; readonly domain: "source" | "target" }
  /** MinEnt (ADVENT): the entropy of target predictions, no discriminator. */
  | { readonly kind: "entropy" }
  /** Adversarial output-space adaptation: vanilla GAN (BCE) or LS-GAN (MSE). */
  | {
      readonly kind: "adversarial";
      readonly input: DiscriminatorInput;
      readonly gan: "Vanilla" | "LS";
      readonly discriminator: Omit<FCDiscriminatorConfig, "inChannels">;
      /** Feature-level only: upsample the features to the image size first. */
      readonly featureUpsample?: boolean;
    };

export interface StepSettings {
  readonly numClasses: number;
  /** [H, W] of source and target images (and labels). */
  readonly sourceSize: readonly [number, number];
  readonly targetSize: readonly [number, number];
  readonly ignoreLabel: number;
  /** BN in the training forward passes: batch statistics (the official code) or running ones. */
  readonly bnMode: "train" | "eval";
  readonly objective: Objective;
  /** The numeric settings, run-time hyperparameters with these defaults (hyperparameters.ts). */
  readonly values: Readonly<Record<HyperparameterKey, number>>;
  readonly optimizer: {
    /** "head-10x": entries in group "head" learn 10x faster (DeepLab); "single": one group (VGG). */
    readonly lrGroups: "head-10x" | "single";
    /** How often the official optimizer visits a weight (§1.9); undefined: once. */
    readonly visits?: (key: string) => number;
    readonly adamEps: "pytorch1" | "pytorch0.4";
  };
  /**
   * Run the forward passes under the scopes "source" and "target" (kernel names then say which
   * pass they belong to). The VGG programs predate the scopes and keep their kernel names.
   */
  readonly scopeForwardPasses: boolean;
  /** Recorded in the program (the trainer and checkpoints read numClasses and the rest). */
  readonly config: Readonly<Record<string, unknown>>;
}

const SOURCE = 0;
const TARGET = 1;

const up = (x: F32<4>, size: readonly [number, number]) => d.resize(x, [size[0], size[1]], { alignCorners: true });

/** The adversarial loss against a constant domain label: BCE-with-logits, or MSE for LS-GAN. */
const ganLoss = (gan: "Vanilla" | "LS", logits: F32, label: 0 | 1): F32<0> => (gan === "LS" ? losses.mse(logits, label) : losses.bceWithLogits(logits, label));

/** The poly learning rates and the 1-based Adam step of iteration i (the program's input). */
function schedules(hp: Hyper, iteration: I32<0>) {
  const poly = (base: F32<0>) => optim.polyLearningRate(base, iteration, hp("numSteps"), hp("power"));
  return {
    lrG: poly(hp("learningRate")),
    // A function: only adversarial steps have (and read) learningRateD.
    lrD: () => poly(hp("learningRateD")),
    step: d.add(d.cast(iteration, "f32"), 1),
  };
}

/** SGD with momentum and weight decay on the parameters the loss depends on. */
function sgdFor(s: StepSettings, hp: Hyper, model: d.Model<unknown>, loss: F32<0>, lr: F32<0>): optim.OptimizerResult {
  if (s.optimizer.lrGroups === "single") {
    // VGG's optimizer has one learning-rate group (§1.11).
    const trained = d.trainable(model.entries);
    const grads = d.grad(loss, trained.map((e) => e.tensor));
    return optim.sgd(`sgd_${model.name}`, trained.map((entry, i) => ({ entry, grad: grads[i]! })), { lr: () => lr, momentum: hp("momentum"), weightDecay: hp("weightDecay") });
  }
  const trained = d.trainable(model.entries).filter((e) => d.dependsOn(loss, e.tensor));
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  const headLr = d.mul(lr, 10);
  const visits = s.optimizer.visits;
  return optim.sgd(`sgd_${model.name}`, trained.map((entry, i) => ({ entry, grad: grads[i]! })), {
    lr: (e) => (e.spec.group === "head" ? headLr : lr),
    momentum: hp("momentum"),
    weightDecay: hp("weightDecay"),
    visits: visits ? (e) => visits(e.key) : undefined,
    weightDecayInPlace: true,
  });
}

function adamFor(s: StepSettings, hp: Hyper, model: d.Model<unknown>, loss: F32<0>, lr: F32<0>, step: F32<0>): optim.OptimizerResult {
  const trained = d.trainable(model.entries);
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  return optim.adam(`adam_${model.name}`, trained.map((entry, i) => ({ entry, grad: grads[i]! })), {
    lr,
    beta1: hp("adamBeta1"),
    beta2: hp("adamBeta2"),
    eps: hp("adamEpsilon"),
    step,
    epsPlacement: s.optimizer.adamEps,
  });
}

/** Builds the training step of `network` under `settings` as one phase named "step". */
export function buildAdaptationStep<T extends SpecTree>(name: string, network: SegmentationNetwork<T>, s: StepSettings): Program {
  const iteration = d.input("iteration", [], "i32");
  const { h, get: hp } = declareHyperparameters(hyperparameterKeysFor(s.objective.kind, network.heads), s.values);
  const { lrG, lrD, step } = schedules(hp, iteration);
  const thread = new d.StateThread();
  const ctx = { mode: s.bnMode, thread };
  const outputs: Record<string, Tensor> = {};
  const updates: Record<string, Tensor> = {};
  const params: ParamEntry[] = [];
  const merge = (r: optim.OptimizerResult) => {
    params.push(...r.state);
    Object.assign(updates, r.updates);
  };
  const finish = () => {
    Object.assign(updates, thread.updates());
    return d.defineProgram({ name, params, phases: [{ name: "step", outputs, updates }], config: { ...s.config }, hyperparameters: h });
  };
  const scoped = <R>(scope: string, body: () => R): R => (s.scopeForwardPasses ? d.withScope(scope, body) : body());
  const G = d.declareModel("G", network.spec);
  params.push(...G.entries);

  // The supervised domain: its image, label and forward pass (BN forward pass #1).
  const supervised = s.objective.kind === "supervised" ? s.objective.domain : "source";
  const [sh, sw] = supervised === "source" ? s.sourceSize : s.targetSize;
  const image = d.input(`${supervised}_image`, [1, 3, sh, sw], "f32");
  const label = d.input(`${supervised}_label`, [1, sh, sw], "i32");
  const src = scoped(supervised, () => network.forward(image, G.p, ctx));
  const pred2 = up(src.main, [sh, sw]);
  const pred1 = src.aux === undefined ? undefined : up(src.aux, [sh, sw]);
  const lossSeg1 = pred1 === undefined ? undefined : losses.crossEntropy(pred1, label, s.ignoreLabel);
  const lossSeg2 = losses.crossEntropy(pred2, label, s.ignoreLabel);
  let lossG: F32<0> = lossSeg1 === undefined ? lossSeg2 : d.add(lossSeg2, d.mul(lossSeg1, hp("lambdaSeg")));
  Object.assign(outputs, lossSeg1 === undefined ? { loss_seg2: lossSeg2 } : { loss_seg1: lossSeg1, loss_seg2: lossSeg2 });

  if (s.objective.kind === "supervised") {
    merge(sgdFor(s, hp, G, lossG, lrG));
    return finish();
  }

  // The target forward pass (BN forward pass #2).
  const [ht, wt] = s.targetSize;
  const tgtImage = d.input("target_image", [1, 3, ht, wt], "f32");
  const tgt = scoped("target", () => network.forward(tgtImage, G.p, ctx));
  const predT2 = up(tgt.main, [ht, wt]);
  const predT1 = tgt.aux === undefined ? undefined : up(tgt.aux, [ht, wt]);

  if (s.objective.kind === "entropy") {
    if (predT1 === undefined) throw new d.DslError("entropy minimisation weights an auxiliary head: the network has none");
    const lossEnt1 = losses.entropyLoss(d.softmax(predT1, 1));
    const lossEnt2 = losses.entropyLoss(d.softmax(predT2, 1));
    lossG = d.add(lossG, d.add(d.mul(lossEnt1, hp("lambdaEntAux")), d.mul(lossEnt2, hp("lambdaEntMain"))));
    merge(sgdFor(s, hp, G, lossG, lrG));
    Object.assign(outputs, { loss_ent1: lossEnt1, loss_ent2: lossEnt2 });
    return finish();
  }
  return adversarialTail(s, { network, G, hp, lrG, lrD, step, params, merge, outputs, finish }, { pred1, pred2, predT1, predT2, srcFeatures: src.features, tgtFeatures: tgt.features, lossG });
}

interface Tail<T extends SpecTree> {
  readonly network: SegmentationNetwork<T>;
  readonly G: d.Model<T>;
  readonly hp: Hyper;
  readonly lrG: F32<0>;
  readonly lrD: () => F32<0>;
  readonly step: F32<0>;
  /** The program's parameters, in slot order: the discriminators join after G. */
  readonly params: ParamEntry[];
  readonly merge: (r: optim.OptimizerResult) => void;
  readonly outputs: Record<string, Tensor>;
  readonly finish: () => Program;
}

interface Predictions {
  readonly pred1: F32<4> | undefined;
  readonly pred2: F32<4>;
  readonly predT1: F32<4> | undefined;
  readonly predT2: F32<4>;
  readonly srcFeatures: F32<4> | undefined;
  readonly tgtFeatures: F32<4> | undefined;
  readonly lossG: F32<0>;
}

/** One discriminator per head: G's adversarial loss, the discriminators' losses, the optimizers. */
function adversarialTail<T extends SpecTree>(s: StepSettings, t: Tail<T>, p: Predictions): Program {
  if (s.objective.kind !== "adversarial") throw new Error("adversarialTail: not an adversarial objective");
  const o = s.objective;
  const C = s.numClasses;
  const [ht, wt] = s.targetSize;
  const [hs, ws] = s.sourceSize;
  const featureLevel = o.input === "features";
  // What each discriminator sees: the class softmax of upsampled logits (AdvEnt: its weighted
  // self-information; feature-level: the network's features).
  const dIn = (logits: F32<4>) => {
    const q = d.softmax(logits, 1);
    return o.input === "self-information" ? losses.selfInformation(q) : q;
  };
  const features = (f: F32<4> | undefined): F32<4> => {
    if (f === undefined || t.network.featureChannels === undefined) throw new d.DslError("feature-level adaptation needs the network's features and featureChannels");
    return f;
  };
  const inChannels = featureLevel ? t.network.featureChannels ?? 0 : C;
  const dcfg: FCDiscriminatorConfig = { ...o.discriminator, inChannels };
  const d1cfg: FCDiscriminatorConfig = { ...dcfg, inChannels: C };
  const D1 = p.predT1 === undefined ? undefined : d.declareModel("D1", fcDiscriminatorSpec(d1cfg));
  const D2 = d.declareModel("D2", fcDiscriminatorSpec(dcfg));
  t.params.push(...(D1?.entries ?? []), ...D2.entries);
  const main = (logits: F32<4>, f: F32<4> | undefined, size: readonly [number, number]) =>
    featureLevel ? (o.featureUpsample ? up(features(f), size) : features(f)) : dIn(logits);

  // G's adversarial loss: target predictions should look like source (label 0) to frozen Ds.
  const advIn1 = p.predT1 === undefined ? undefined : dIn(p.predT1);
  const advIn2 = main(p.predT2, p.tgtFeatures, [ht, wt]);
  const lossAdv1 = advIn1 === undefined || D1 === undefined ? undefined : ganLoss(o.gan, fcDiscriminator(advIn1, D1.p, d1cfg), SOURCE);
  const lossAdv2 = ganLoss(o.gan, fcDiscriminator(advIn2, D2.p, dcfg), SOURCE);
  // A weight of 0 (single-level) is a multiplication by a run-time 0: D1 still trains on its own loss.
  const weighted2 = d.mul(lossAdv2, t.hp("lambdaAdvTarget2"));
  const lossG = d.add(p.lossG, lossAdv1 === undefined ? weighted2 : d.add(d.mul(lossAdv1, t.hp("lambdaAdvTarget1")), weighted2));
  Object.assign(t.outputs, lossAdv1 === undefined ? { loss_adv2: lossAdv2 } : { loss_adv1: lossAdv1, loss_adv2: lossAdv2 });

  // The discriminators on detached predictions: source (label 0) and target (label 1), each x1/2.
  const half = (x: F32<0>) => d.mul(x, 0.5);
  const detachedSrc2 = main(d.stopGradient(p.pred2), p.srcFeatures === undefined ? undefined : d.stopGradient(p.srcFeatures), [hs, ws]);
  const lossD1 =
    D1 === undefined || p.pred1 === undefined || advIn1 === undefined
      ? undefined
      : d.add(half(ganLoss(o.gan, fcDiscriminator(dIn(d.stopGradient(p.pred1)), D1.p, d1cfg), SOURCE)), half(ganLoss(o.gan, fcDiscriminator(d.stopGradient(advIn1), D1.p, d1cfg), TARGET)));
  const lossD2 = d.add(half(ganLoss(o.gan, fcDiscriminator(detachedSrc2, D2.p, dcfg), SOURCE)), half(ganLoss(o.gan, fcDiscriminator(d.stopGradient(advIn2), D2.p, dcfg), TARGET)));
  Object.assign(t.outputs, lossD1 === undefined ? { loss_D2: lossD2 } : { loss_D1: lossD1, loss_D2: lossD2 });

  // All optimizers step with gradients of the pre-step parameters.
  t.merge(sgdFor(s, t.hp, t.G, lossG, t.lrG));
  const lrDNow = t.lrD();
  if (D1 !== undefined && lossD1 !== undefined) t.merge(adamFor(s, t.hp, D1, lossD1, lrDNow, t.step));
  t.merge(adamFor(s, t.hp, D2, lossD2, lrDNow, t.step));
  return t.finish();
}
