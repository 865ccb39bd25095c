// Tiny training and evaluation programs for the trainer's tests, compiled in-process with the DSL
// and codegen (tests may import every stage; the trainer itself never imports dsl/ or codegen/).
// They have the slots of the real AdaptSegNet programs (examples/adaptsegnet/train.ts) —
// inputs iteration / source_image / source_label / target_image, params G/*, D2/*, state
// sgd_G/*, adam_D2/*, BN running statistics, outputs loss_seg2 / loss_adv2 / loss_D2, and the
// hyperparameter vector (learningRate, learningRateD, momentum, numSteps, lambdaAdvTarget2) — with
// a network of three convolutions, so they compile in milliseconds and their shaders in seconds.

import * as E from "fp-ts/lib/Either.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSynth } from "../datasets/synth/generate";
import type { AcquiredDevice } from "../runtime/device";
import { acquireNodeDevice } from "../runtime/node-gpu";
import type { NamedDataset } from "./data";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import { compileProgram } from "../codegen/compile";
import type { GeneratedModule } from "../format/module";

export interface TinyConfig {
  readonly height: number;
  readonly width: number;
  readonly numClasses: number;
  /** Changes G's hidden width: a program whose checkpoints do not fit the default one. */
  readonly hidden: number;
  readonly learningRate: number;
  /** The poly schedule's horizon (NUM_STEPS). */
  readonly numSteps: number;
}

export const TINY: TinyConfig = { height: 8, width: 16, numClasses: 19, hidden: 4, learningRate: 0.05, numSteps: 1000 };

function gSpec(c: TinyConfig) {
  return {
    conv1: d.nn.convSpec(c.hidden, 3, 3, { init: d.normal(0.1) }),
    bn1: d.nn.batchNormSpec(c.hidden, { affineTrainable: false }),
    layer6: d.nn.convSpec(c.numClasses, c.hidden, 1, { bias: true, init: d.normal(0.1), group: "head" }),
  };
}

type GParams = d.Declared<ReturnType<typeof gSpec>>;

function gForward(x: F32<4>, p: GParams, mode: "train" | "eval", thread: d.StateThread): F32<4> {
  const h = d.nn.batchNorm2d(d.nn.conv(x, p.conv1, { padding: 1 }), p.bn1, { mode, thread });
  return d.nn.conv(d.relu(h), p.layer6);
}

const dSpec = (c: TinyConfig) => ({
  conv1: d.nn.convSpec(2, c.numClasses, 4, { bias: true }),
  classifier: d.nn.convSpec(1, 2, 2, { bias: true }),
});

function dForward(x: F32<4>, p: d.Declared<ReturnType<typeof dSpec>>): F32<4> {
  return d.nn.conv(d.leakyRelu(d.nn.conv(x, p.conv1, { stride: 2, padding: 1 }), 0.2), p.classifier);
}

/** One adversarial step: CE on source, BCE through a frozen D on target, D on detached softmaxes. */
export function tinyTrainProgram(name: string, c: TinyConfig = TINY): d.Program {
  const { height: H, width: W } = c;
  const iteration = d.input("iteration", [], "i32");
  const src = d.input("source_image", [1, 3, H, W], "f32");
  const lbl = d.input("source_label", [1, H, W], "i32");
  const tgt = d.input("target_image", [1, 3, H, W], "f32");
  const thread = new d.StateThread();
  const G = d.declareModel("G", gSpec(c));
  const D2 = d.declareModel("D2", dSpec(c));
  const h = d.hyperparameters({ learningRate: c.learningRate, learningRateD: 1e-3, momentum: 0.9, numSteps: c.numSteps, lambdaAdvTarget2: 0.01 });
  const hp = h.values;
  const lr = d.optim.polyLearningRate(hp.learningRate, iteration, hp.numSteps, 0.9);
  const predS = gForward(src, G.p, "train", thread);
  const predT = gForward(tgt, G.p, "train", thread);
  const lossSeg = d.losses.crossEntropy(predS, lbl, 255);
  const lossAdv = d.losses.bceWithLogits(dForward(d.softmax(predT, 1), D2.p), 0);
  const lossG = d.add(lossSeg, d.mul(lossAdv, hp.lambdaAdvTarget2));
  const lossD = d.add(
    d.mul(d.losses.bceWithLogits(dForward(d.softmax(d.stopGradient(predS), 1), D2.p), 0), 0.5),
    d.mul(d.losses.bceWithLogits(dForward(d.softmax(d.stopGradient(predT), 1), D2.p), 1), 0.5),
  );
  const gTrained = d.trainable(G.entries);
  const gGrads = d.grad(lossG, gTrained.map((e) => e.tensor));
  const sgd = d.optim.sgd("sgd_G", gTrained.map((entry, i) => ({ entry, grad: gGrads[i]! })), { lr: () => lr, momentum: hp.momentum, weightDecay: 5e-4 });
  const dTrained = d.trainable(D2.entries);
  const dGrads = d.grad(lossD, dTrained.map((e) => e.tensor));
  const adam = d.optim.adam("adam_D2", dTrained.map((entry, i) => ({ entry, grad: dGrads[i]! })), {
    lr: d.optim.polyLearningRate(hp.learningRateD, iteration, hp.numSteps, 0.9),
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    step: d.add(d.cast(iteration, "f32"), 1),
  });
  return d.defineProgram({
    name,
    params: [...G.entries, ...D2.entries, ...sgd.state, ...adam.state],
    phases: [{ name: "step", outputs: { loss_seg2: lossSeg, loss_adv2: lossAdv, loss_D2: lossD }, updates: { ...sgd.updates, ...adam.updates, ...thread.updates() } }],
    config: { variant: "multi-level", numClasses: c.numClasses, numSteps: c.numSteps, learningRate: c.learningRate, learningRateD: 1e-3, momentum: 0.9, lambdaAdvTarget2: 0.01, power: 0.9, hidden: c.hidden },
    hyperparameters: h,
  });
}

/** The evaluation program of the same G: main logits in eval-mode BN. */
export function tinyEvalProgram(name: string, c: TinyConfig = TINY): d.Program {
  const image = d.input("image", [1, 3, c.height, c.width], "f32");
  const G = d.declareModel("G", gSpec(c));
  const logits = gForward(image, G.p, "eval", new d.StateThread());
  return d.defineProgram({ name, params: [...G.entries], phases: [{ name: "predict", outputs: { logits }, updates: {} }], config: { numClasses: c.numClasses } });
}

export function compiled(program: d.Program): GeneratedModule {
  return compileProgram(program).module;
}

// ---------------------------------------------------------------------------------------------
// Data and device for the tests

export function scratch(prefix = "train-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A synthetic benchmark small enough to write in well under a second: 6 + 6 + 3 images of 32x16. */
export async function tinyData(dir = scratch("train-data-")): Promise<{ source: NamedDataset; target: NamedDataset; val: NamedDataset; dir: string }> {
  const size = { width: 32, height: 16 };
  const r = await writeSynth({ out: dir, seed: 7, sourceSize: size, targetSize: size, countSource: 6, countTrain: 6, countVal: 3, shift: 1 })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return {
    dir,
    source: { role: "source", option: "--data-dir", spec: { kind: "gta5", root: join(dir, "gta5") } },
    target: { role: "target", option: "--data-dir-target", spec: { kind: "cityscapes", root: join(dir, "cityscapes"), split: "train", withLabels: false } },
    val: { role: "target validation", option: "--val-set", spec: { kind: "cityscapes", root: join(dir, "cityscapes"), split: "val", withLabels: true } },
  };
}

let device: AcquiredDevice | undefined;

/** One device per test process, with room for any small module. */
export async function testDevice(): Promise<AcquiredDevice> {
  if (device) return device;
  const d = await acquireNodeDevice({ maxStorageBufferBindingSize: 1 << 20, maxBufferSize: 1 << 24, maxStorageBuffersPerShaderStage: 8 })();
  if (E.isLeft(d)) throw new Error(d.left.message);
  device = d.right;
  return device;
}

/** Swallows the progress bar. */
export const SILENT = { write: () => true, isTTY: false } as const;
