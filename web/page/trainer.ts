// Training and scoring in the page, on the code the Node trainer runs: the trainable-program
// contract, the hyperparameter vector, the seeded initial values, the seeded sample orders
// (datasets/sampler.ts: the same draws as `npm run train` with the same seed), one iteration
// (train/iteration.ts) and the evaluation loop (train/evaluate-core.ts). What the page does not
// have is files: samples come from memory, snapshots go to a download.

import * as E from "fp-ts/lib/Either.js";
import type { StateDict } from "../../checkpoint/tensor";
import type { ClassTable } from "../../datasets/class-table";
import { mixSeed } from "../../datasets/prng";
import { repeatedShuffle, sampleAt } from "../../datasets/sampler";
import type { Sample } from "../../datasets/sample";
import { upsampleArgmax } from "../../evaluation/upsample_argmax";
import type { GeneratedModule } from "../../format/module";
import { checkTrainable, renderContractError } from "../../format/program-contract";
import type { AcquiredDevice } from "../../runtime/device";
import { HYPER_SLOT, hyperRecord } from "../../runtime/hyperparameters";
import { type Instance, instantiate } from "../../runtime/runner";
import { fromRuntimeError, trainError, type TrainError } from "../../train/errors";
import { type EvalResult, evalShapes, scoreWeights } from "../../train/evaluate-core";
import { runHyperparameters } from "../../train/hyperparameters";
import { allFinite, lossNames, programInputs, protocolOf, runIteration } from "../../train/iteration";
import { groupValues, persistentSlots, writeGroups, writeInitialValues } from "../../train/slots";
import type { TrainerCheckpoint } from "../../train/snapshot-format";

/** A split as the trainer draws from it: sample k of the split, made on demand. */
export interface SampleSource {
  readonly length: number;
  readonly sample: (index: number) => Sample;
}

export interface LossRecord {
  readonly iteration: number;
  readonly losses: Readonly<Record<string, number>>;
  /** Iterations per second since the previous record. */
  readonly itsPerS: number;
}

export interface PageRun {
  readonly module: GeneratedModule;
  readonly seed: number;
  readonly iterations: number;
  readonly source?: SampleSource;
  readonly target?: SampleSource;
  /** Read the losses back every this many iterations (1: every iteration, for the curves). */
  readonly logEvery: number;
  readonly onLosses?: (r: LossRecord) => Promise<void>;
  /** Called every `checkEvery` iterations with the current G weights (live predictions). */
  readonly checkEvery?: number;
  readonly onCheck?: (iteration: number, g: StateDict) => Promise<void>;
}

export interface PageTrainResult {
  readonly checkpoint: TrainerCheckpoint;
  readonly records: readonly LossRecord[];
  /** Iterations per second over the whole run (the first, which compiles nothing, included). */
  readonly itsPerS: number;
}

/**
 * Trains `run.module` from its seeded initial values for `run.iterations` iterations, as
 * `train()` (train/trainer.ts) does from a fresh start: same hyperparameters, initial values,
 * sample draws and iteration; a non-finite loss or tensor stops the run with the trainer's message.
 */
export async function trainInPage(run: PageRun, device: AcquiredDevice): Promise<E.Either<TrainError, PageTrainResult>> {
  const module = run.module;
  const contract = checkTrainable(module);
  if (!contract.ok) return E.left(trainError("program", renderContractError(contract.error)));
  const hyper = runHyperparameters(module, {});
  if (E.isLeft(hyper)) return hyper;
  const inputs = programInputs(module);
  const made = await instantiate(device.device, module, device.adapterClass);
  if (E.isLeft(made)) return E.left(fromRuntimeError(made.left));
  const instance = made.right;
  try {
    const slots = persistentSlots(module);
    writeInitialValues(instance, slots, run.seed);
    if (hyper.right.length > 0) instance.write(HYPER_SLOT, Float32Array.from(hyper.right, (h) => h.value));
    // The trainer's sample orders: seeded shuffles over NUM_STEPS draws, seed stream 1 source, 2 target.
    const horizon = Math.max(1, Number(module.config["numSteps"] ?? run.iterations));
    const orderOf = (s: SampleSource | undefined, domain: 1 | 2) => (s === undefined ? undefined : repeatedShuffle(s.length, horizon, mixSeed(run.seed, domain)));
    const sourceOrder = orderOf(run.source, 1);
    const targetOrder = orderOf(run.target, 2);
    if (inputs.source !== undefined && run.source === undefined) return E.left(trainError("options", `program ${module.name} reads source images, but none were given`));
    if (inputs.target !== undefined && run.target === undefined) return E.left(trainError("options", `program ${module.name} reads target images, but none were given`));
    const losses = lossNames(module);
    const slotNames = slots.map((s) => s.slot.name);
    const records: LossRecord[] = [];
    const began = performance.now();
    let last = { done: 0, t: began };
    let lastLosses: Record<string, number> = {};
    for (let it = 0; it < run.iterations; it++) {
      runIteration(instance, inputs, it, {
        ...(run.source && sourceOrder ? { source: run.source.sample(sampleAt(sourceOrder, it)) } : {}),
        ...(run.target && targetOrder ? { target: run.target.sample(sampleAt(targetOrder, it)) } : {}),
      });
      const done = it + 1;
      const check = run.checkEvery !== undefined && run.checkEvery > 0 && done % run.checkEvery === 0 && done < run.iterations;
      if (done % run.logEvery === 0 || done === run.iterations || check) {
        const values = await instance.readMany(losses);
        const now = performance.now();
        lastLosses = Object.fromEntries(losses.map((n, i) => [n, values[i]![0]!]));
        const bad = losses.find((n) => !Number.isFinite(lastLosses[n]));
        if (bad !== undefined) return E.left(trainError("diverged", `${bad} is ${lastLosses[bad]} at iteration ${done}; the run stopped`));
        const record = { iteration: done, losses: lastLosses, itsPerS: ((done - last.done) * 1000) / Math.max(1e-3, now - last.t) };
        last = { done, t: now };
        records.push(record);
        await run.onLosses?.(record);
      }
      if (check) {
        const g = (await readState(instance, slots, slotNames))["G"];
        if (g !== undefined) await run.onCheck?.(done, g);
        last = { done, t: performance.now() };
      }
    }
    const seconds = (performance.now() - began) / 1000;
    const state = await instance.readMany(slotNames);
    const broken = slotNames.findIndex((_, i) => !allFinite(state[i]!));
    if (broken >= 0) return E.left(trainError("diverged", `tensor ${slotNames[broken]} holds non-finite values at iteration ${run.iterations}; the run stopped`));
    const groups = groupValues(slots, state);
    return E.right({
      checkpoint: {
        program: module.name,
        config: module.config,
        hyperparameters: hyperRecord(hyper.right),
        iteration: run.iterations,
        sampler: { seed: run.seed, sourcePosition: run.source ? run.iterations : 0, targetPosition: run.target ? run.iterations : 0 },
        groups,
        extra: { losses: lastLosses, trainedIn: "browser" },
      },
      records,
      itsPerS: run.iterations / seconds,
    });
  } finally {
    instance.destroy();
  }
}

async function readState(instance: Instance, slots: ReturnType<typeof persistentSlots>, names: readonly string[]) {
  return groupValues(slots, await instance.readMany(names));
}

/** An evaluation program on the device, ready to score or predict with any G weights. */
export interface Evaluator {
  readonly module: GeneratedModule;
  readonly instance: Instance;
  readonly protocol: ClassTable;
  readonly size: { readonly width: number; readonly height: number };
  readonly logits: { readonly classes: number; readonly height: number; readonly width: number };
  readonly slots: ReturnType<typeof persistentSlots>;
  readonly destroy: () => void;
}

export async function makeEvaluator(module: GeneratedModule, device: AcquiredDevice): Promise<E.Either<TrainError, Evaluator>> {
  const shapes = evalShapes(module);
  if (E.isLeft(shapes)) return shapes;
  const protocol = protocolOf(module);
  if (E.isLeft(protocol)) return protocol;
  const made = await instantiate(device.device, module, device.adapterClass);
  if (E.isLeft(made)) return E.left(fromRuntimeError(made.left));
  const instance = made.right;
  return E.right({ module, instance, protocol: protocol.right, ...shapes.right, slots: persistentSlots(module), destroy: () => instance.destroy() });
}

/** The official evaluation of `g` on labelled samples (train/evaluate-core.ts), `keep` predictions returned. */
export function scoreInPage(ev: Evaluator, g: StateDict, file: string, samples: readonly Sample[], keep: number): Promise<E.Either<TrainError, EvalResult<number>>> {
  let i = 0;
  return scoreWeights(ev, g, file, {
    count: samples.length,
    refOf: (k) => k,
    next: async () => E.right(samples[i++]!),
    keep,
  });
}

/** Class maps (protocol indices at the input size) of unlabelled samples under `g`. */
export async function predictInPage(ev: Evaluator, g: StateDict, samples: readonly Sample[]): Promise<Uint8Array[]> {
  writeGroups(ev.instance, ev.slots, { G: g });
  const out: Uint8Array[] = [];
  for (const s of samples) {
    ev.instance.write("image", s.image);
    ev.instance.step(1);
    const [logits] = await ev.instance.readMany(["logits"]);
    out.push(upsampleArgmax(logits as Float32Array, ev.logits.classes, ev.logits.height, ev.logits.width, s.height, s.width));
  }
  return out;
}
