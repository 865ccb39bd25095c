// The training loop around a generated step program (examples/adaptsegnet/train.ts): one step
// per iteration, the iteration number as an input (so the poly schedule and Adam's step count
// need no recompilation), the optimizer state inside the program. The hyperparameters (learning
// rates, loss weights, ...) are the program's hyperparameter vector, written once before the
// first step: its defaults with the run's overrides (hyperparameters.ts).
//
// Per iteration the host only uploads the next source / target samples and submits the step;
// it waits for the device only when it reads something back: the losses every `logEvery`
// iterations (one readMany), every persistent tensor at a snapshot or an evaluation.
//
// NaN / infinity: a non-finite loss poisons the parameters for good, so checking the losses at
// each read-back is reliable; it cannot say at which of the last `logEvery` iterations the value
// first went bad, so the message gives the interval (last finite read, this read], and the run
// stops without saving. Snapshots are only written from reads whose losses were all finite, so
// the last snapshot on disk is always a good one, and the message names it.
//
// Resume: a snapshot holds every param and state tensor, the completed iteration count and the
// sampler positions; the samplers are seeded shuffles indexed by position, so a resumed run draws
// exactly the samples the uninterrupted run would, writes the same inputs, runs the same kernels
// and ends with the same bits (train/resume.test.ts).

import { checkTrainable, renderContractError } from "../format/program-contract.js";
import * as E from "fp-ts/lib/Either.js";
import type { StateDict } from "../checkpoint/tensor.js";
import type { ClassTable } from "../datasets/class-table.js";
import type { SampleRef } from "../datasets/layouts.js";
import type { PrefetchLoader } from "../datasets/prefetch.js";
import type { AugmentPolicy } from "../datasets/preprocess.js";
import { mixSeed } from "../datasets/prng.js";
import { repeatedShuffle, sampleAt } from "../datasets/sampler.js";
import type { AcquiredDevice } from "../runtime/device.js";
import type { GeneratedModule, HyperparameterSpec } from "../format/module.js";
import type { Instance } from "../runtime/runner.js";
import { instantiateTuned } from "../runtime/node-tune.js";
import { HYPER_SLOT, hyperRecord } from "../runtime/hyperparameters.js";
import { saveCheckpoint, snapshotPath } from "./checkpoint.js";
import { type NamedDataset, nextSample, openDataset, sampleStream } from "./data.js";
import { allFinite, lossNames, polyLearningRate, protocolOf, runIteration } from "./iteration.js";
import type { Sample } from "../datasets/sample.js";
import { fromRuntimeError, trainError, type TrainError } from "./errors.js";
import { evalSetup, evaluateWeights, type EvalResult, type EvalSetup } from "./evaluate.js";
import { FIRST_DRAWS, ignoreOnlyWarnings, refuseIgnoreOnlyStream } from "./label-watch.js";
import { MetricsLog, readMetrics } from "./metrics.js";
import { runPanels, renderSvg, writeChart } from "../plots/chart.js";
import { Progress, type ProgressStream } from "./progress.js";
import { openRunDirectory } from "./run-dir.js";
import { describeHyperparameters, runHyperparameters } from "./hyperparameters.js";
import { type Inputs, programInputs, runRequestOf } from "./run-request.js";
import { startState } from "./start-state.js";
import { groupValues, persistentSlots, writeGroups, writeInitialValues } from "./slots.js";

export interface TrainRun {
  readonly module: GeneratedModule;
  /** The evaluation program, for evaluations during training (evalEvery > 0). */
  readonly evalModule?: GeneratedModule;
  /** Source (labelled), target (images; labelled for the oracle) and target validation data. */
  readonly data: { readonly source?: NamedDataset; readonly target?: NamedDataset; readonly val?: NamedDataset };
  readonly seed: number;
  /** Train until this many iterations are complete (NUM_STEPS_STOP). */
  readonly numStepsStop: number;
  /** Snapshot every this many iterations (and at the end); 0: only at the end. */
  readonly savePredEvery: number;
  readonly snapshotDir: string;
  /** File names are `<prefix>_<iteration>.safetensors` and `<prefix>_best.safetensors`. */
  readonly snapshotPrefix: string;
  readonly restoreFrom?: string;
  /** true: the latest snapshot in snapshotDir; a path: that snapshot. */
  readonly resume?: boolean | string;
  /** Read the losses back every this many iterations. */
  readonly logEvery: number;
  /** Evaluate on the target validation split every this many iterations (and at the end); 0: never. */
  readonly evalEvery: number;
  readonly evalLimit?: number;
  /** The user's class table (--classes); absent: the built-in protocol of the program's class count. */
  readonly classes?: ClassTable;
  readonly workers: number;
  readonly augment?: AugmentPolicy;
  readonly metricsPath?: string;
  readonly plotPath?: string;
  readonly progress?: ProgressStream;
  /** Printed before the progress bar, e.g. "source-only". */
  readonly title?: string;
  /** Called after each submitted step with the completed count; tests use it to stop a run. */
  readonly afterStep?: (done: number) => void | Promise<void>;
  /**
   * Overrides of the program's hyperparameters, by name (learningRate, lambdaSeg, ...;
   * GeneratedModule.hyperparameters lists them and their defaults): checked, written into its
   * vector before the first step, recorded in run.json and every snapshot. Absent: the defaults.
   */
  readonly hyperparameters?: Readonly<Record<string, number>>;
  /** Extra metadata stored in every snapshot (the command line). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /**
   * A snapshot directory that already holds a run: "refuse" (the default) unless resuming, or
   * "replace" it (the demo, which regenerates its output folder on every call). See run-dir.ts.
   */
  readonly existingRun?: "refuse" | "replace";
}

export { programInputs, runIdentityOf, runRequestOf } from "./run-request.js";
// The iteration and the program facts it needs are iteration.ts (no Node; the browser page runs them too).
export { allFinite, combinedNeeds, polyLearningRate, protocolOf } from "./iteration.js";

export interface TrainResult {
  readonly iteration: number;
  readonly losses: Readonly<Record<string, number>>;
  /** The final parameters and state, by model (as in the last snapshot). */
  readonly groups: Readonly<Record<string, StateDict>>;
  readonly lastSnapshot: string | undefined;
  readonly best: { readonly iteration: number; readonly mIoU: number; readonly path: string } | undefined;
  readonly evals: readonly { readonly iteration: number; readonly result: EvalResult }[];
  readonly seconds: number;
  readonly itsPerS: number;
}

/**
 * Runs the training loop to `numStepsStop` on `device`. The snapshot directory is checked and
 * locked first (run-dir.ts: one run per directory, --resume only of the same run); then every
 * data root and the restore / resume file are checked before any program is instantiated.
 * Returns the final state, or the first error (a diverged loss included).
 */
export async function train(run: TrainRun, device: AcquiredDevice): Promise<E.Either<TrainError, TrainResult>> {
  // The trainable-program contract (format/program-contract.ts) before anything else: a user's
  // program that lacks an input the trainer feeds is refused by name, not run half-fed.
  const contract = checkTrainable(run.module);
  if (!contract.ok) return E.left(trainError("program", renderContractError(contract.error)));
  const hyper = runHyperparameters(run.module, run.hyperparameters ?? {});
  if (E.isLeft(hyper)) return hyper;
  const argv = run.extra?.["argv"];
  const opened = await openRunDirectory(runRequestOf(run), {
    ...(Array.isArray(argv) ? { argv: argv.map(String) } : {}),
    ...(run.restoreFrom !== undefined ? { restoreFrom: run.restoreFrom } : {}),
  });
  if (E.isLeft(opened)) return opened;
  try {
    return await trainInDirectory(run, device, hyper.right, opened.right.notes);
  } finally {
    opened.right.lock.release();
  }
}

async function trainInDirectory(
  run: TrainRun,
  device: AcquiredDevice,
  hyper: readonly HyperparameterSpec[],
  runNotes: readonly string[],
): Promise<E.Either<TrainError, TrainResult>> {
  const module = run.module;
  const hyperparameters = hyperRecord(hyper);
  // What the run computes with: the program's config, its hyperparameters as this run sets them.
  const runValues = { ...module.config, ...hyperparameters };
  const inputs = programInputs(module);
  const protocolE = protocolOf(module, run.classes);
  if (E.isLeft(protocolE)) return protocolE;
  const protocol = protocolE.right;

  // The poly schedule (1 - i / NUM_STEPS)^power is undefined past NUM_STEPS (a negative base):
  // the official script never goes there, and neither may a run.
  const numStepsOfRun = Number(runValues["numSteps"]);
  if (Number.isFinite(numStepsOfRun) && run.numStepsStop > numStepsOfRun) {
    return E.left(
      trainError(
        "options",
        `--num-steps-stop ${run.numStepsStop} is past NUM_STEPS ${numStepsOfRun}, where the poly learning rate (1 - i/${numStepsOfRun})^power is undefined; ` +
          `stop at ${numStepsOfRun} or earlier, or pass a larger --num-steps`,
      ),
    );
  }

  // 1. Data, before anything else: a missing root is refused naming its path.
  const need = (side: "source" | "target", d: NamedDataset | undefined) =>
    d === undefined ? E.left(trainError("options", `program ${module.name} reads ${side} images, but no ${side} dataset was given`)) : E.right(d);
  let sourceRefs, targetRefs, valRefs;
  if (inputs.source !== undefined) {
    const d = need("source", run.data.source);
    if (E.isLeft(d)) return d;
    const r = await openDataset(d.right)();
    if (E.isLeft(r)) return r;
    sourceRefs = r.right;
  }
  if (inputs.target !== undefined) {
    const d = need("target", run.data.target);
    if (E.isLeft(d)) return d;
    const r = await openDataset(d.right)();
    if (E.isLeft(r)) return r;
    targetRefs = r.right;
  }
  if (run.evalEvery > 0) {
    if (run.evalModule === undefined) return E.left(trainError("options", "evaluation during training needs an evaluation program"));
    if (run.data.val === undefined) return E.left(trainError("options", "evaluation during training needs the target validation data"));
    const r = await openDataset(run.data.val)();
    if (E.isLeft(r)) return r;
    valRefs = r.right;
  }

  // 2. Where to start: --restore-from and --resume files are read and checked before any
  //    program is instantiated (which compiles shaders), so a wrong file fails at once.
  const start = await startState(run, hyperparameters);
  if (E.isLeft(start)) return start;
  const sampler = start.right.sampler;
  if (start.right.iteration >= run.numStepsStop) {
    return E.left(trainError("options", `the run is already at iteration ${start.right.iteration}; --num-steps-stop ${run.numStepsStop} leaves nothing to do`));
  }

  // 3. Programs on the device.
  const made = await instantiateTuned(device, module);
  if (E.isLeft(made)) return E.left(fromRuntimeError(made.left));
  const instance = made.right;
  let evaluator: EvalSetup | undefined;
  let evalInstance: Instance | undefined;
  const streams: PrefetchLoader[] = [];
  try {
    if (run.evalModule !== undefined && valRefs !== undefined) {
      const em = await instantiateTuned(device, run.evalModule);
      if (E.isLeft(em)) return E.left(fromRuntimeError(em.left));
      evalInstance = em.right;
      const s = evalSetup(run.evalModule, evalInstance, valRefs, protocol);
      if (E.isLeft(s)) return s;
      evaluator = s.right;
    }

    // 4. Parameters: initial values (seeded), then the restored or resumed tensors.
    const slots = persistentSlots(module);
    writeInitialValues(instance, slots, sampler.seed);
    writeGroups(instance, slots, start.right.groups);
    if (hyper.length > 0) instance.write(HYPER_SLOT, Float32Array.from(hyper, (h) => h.value));
    const first = start.right.iteration;
    const progress = new Progress(run.title ?? module.name, run.numStepsStop, run.progress ?? process.stderr);
    const hyperNote = hyper.length > 0 ? [`hyperparameters: ${describeHyperparameters(module, hyper)}`] : [];
    for (const n of [...runNotes, ...start.right.notes, ...hyperNote]) progress.message(n);

    // 5. Sample streams: seeded shuffles over NUM_STEPS draws (the official max_iters), indexed by position.
    const numSteps = Number(runValues["numSteps"] ?? run.numStepsStop);
    const horizon = Math.max(1, numSteps);
    const remaining = run.numStepsStop - first;
    const augment = run.augment;
    // One stream per domain: its own shuffle (seed stream 1 source, 2 target) and augmentation
    // (3 source, 4 target), resumed at the checkpoint's position.
    const domainStream = (refs: readonly SampleRef[], input: NonNullable<Inputs["source"]>, start: number, domain: 1 | 2): PrefetchLoader =>
      sampleStream({
        refs,
        order: repeatedShuffle(refs.length, horizon, mixSeed(sampler.seed, domain)),
        start,
        count: remaining,
        size: input.size,
        labels: input.label !== undefined ? "input-size" : "none",
        protocol,
        workers: run.workers,
        depth: 4,
        ...(augment ? { augment: { policy: augment, seed: mixSeed(sampler.seed, domain + 2) } } : {}),
      });
    const sourceStream = inputs.source !== undefined && sourceRefs !== undefined ? domainStream(sourceRefs, inputs.source, sampler.sourcePosition, 1) : undefined;
    const targetStream = inputs.target !== undefined && targetRefs !== undefined ? domainStream(targetRefs, inputs.target, sampler.targetPosition, 2) : undefined;
    for (const stream of [sourceStream, targetStream]) if (stream !== undefined) streams.push(stream);

    // Labels that train nothing (label-watch.ts): a labelled stream whose first draws are all
    // ignore-only is refused before anything is written; single such files are warned about.
    const labelled = (refs: readonly SampleRef[] | undefined, input: Inputs["source"]) => (input?.label !== undefined ? refs : undefined);
    for (const [role, refs, position, domain] of [
      ["source", labelled(sourceRefs, inputs.source), sampler.sourcePosition, 1],
      ["target", labelled(targetRefs, inputs.target), sampler.targetPosition, 2],
    ] as const) {
      if (refs === undefined) continue;
      const order = repeatedShuffle(refs.length, horizon, mixSeed(sampler.seed, domain));
      const draws = Array.from({ length: Math.min(FIRST_DRAWS, refs.length) }, (_, k) => sampleAt(order, position + k));
      const checked = await refuseIgnoreOnlyStream(role, refs, draws, protocol);
      if (E.isLeft(checked)) return checked;
    }
    const ignoreOnly = { source: ignoreOnlyWarnings("source", sourceRefs ?? [], protocol), target: ignoreOnlyWarnings("target", targetRefs ?? [], protocol) };

    // 6. The loop.
    const slotNames = slots.map((s) => s.slot.name);
    const losses = lossNames(module);
    const opened = MetricsLog.open(run.metricsPath, start.right.resumedFrom !== undefined ? first : undefined);
    if (E.isLeft(opened)) return opened;
    const log = opened.right;
    log.write({ type: "start", iteration: first, program: module.name, seed: sampler.seed, hyperparameters, ...(start.right.resumedFrom ? { resumed_from: start.right.resumedFrom } : {}) });
    const began = performance.now();
    let lastFinite = first;
    let lastGoodState = first;
    let lastLosses: Record<string, number> = {};
    let lastSnapshot: string | undefined = start.right.resumedFrom;
    let best = start.right.best;
    let groups: Record<string, StateDict> = {};
    const evals: { iteration: number; result: EvalResult }[] = [];
    // it/s over a sliding window of read-backs, for the bar and the ETA.
    const window: { done: number; t: number }[] = [{ done: first, t: began }];

    const plot = async () => {
      if (run.plotPath === undefined || run.metricsPath === undefined) return;
      const panels = runPanels(readMetrics(run.metricsPath));
      await writeChart(run.plotPath, renderSvg(`${module.name} (seed ${sampler.seed})`, panels))();
    };

    for (let it = first; it < run.numStepsStop; it++) {
      const samples: { source?: Sample; target?: Sample } = {};
      for (const side of ["source", "target"] as const) {
        const slots = inputs[side];
        const stream = side === "source" ? sourceStream : targetStream;
        if (slots === undefined || stream === undefined) continue;
        const s = await nextSample(stream, side);
        if (E.isLeft(s)) return s;
        samples[side] = s.right;
        if (slots.label !== undefined) {
          const warning = ignoreOnly[side](s.right);
          if (warning !== undefined) progress.message(warning);
        }
      }
      runIteration(instance, inputs, it, samples);
      const done = it + 1;
      const last = done === run.numStepsStop;
      const snapshotDue = last || (run.savePredEvery > 0 && done % run.savePredEvery === 0);
      const evalDue = evaluator !== undefined && (last || done % run.evalEvery === 0);
      if (done % run.logEvery === 0 || snapshotDue || evalDue) {
        const names = snapshotDue || evalDue ? [...losses, ...slotNames] : losses;
        const values = await instance.readMany(names);
        const now = performance.now();
        lastLosses = Object.fromEntries(losses.map((n, i) => [n, values[i]![0]!]));
        const bad = losses.find((n) => !Number.isFinite(lastLosses[n]));
        if (bad !== undefined) {
          const value = lastLosses[bad]!;
          log.write({ type: "diverged", iteration: done, loss: bad, value: Number.isNaN(value) ? null : value, last_finite: lastFinite });
          progress.finish();
          await plot();
          const keep = lastSnapshot === undefined ? "no snapshot was written before it" : `the last good snapshot is ${lastSnapshot}`;
          return E.left(
            trainError(
              "diverged",
              `${bad} is ${value} at iteration ${done}; all losses were finite at iteration ${lastFinite}, so it first became non-finite at an iteration in (${lastFinite}, ${done}] ` +
                `(losses are read every ${run.logEvery}; --log-every 1 pins it down). The run stopped without saving; ${keep}.`,
            ),
          );
        }
        lastFinite = done;
        window.push({ done, t: now });
        while (window.length > 2 && now - window[0]!.t > 30_000) window.shift();
        const w0 = window[0]!;
        const itsPerS = now > w0.t ? ((done - w0.done) * 1000) / (now - w0.t) : 0;
        log.write({ type: "loss", iteration: done, time_s: (now - began) / 1000, lr: polyLearningRate(runValues, it), its_per_s: itsPerS, losses: lastLosses });
        progress.update(done, lastLosses, itsPerS, last);
        if (snapshotDue || evalDue) {
          // Finite losses do not prove finite state: train-mode BN hides an overflowing running
          // variance, for one. A snapshot must be good in every tensor.
          const state = values.slice(losses.length);
          const broken = slotNames.findIndex((_, i) => !allFinite(state[i]!));
          if (broken >= 0) {
            log.write({ type: "diverged", iteration: done, loss: slotNames[broken]!, value: null, last_finite: lastGoodState });
            progress.finish();
            await plot();
            const keep = lastSnapshot === undefined ? "no snapshot was written before it" : `the last good snapshot is ${lastSnapshot}`;
            return E.left(
              trainError(
                "diverged",
                `tensor ${slotNames[broken]} holds non-finite values at iteration ${done} (the losses are still finite); every tensor was finite at iteration ${lastGoodState}. ` +
                  `The run stopped without saving; ${keep}.`,
              ),
            );
          }
          lastGoodState = done;
          groups = groupValues(slots, state);
        }
        if (evalDue && evaluator !== undefined) {
          const g = groups["G"];
          if (g === undefined) return E.left(trainError("program", `${module.name} has no G parameters to evaluate`));
          const r = await evaluateWeights(evaluator, g, module.name, { ...(run.evalLimit !== undefined ? { limit: run.evalLimit } : {}) });
          if (E.isLeft(r)) return r;
          const res = r.right;
          evals.push({ iteration: done, result: res });
          log.write({
            type: "eval",
            iteration: done,
            mIoU: res.summary.miou,
            classes: Object.fromEntries(protocol.names.map((n, k) => [n, Number.isNaN(res.summary.iou[k]!) ? null : res.summary.iou[k]!])),
            images: res.images,
            seconds: res.seconds,
          });
          let line = `iteration ${done}: target val mIoU ${res.summary.miou.toFixed(2)} (${res.images} images, ${res.seconds.toFixed(1)} s)`;
          if (best === undefined || res.summary.miou > best.mIoU) {
            const path = snapshotPath(run.snapshotDir, run.snapshotPrefix, "best");
            const saved = await saveCheckpoint(path, {
              program: module.name,
              config: module.config,
              hyperparameters,
              iteration: done,
              sampler: { seed: sampler.seed, sourcePosition: sampler.sourcePosition + (done - first), targetPosition: sampler.targetPosition + (done - first) },
              groups,
              extra: { losses: lastLosses, mIoU: res.summary.miou, ...(run.extra ?? {}) },
            })();
            if (E.isLeft(saved)) return saved;
            best = { iteration: done, mIoU: res.summary.miou, path };
            log.write({ type: "best", iteration: done, mIoU: res.summary.miou, path });
            line += `, best so far -> ${path}`;
          } else {
            line += ` (best ${best.mIoU.toFixed(2)} at iteration ${best.iteration})`;
          }
          progress.message(line);
          await plot();
        }
        if (snapshotDue) {
          const path = snapshotPath(run.snapshotDir, run.snapshotPrefix, done);
          const saved = await saveCheckpoint(path, {
            program: module.name,
            config: module.config,
            hyperparameters,
            iteration: done,
            sampler: { seed: sampler.seed, sourcePosition: sampler.sourcePosition + (done - first), targetPosition: sampler.targetPosition + (done - first) },
            groups,
            extra: { losses: lastLosses, ...(best ? { best } : {}), ...(run.extra ?? {}) },
          })();
          if (E.isLeft(saved)) return saved;
          lastSnapshot = path;
          log.write({ type: "snapshot", iteration: done, path });
          if (!last) progress.message(`snapshot ${path}`);
        }
      }
      // Snapshots and evaluations are not training: restart the it/s window after them.
      if (snapshotDue || evalDue) window.splice(0, window.length, { done, t: performance.now() });
      await run.afterStep?.(done);
    }
    progress.finish();
    await plot();
    const seconds = (performance.now() - began) / 1000;
    return E.right({
      iteration: run.numStepsStop,
      losses: lastLosses,
      groups,
      lastSnapshot,
      best,
      evals,
      seconds,
      itsPerS: (run.numStepsStop - first) / seconds,
    });
  } finally {
    await Promise.all(streams.map((s) => s.close()));
    instance.destroy();
    evalInstance?.destroy();
  }
}

