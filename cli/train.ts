// What `npm run train` does with its parsed options: pick the generated program, acquire a
// device, run the loop, print where everything went. scripts/train.ts only calls this and maps
// the result to an exit status.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import type { AcquiredDevice } from "../runtime/device.js";
import type { GeneratedModule } from "../format/module.js";
import { acquireNodeDevice } from "../runtime/node-gpu.js";
import { trainError, fromRuntimeError, type TrainError } from "../train/errors.js";
import { runHyperparameters } from "../train/hyperparameters.js";
import { classesFor } from "./class-option.js";
import type { TrainCliOptions } from "./options.js";
import { chooseEvalProgram, differences, evalMisfit, evalPrograms, loadModule, presetOf, selectProgram } from "../train/programs.js";
import { expectedTable, persistentSlots } from "../train/slots.js";
import { combinedNeeds, train, type TrainResult } from "../train/trainer.js";

export async function loadPrograms(o: TrainCliOptions): Promise<E.Either<TrainError, { module: GeneratedModule; evalModule?: GeneratedModule; notes: string[] }>> {
  const notes: string[] = [];
  let module: GeneratedModule;
  if (o.moduleFile !== undefined) {
    const m = await loadModule(o.moduleFile)();
    if (E.isLeft(m)) return m;
    module = m.right;
    const diff = differences(module.config, o.overrides);
    if (diff.length > 0) return E.left(trainError("program", `${o.moduleFile} was compiled with other values: ${diff.join("; ")}`));
  } else {
    const sel = await selectProgram(o.variant, o.preset, o.overrides);
    if (E.isLeft(sel)) return sel;
    if (sel.right.note !== undefined) notes.push(sel.right.note);
    const m = await loadModule(sel.right.name)();
    if (E.isLeft(m)) return m;
    module = m.right;
  }
  // Hyperparameters are run-time values of any program: checked against this one's (a flag the
  // program does not read is refused) before a device is acquired.
  const hyper = runHyperparameters(module, o.hyperparameters);
  if (E.isLeft(hyper)) return hyper;
  if (o.evalEvery === 0) return E.right({ module, notes });
  // The evaluation program whose network is exactly the one this program trains (signature.ts).
  const preset = o.moduleFile !== undefined ? presetOf(module.name) : o.preset;
  const trained = expectedTable(persistentSlots(module), "G");
  if (o.evalModuleFile !== undefined) {
    // An evaluation module given by file (a user's network, a small-size copy): it must compute
    // exactly the network this program trains, as a generated one chosen by signature does.
    const e = await loadModule(o.evalModuleFile)();
    if (E.isLeft(e)) return e;
    const misfit = evalMisfit(trained, e.right, module.config);
    if (misfit !== undefined) return E.left(trainError("program", `--eval-module ${o.evalModuleFile} does not evaluate the network ${module.name} trains: ${misfit}`));
    return E.right({ module, evalModule: e.right, notes: [...notes, `evaluating with ${o.evalModuleFile}`] });
  }
  const chosen = await chooseEvalProgram(`program ${module.name}'s G`, trained, evalPrograms(preset), preset, module.config);
  if (E.isLeft(chosen)) return E.left(trainError(chosen.left.kind, `--eval-every: ${chosen.left.message}`));
  return E.right({ module, evalModule: chosen.right.module, notes: [...notes, `evaluating with ${chosen.right.name}`] });
}

export async function acquireFor(modules: readonly GeneratedModule[]): Promise<E.Either<TrainError, AcquiredDevice>> {
  const d = await acquireNodeDevice(combinedNeeds(modules))();
  return E.isLeft(d) ? E.left(fromRuntimeError(d.left)) : d;
}

export async function runTrainCli(o: TrainCliOptions, argv: readonly string[]): Promise<E.Either<TrainError, TrainResult>> {
  const programs = await loadPrograms(o);
  if (E.isLeft(programs)) return programs;
  const { module, evalModule, notes } = programs.right;
  for (const n of notes) console.error(n);
  const numSteps = o.hyperparameters["numSteps"] ?? Number(module.config["numSteps"]);
  const numStepsStop = o.numStepsStop ?? Math.min(Number.isFinite(numSteps) ? numSteps : 150000, 150000);
  const snapshotDir = o.snapshotDir ?? join("runs", module.name);
  // The class table before the device: a bad --classes file is refused without one.
  const classes = await classesFor(module, o.classesFile);
  if (E.isLeft(classes)) return classes;
  const device = await acquireFor(evalModule ? [module, evalModule] : [module]);
  if (E.isLeft(device)) return device;
  console.error(`${module.name}: training to iteration ${numStepsStop} on ${device.right.info.vendor || "?"} ${device.right.info.architecture || ""} (${device.right.adapterClass}); snapshots in ${snapshotDir}`);
  return train(
    {
      module,
      ...(evalModule ? { evalModule } : {}),
      data: o.data,
      seed: o.seed,
      hyperparameters: o.hyperparameters,
      numStepsStop,
      savePredEvery: o.savePredEvery,
      snapshotDir,
      snapshotPrefix: module.name,
      ...(o.restoreFrom !== undefined ? { restoreFrom: o.restoreFrom } : {}),
      ...(o.resume !== undefined ? { resume: o.resume } : {}),
      logEvery: o.logEvery,
      evalEvery: o.evalEvery,
      ...(o.evalImages !== undefined ? { evalLimit: o.evalImages } : {}),
      ...(o.classesFile !== undefined ? { classes: classes.right } : {}),
      workers: o.workers,
      ...(o.augment ? { augment: o.augment } : {}),
      metricsPath: o.metrics ?? join(snapshotDir, "metrics.jsonl"),
      plotPath: o.plot ?? join(snapshotDir, "training.png"),
      extra: { argv: [...argv] },
    },
    device.right,
  );
}
