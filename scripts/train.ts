// npm run train -- --program VARIANT --preset PRESET [options]   (cli/options.ts lists them)
//
// Trains one AdaptSegNet variant with a generated step program: progress bar with the losses,
// it/s and ETA; metrics.jsonl and training.png in the snapshot folder; snapshots in safetensors
// with the PyTorch keys, the optimizer state, the iteration and the sampler state; --resume
// continues a killed run exactly. Exit status: 0 done, 1 the run failed (data, checkpoint,
// device, a loss turned NaN), 2 the request cannot be run as given (options, no such program, a
// --snapshot-dir that is not a writable directory or holds another run).

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { loadPrograms, runTrainCli } from "../cli/train";
import { exitCodeOf, renderTrainError, type TrainError } from "../train/errors";
import { parseTrainOptions, TRAIN_USAGE, type TrainCliOptions } from "../cli/options";
import { preflightRunRequest } from "../train/run-dir";
import { runRequestOf } from "../train/trainer";

/**
 * The snapshot directory, checked before the device is acquired or any data opened: it must be
 * a writable directory, hold no other run (or, with --resume, this one). The trainer checks
 * again under its lock; this only makes a wrong --snapshot-dir fail at once. The defaults
 * (runs/<program>, <dir>/metrics.jsonl) are runTrainCli's.
 */
async function checkSnapshotDir(o: TrainCliOptions): Promise<E.Either<TrainError, void>> {
  const programs = await loadPrograms(o);
  if (E.isLeft(programs)) return programs;
  const module = programs.right.module;
  const snapshotDir = o.snapshotDir ?? join("runs", module.name);
  const checked = preflightRunRequest(
    runRequestOf({
      module,
      data: o.data,
      seed: o.seed,
      hyperparameters: o.hyperparameters,
      snapshotPrefix: module.name,
      ...(o.augment ? { augment: o.augment } : {}),
      snapshotDir,
      metricsPath: o.metrics ?? join(snapshotDir, "metrics.jsonl"),
      ...(o.resume !== undefined ? { resume: o.resume } : {}),
    }),
  );
  return E.map(() => undefined)(checked);
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  const options = parseTrainOptions(argv);
  if (E.isLeft(options)) {
    console.error(`${renderTrainError(options.left)}\n${TRAIN_USAGE}`);
    return 2;
  }
  const dir = await checkSnapshotDir(options.right);
  if (E.isLeft(dir)) {
    console.error(renderTrainError(dir.left));
    return exitCodeOf(dir.left);
  }
  const result = await runTrainCli(options.right, argv);
  if (E.isLeft(result)) {
    console.error(renderTrainError(result.left));
    return exitCodeOf(result.left);
  }
  const r = result.right;
  const losses = Object.entries(r.losses)
    .map(([k, v]) => `${k} ${v.toFixed(4)}`)
    .join(", ");
  console.log(`done: ${r.iteration} iterations, ${r.itsPerS.toFixed(2)} it/s over ${r.seconds.toFixed(0)} s; last losses ${losses}`);
  if (r.lastSnapshot !== undefined) console.log(`snapshot: ${r.lastSnapshot}`);
  if (r.best !== undefined) console.log(`best: iteration ${r.best.iteration}, target val mIoU ${r.best.mIoU.toFixed(2)} -> ${r.best.path}`);
  return 0;
}

// Dawn keeps the process alive after the work is done; leave explicitly.
process.exit(await main(process.argv.slice(2)));
