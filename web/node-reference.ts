// The same runs under Node (Dawn on lavapipe) as the page makes in Chromium: the synthetic data
// the page generates, written to disk as `npm run demo -- --quick` writes it, and the Node
// trainer (train/trainer.ts) on the same programs with the same seed, every loss read back.
// The browser test compares the page's losses with these; --screenshot reports both speeds.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { describeDataError } from "../datasets/errors";
import { writeSynth } from "../datasets/synth/generate";
import type { GeneratedModule } from "../format/module";
import { module as evalModule } from "../generated/eval-multi-level-cpu-demo/module";
import { module as multiLevel } from "../generated/multi-level-cpu-demo/module";
import { module as sourceOnly } from "../generated/source-only-cpu-demo/module";
import { describeAdapter } from "../runtime/device";
import { acquireNodeDevice } from "../runtime/node-gpu";
import type { NamedDataset } from "../train/data";
import { fromRuntimeError, trainError, type TrainError } from "../train/errors";
import { combinedNeeds } from "../train/iteration";
import { readMetrics } from "../train/metrics";
import { train } from "../train/trainer";
import { WEB_SYNTH } from "./page/benchmark";

/** The page's models, in the page's order (web/page/main.ts MODELS), and its seed. */
export const WEB_MODELS: readonly { readonly variant: string; readonly module: GeneratedModule }[] = [
  { variant: "source-only", module: sourceOnly },
  { variant: "multi-level", module: multiLevel },
];
export const WEB_SEED = 1;

export interface NodeRun {
  readonly variant: string;
  /** Every iteration's losses (logEvery 1). */
  readonly records: readonly { readonly iteration: number; readonly losses: Readonly<Record<string, number>> }[];
  readonly itsPerS: number;
  readonly snapshot: string;
}

export interface NodeReference {
  readonly adapter: string;
  readonly dataDir: string;
  readonly runs: readonly NodeRun[];
}

function datasets(dataDir: string): { source: NamedDataset; target: NamedDataset } {
  return {
    source: { role: "source", option: "--data", spec: { kind: "gta5", root: join(dataDir, "gta5") } },
    target: { role: "target", option: "--data", spec: { kind: "cityscapes", root: join(dataDir, "cityscapes"), split: "train", withLabels: false } },
  };
}

/** Writes the page's benchmark under `dir`/data and trains each page model there for `iterations`. */
export async function nodeReference(dir: string, iterations: number): Promise<E.Either<TrainError, NodeReference>> {
  const dataDir = join(dir, "data");
  const written = await writeSynth({ ...WEB_SYNTH, out: dataDir })();
  if (E.isLeft(written)) return E.left(trainError("data", describeDataError(written.left)));
  const device = await acquireNodeDevice(combinedNeeds([sourceOnly, multiLevel, evalModule]))();
  if (E.isLeft(device)) return E.left(fromRuntimeError(device.left));
  const runs: NodeRun[] = [];
  for (const m of WEB_MODELS) {
    const out = join(dir, m.variant);
    const metricsPath = join(out, "metrics.jsonl");
    const r = await train(
      {
        module: m.module,
        data: datasets(dataDir),
        seed: WEB_SEED,
        numStepsStop: iterations,
        savePredEvery: 0,
        snapshotDir: out,
        snapshotPrefix: m.module.name,
        logEvery: 1,
        evalEvery: 0,
        workers: 0,
        metricsPath,
        existingRun: "replace",
        progress: { write: () => true },
      },
      device.right,
    );
    if (E.isLeft(r)) return r;
    const records = readMetrics(metricsPath).flatMap((x) => (x.type === "loss" ? [{ iteration: x.iteration, losses: x.losses }] : []));
    runs.push({ variant: m.variant, records, itsPerS: r.right.itsPerS, snapshot: r.right.lastSnapshot ?? "" });
  }
  device.right.device.destroy();
  return E.right({ adapter: describeAdapter(device.right.info), dataDir, runs });
}
