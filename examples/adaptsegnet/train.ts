// One AdaptSegNet training iteration, as a DSL program, in the order of the official script
// (adaptsegnet.md §3.4): source segmentation loss, target adversarial loss through frozen
// discriminators, discriminator losses on detached source and target predictions, then
// SGD for the segmentation network and Adam for each discriminator. Every hyperparameter of
// §3.1 is an option with the official default; the variants of the paper are settings.
//
// Two kinds of option. Those that change the graph (variant, sizes, classes, networks, GAN
// objective, BN mode, the optimizer's visits and eps placement, ignore label) are compiled in.
// The numeric ones (learning rates, momentum, weight decay, poly power, NUM_STEPS, loss weights,
// Adam's betas and eps: HYPERPARAMETER_KEYS) are elements of the program's hyperparameter vector
// (dsl/hyper.ts), read at run time, with the config's values as defaults: one compiled program
// trains with any of them (`npm run train -- --lambda-adv-target2 0.005`).

import * as d from "../../dsl/index";
import type { F32, I32, ParamEntry, Program, Tensor } from "../../dsl/index";
import * as losses from "../../dsl/losses";
import * as optim from "../../dsl/optim";
import {
  type DeepLabConfig,
  type DiscriminatorConfig,
  type VggConfig,
  deeplab,
  deeplabSpec,
  deeplabVgg,
  deeplabVggSpec,
  discriminator,
  discriminatorSpec,
} from "./networks";

export type Variant =
  | "multi-level"
  | "single-level"
  | "source-only"
  | "feature-level"
  | "ls-gan"
  | "vgg-single-level"
  | "oracle"
  | "advent"
  | "minent";

export type Gan = "Vanilla" | "LS";
export type BnMode = "official" | "frozen";

export interface TrainConfig {
  readonly variant: Variant;
  readonly numClasses: number;
  /** [H, W] of source and target images. */
  readonly sourceSize: readonly [number, number];
  readonly targetSize: readonly [number, number];
  readonly network: Omit<DeepLabConfig, "numClasses" | "heads">;
  readonly vgg: Omit<VggConfig, "numClasses">;
  /** ndf of the discriminators (64) and whether they upsample their output (the paper: yes; the code: no). */
  readonly ndf: number;
  readonly discriminatorUpsample: boolean;
  /**
   * Feature-level baseline: feed the discriminator layer4 features upsampled to the image size
   * (the paper's wording) or at their own output-stride-8 size (default: the upsampled map has
   * 2048 channels at full resolution, 7.5 GB at 1280x720, which no 12 GB GPU holds).
   */
  readonly featureUpsample: boolean;
  readonly learningRate: number;
  readonly learningRateD: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly power: number;
  /** The poly schedule's horizon (NUM_STEPS); training stops earlier, at NUM_STEPS_STOP. */
  readonly numSteps: number;
  readonly lambdaSeg: number;
  readonly lambdaAdvTarget1: number;
  readonly lambdaAdvTarget2: number;
  /** MinEnt entropy weights (ADVENT): main and aux. */
  readonly lambdaEntMain: number;
  readonly lambdaEntAux: number;
  readonly gan: Gan;
  /**
   * official: train-mode BN (batch statistics), affine frozen, running statistics updated on
   * every forward pass (twice per iteration). frozen: eval-mode BN, statistics never change.
   */
  readonly bnMode: BnMode;
  /**
   * Reproduce the official optimizer's duplicate parameter visits (§1.9): backbone block convs
   * 3 times, downsample convs 4 times, with in-place weight decay. Off: clean PyTorch.
   */
  readonly duplicateVisits: boolean;
  readonly adamEps: "pytorch1" | "pytorch0.4";
  /** Adam's betas and eps value (the official (0.9, 0.99) and 1e-8); adamEps is where eps enters. */
  readonly adamBeta1: number;
  readonly adamBeta2: number;
  readonly adamEpsilon: number;
  readonly ignoreLabel: number;
}

/** The numeric options that are run-time values of the hyperparameter vector, not compiled in. */
export const HYPERPARAMETER_KEYS = [
  "learningRate",
  "learningRateD",
  "momentum",
  "weightDecay",
  "power",
  "numSteps",
  "lambdaSeg",
  "lambdaAdvTarget1",
  "lambdaAdvTarget2",
  "lambdaEntMain",
  "lambdaEntAux",
  "adamBeta1",
  "adamBeta2",
  "adamEpsilon",
] as const satisfies readonly (keyof TrainConfig)[];

export type HyperparameterKey = (typeof HYPERPARAMETER_KEYS)[number];

/** The official defaults (§3.1) at the GTA5 -> Cityscapes sizes, ResNet-101, multi-level. */
export const OFFICIAL: TrainConfig = {
  variant: "multi-level",
  numClasses: 19,
  sourceSize: [720, 1280],
  targetSize: [512, 1024],
  network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 2 },
  vgg: { asppBranches: 2, shrink: 1 },
  ndf: 64,
  discriminatorUpsample: false,
  featureUpsample: false,
  learningRate: 2.5e-4,
  learningRateD: 1e-4,
  momentum: 0.9,
  weightDecay: 5e-4,
  power: 0.9,
  numSteps: 250000,
  lambdaSeg: 0.1,
  lambdaAdvTarget1: 0.0002,
  lambdaAdvTarget2: 0.001,
  lambdaEntMain: 0.001,
  lambdaEntAux: 0.0002,
  gan: "Vanilla",
  bnMode: "official",
  duplicateVisits: false,
  adamEps: "pytorch1",
  adamBeta1: 0.9,
  adamBeta2: 0.99,
  adamEpsilon: 1e-8,
  ignoreLabel: 255,
};

/** The settings that define each variant (README command lines of §3.2, and ADVENT §9). */
export const VARIANT_SETTINGS: { readonly [V in Variant]: Partial<TrainConfig> } = {
  "multi-level": {},
  // The official single-level run: the same script with aux weights 0 (§3.8).
  "single-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  "source-only": {},
  "feature-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  "ls-gan": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.01, gan: "LS" },
  "vgg-single-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  oracle: {},
  // ADVENT fixed the ASPP head (all four branches).
  advent: { network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 4 } },
  minent: { network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 4 } },
};

/**
 * The hyperparameters a variant reads: only those, so that a program has no element nothing
 * uses (an override of it would silently do nothing). Every variant trains G with poly SGD;
 * adversarial ones train discriminators with Adam and weight their adversarial losses; those
 * with two heads weight the aux CE (lambdaSeg, 0 for single-level: the official single-level run
 * is the multi-level graph with aux weights 0, spec §3.8).
 */
export function hyperparameterKeysOf(variant: Variant): readonly HyperparameterKey[] {
  const sgd = ["learningRate", "momentum", "weightDecay", "power", "numSteps"] as const;
  const adam = ["learningRateD", "adamBeta1", "adamBeta2", "adamEpsilon"] as const;
  switch (variant) {
    case "oracle":
      return sgd;
    case "source-only":
      return [...sgd, "lambdaSeg"];
    case "minent":
      return [...sgd, "lambdaSeg", "lambdaEntMain", "lambdaEntAux"];
    case "vgg-single-level":
      return [...sgd, ...adam, "lambdaAdvTarget2"];
    case "multi-level":
    case "single-level":
    case "feature-level":
    case "ls-gan":
    case "advent":
      return [...sgd, ...adam, "lambdaSeg", "lambdaAdvTarget1", "lambdaAdvTarget2"];
    default: {
      const never: never = variant;
      throw new Error(`unknown variant ${String(never)}`);
    }
  }
}

/** A variant's hyperparameter vector, with the config's values as defaults; `get` is the scalar of one key. */
function declareHyperparameters(cfg: TrainConfig) {
  const keys = hyperparameterKeysOf(cfg.variant);
  const h = d.hyperparameters(Object.fromEntries(keys.map((k) => [k, cfg[k]])) as Record<HyperparameterKey, number>);
  const get = (key: HyperparameterKey): F32<0> => {
    if (!keys.includes(key)) throw new d.DslError(`variant ${cfg.variant} reads hyperparameter ${key}, which hyperparameterKeysOf does not list`);
    return h.values[key];
  };
  return { h, get };
}

type Hyper = (key: HyperparameterKey) => F32<0>;

/** The poly learning rates and the 1-based Adam step of iteration i (the program's input). */
function schedules(hp: Hyper, iteration: I32<0>) {
  const poly = (base: F32<0>) => optim.polyLearningRate(base, iteration, hp("numSteps"), hp("power"));
  return {
    lrG: poly(hp("learningRate")),
    // A function: only variants with discriminators have (and read) learningRateD.
    lrD: () => poly(hp("learningRateD")),
    step: d.add(d.cast(iteration, "f32"), 1),
  };
}

/**
 * How many times the official optimizer's parameter list visits a backbone weight (§1.9):
 * 1 for the stem conv, 3 for bottleneck convs (listed under the layer, the block and the conv),
 * 4 for downsample convs (one more level, the Sequential), 1 for the heads.
 */
export function officialVisits(key: string): number {
  if (/^layer[1-4]\.\d+\.downsample\.0\.weight$/.test(key)) return 4;
  if (/^layer[1-4]\.\d+\.conv[123]\.weight$/.test(key)) return 3;
  return 1;
}

const up = (x: F32<4>, size: readonly [number, number]) => d.resize(x, [size[0], size[1]], { alignCorners: true });

/** The adversarial loss against a constant domain label: BCE-with-logits, or MSE for LS-GAN. */
function ganLoss(cfg: TrainConfig, logits: F32, label: 0 | 1): F32<0> {
  return cfg.gan === "LS" ? losses.mse(logits, label) : losses.bceWithLogits(logits, label);
}

const SOURCE = 0;
const TARGET = 1;

interface Built {
  readonly params: ParamEntry[];
  readonly outputs: Record<string, Tensor>;
  readonly updates: Record<string, Tensor>;
}

function sgdFor(cfg: TrainConfig, hp: Hyper, model: d.Model<unknown>, loss: F32<0>, lr: F32<0>) {
  const trained = d.trainable(model.entries).filter((e) => d.dependsOn(loss, e.tensor));
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  const headLr = d.mul(lr, 10);
  return optim.sgd(
    `sgd_${model.name}`,
    trained.map((entry, i) => ({ entry, grad: grads[i]! })),
    {
      lr: (e) => (e.spec.group === "head" ? headLr : lr),
      momentum: hp("momentum"),
      weightDecay: hp("weightDecay"),
      visits: cfg.duplicateVisits ? (e) => officialVisits(e.key) : undefined,
      weightDecayInPlace: true,
    },
  );
}

function adamFor(cfg: TrainConfig, hp: Hyper, model: d.Model<unknown>, loss: F32<0>, lr: F32<0>, step: F32<0>) {
  const trained = d.trainable(model.entries);
  const grads = d.grad(loss, trained.map((e) => e.tensor));
  return optim.adam(`adam_${model.name}`, trained.map((entry, i) => ({ entry, grad: grads[i]! })), {
    lr,
    beta1: hp("adamBeta1"),
    beta2: hp("adamBeta2"),
    eps: hp("adamEpsilon"),
    step,
    epsPlacement: cfg.adamEps,
  });
}

/** Builds the training step of `cfg.variant` as one phase (all optimizers step at the end). */
export function buildTrainStep(name: string, cfg: TrainConfig): Program {
  const [hs, ws] = cfg.sourceSize;
  const [ht, wt] = cfg.targetSize;
  const C = cfg.numClasses;
  const iteration = d.input("iteration", [], "i32");
  const { h, get: hp } = declareHyperparameters(cfg);
  const { lrG, lrD, step } = schedules(hp, iteration);
  const thread = new d.StateThread();
  const bnCtx = { mode: cfg.bnMode === "official" ? ("train" as const) : ("eval" as const), thread };
  const outputs: Record<string, Tensor> = {};
  const updates: Record<string, Tensor> = {};
  const params: ParamEntry[] = [];
  const merge = (r: optim.OptimizerResult) => {
    params.push(...r.state);
    Object.assign(updates, r.updates);
  };

  if (cfg.variant === "vgg-single-level") {
    const G = d.declareModel("G", deeplabVggSpec({ ...cfg.vgg, numClasses: C }));
    const dcfg: DiscriminatorConfig = { inChannels: C, ndf: cfg.ndf, upsample: cfg.discriminatorUpsample };
    const D2 = d.declareModel("D2", discriminatorSpec(dcfg));
    const srcImage = d.input("source_image", [1, 3, hs, ws], "f32");
    const srcLabel = d.input("source_label", [1, hs, ws], "i32");
    const tgtImage = d.input("target_image", [1, 3, ht, wt], "f32");
    const predS = up(deeplabVgg(srcImage, G.p, { ...cfg.vgg, numClasses: C }), [hs, ws]);
    const predT = up(deeplabVgg(tgtImage, G.p, { ...cfg.vgg, numClasses: C }), [ht, wt]);
    const lossSeg = losses.crossEntropy(predS, srcLabel, cfg.ignoreLabel);
    const lossAdv = ganLoss(cfg, discriminator(d.softmax(predT, 1), D2.p, dcfg), SOURCE);
    const lossG = d.add(lossSeg, d.mul(lossAdv, hp("lambdaAdvTarget2")));
    const lossD = d.add(
      d.mul(ganLoss(cfg, discriminator(d.softmax(d.stopGradient(predS), 1), D2.p, dcfg), SOURCE), 0.5),
      d.mul(ganLoss(cfg, discriminator(d.softmax(d.stopGradient(predT), 1), D2.p, dcfg), TARGET), 0.5),
    );
    params.push(...G.entries, ...D2.entries);
    // VGG's optimizer has one learning-rate group (§1.11): no 10x heads.
    const trained = d.trainable(G.entries);
    const grads = d.grad(lossG, trained.map((e) => e.tensor));
    merge(optim.sgd("sgd_G", trained.map((entry, i) => ({ entry, grad: grads[i]! })), { lr: () => lrG, momentum: hp("momentum"), weightDecay: hp("weightDecay") }));
    merge(adamFor(cfg, hp, D2, lossD, lrD(), step));
    Object.assign(outputs, { loss_seg2: lossSeg, loss_adv2: lossAdv, loss_D2: lossD });
    return d.defineProgram({ name, params, phases: [{ name: "step", outputs, updates }], config: { ...cfg }, hyperparameters: h });
  }

  if (cfg.variant === "oracle") return buildOracleStep(name, cfg, h, hp, lrG);

  const netCfg: DeepLabConfig = { ...cfg.network, numClasses: C, heads: "multi" };
  const G = d.declareModel("G", deeplabSpec(netCfg));
  params.push(...G.entries);
  const [sh, sw] = [hs, ws];
  const srcImage = d.input("source_image", [1, 3, sh, sw], "f32");
  const srcLabel = d.input("source_label", [1, sh, sw], "i32");

  // 3. Source step: segmentation losses on upsampled logits (BN forward pass #1).
  const src = d.withScope("source", () => deeplab(srcImage, G.p, netCfg, bnCtx));
  const pred1 = up(src.aux!, [sh, sw]);
  const pred2 = up(src.main, [sh, sw]);
  const lossSeg1 = losses.crossEntropy(pred1, srcLabel, cfg.ignoreLabel);
  const lossSeg2 = losses.crossEntropy(pred2, srcLabel, cfg.ignoreLabel);
  let lossG: F32<0> = d.add(lossSeg2, d.mul(lossSeg1, hp("lambdaSeg")));
  Object.assign(outputs, { loss_seg1: lossSeg1, loss_seg2: lossSeg2 });

  if (cfg.variant === "source-only") {
    // A true source-only run: no other forward pass, no discriminator.
    merge(sgdFor(cfg, hp, G, lossG, lrG));
    Object.assign(updates, thread.updates());
    return d.defineProgram({ name, params, phases: [{ name: "step", outputs, updates }], config: { ...cfg }, hyperparameters: h });
  }

  // 4. Target step for G (BN forward pass #2).
  const tgtImage = d.input("target_image", [1, 3, ht, wt], "f32");
  const tgt = d.withScope("target", () => deeplab(tgtImage, G.p, netCfg, bnCtx));
  const predT1 = up(tgt.aux!, [ht, wt]);
  const predT2 = up(tgt.main, [ht, wt]);

  if (cfg.variant === "minent") {
    // MinEnt: entropy of the target predictions, no discriminator.
    const lossEnt1 = losses.entropyLoss(d.softmax(predT1, 1));
    const lossEnt2 = losses.entropyLoss(d.softmax(predT2, 1));
    lossG = d.add(lossG, d.add(d.mul(lossEnt1, hp("lambdaEntAux")), d.mul(lossEnt2, hp("lambdaEntMain"))));
    merge(sgdFor(cfg, hp, G, lossG, lrG));
    Object.assign(updates, thread.updates());
    Object.assign(outputs, { loss_ent1: lossEnt1, loss_ent2: lossEnt2 });
    return d.defineProgram({ name, params, phases: [{ name: "step", outputs, updates }], config: { ...cfg }, hyperparameters: h });
  }

  // What each discriminator sees: the class softmax of upsampled logits (AdvEnt: its weighted
  // self-information; feature-level: upsampled layer4 features).
  const featureLevel = cfg.variant === "feature-level";
  const dIn = (logits: F32<4>) => {
    const p = d.softmax(logits, 1);
    return cfg.variant === "advent" ? losses.selfInformation(p) : p;
  };
  const inChannels = featureLevel ? cfg.network.width * 32 : C;
  const dcfg: DiscriminatorConfig = { inChannels, ndf: cfg.ndf, upsample: cfg.discriminatorUpsample };
  const D1 = d.declareModel("D1", discriminatorSpec({ ...dcfg, inChannels: C }));
  const D2 = d.declareModel("D2", discriminatorSpec(dcfg));
  params.push(...D1.entries, ...D2.entries);
  const d1cfg = { ...dcfg, inChannels: C };
  const main = (logits: F32<4>, features: F32<4>, size: readonly [number, number]) =>
    featureLevel ? (cfg.featureUpsample ? up(features, size) : features) : dIn(logits);

  // G's adversarial loss: target predictions should look like source (label 0) to frozen Ds.
  const advIn1 = dIn(predT1);
  const advIn2 = main(predT2, tgt.features, [ht, wt]);
  const lossAdv1 = ganLoss(cfg, discriminator(advIn1, D1.p, d1cfg), SOURCE);
  const lossAdv2 = ganLoss(cfg, discriminator(advIn2, D2.p, dcfg), SOURCE);
  // A weight of 0 (single-level) is a multiplication by a run-time 0: D1 still trains on its own loss.
  lossG = d.add(lossG, d.add(d.mul(lossAdv1, hp("lambdaAdvTarget1")), d.mul(lossAdv2, hp("lambdaAdvTarget2"))));
  Object.assign(outputs, { loss_adv1: lossAdv1, loss_adv2: lossAdv2 });

  // 6-7. Discriminators on detached predictions: source (label 0) and target (label 1), each x1/2.
  const half = (x: F32<0>) => d.mul(x, 0.5);
  const detachedSrc2 = main(d.stopGradient(pred2), d.stopGradient(src.features), [sh, sw]);
  const lossD1 = d.add(
    half(ganLoss(cfg, discriminator(dIn(d.stopGradient(pred1)), D1.p, d1cfg), SOURCE)),
    half(ganLoss(cfg, discriminator(d.stopGradient(advIn1), D1.p, d1cfg), TARGET)),
  );
  const lossD2 = d.add(
    half(ganLoss(cfg, discriminator(detachedSrc2, D2.p, dcfg), SOURCE)),
    half(ganLoss(cfg, discriminator(d.stopGradient(advIn2), D2.p, dcfg), TARGET)),
  );
  Object.assign(outputs, { loss_D1: lossD1, loss_D2: lossD2 });

  // 8. All three optimizers step with gradients of the pre-step parameters.
  merge(sgdFor(cfg, hp, G, lossG, lrG));
  const lrDNow = lrD();
  merge(adamFor(cfg, hp, D1, lossD1, lrDNow, step));
  merge(adamFor(cfg, hp, D2, lossD2, lrDNow, step));
  Object.assign(updates, thread.updates());
  return d.defineProgram({ name, params, phases: [{ name: "step", outputs, updates }], config: { ...cfg }, hyperparameters: h });
}

/**
 * The oracle (§1.11): `Res_Deeplab`, one ASPP head (`layer5`) on layer4, supervised on target
 * labels with the same SGD settings; its keys are those of the official oracle checkpoint.
 */
function buildOracleStep(name: string, cfg: TrainConfig, h: d.Hyperparameters<string>, hp: Hyper, lrG: F32<0>): Program {
  const [ht, wt] = cfg.targetSize;
  const netCfg: DeepLabConfig = { ...cfg.network, numClasses: cfg.numClasses, heads: "single" };
  const G = d.declareModel("G", deeplabSpec(netCfg));
  const thread = new d.StateThread();
  const image = d.input("target_image", [1, 3, ht, wt], "f32");
  const label = d.input("target_label", [1, ht, wt], "i32");
  const out = d.withScope("target", () => deeplab(image, G.p, netCfg, { mode: cfg.bnMode === "official" ? "train" : "eval", thread }));
  const lossSeg = losses.crossEntropy(up(out.main, [ht, wt]), label, cfg.ignoreLabel);
  const sgd = sgdFor(cfg, hp, G, lossSeg, lrG);
  return d.defineProgram({
    name,
    params: [...G.entries, ...sgd.state],
    phases: [{ name: "step", outputs: { loss_seg2: lossSeg }, updates: { ...sgd.updates, ...thread.updates() } }],
    config: { ...cfg },
    hyperparameters: h,
  });
}

/** The head layout of a variant's segmentation network: the oracle is Res_Deeplab (one head). */
export const headsOf = (variant: Variant): DeepLabConfig["heads"] => (variant === "oracle" ? "single" : "multi");

/** Evaluation: main logits in eval-mode BN (§5), for the official protocol. */
export function buildEval(name: string, cfg: TrainConfig): Program {
  const [ht, wt] = cfg.targetSize;
  const image = d.input("image", [1, 3, ht, wt], "f32");
  const thread = new d.StateThread();
  if (cfg.variant === "vgg-single-level") {
    const G = d.declareModel("G", deeplabVggSpec({ ...cfg.vgg, numClasses: cfg.numClasses }));
    const main = deeplabVgg(image, G.p, { ...cfg.vgg, numClasses: cfg.numClasses });
    return d.defineProgram({ name, params: [...G.entries], phases: [{ name: "predict", outputs: { logits: main }, updates: {} }], config: { ...cfg } });
  }
  const netCfg: DeepLabConfig = { ...cfg.network, numClasses: cfg.numClasses, heads: headsOf(cfg.variant) };
  const G = d.declareModel("G", deeplabSpec(netCfg));
  const out = deeplab(image, G.p, netCfg, { mode: "eval", thread });
  const outputs: Record<string, Tensor> = out.aux === undefined ? { logits: out.main } : { logits: out.main, aux_logits: out.aux };
  return d.defineProgram({ name, params: [...G.entries], phases: [{ name: "predict", outputs, updates: {} }], config: { ...cfg } });
}
