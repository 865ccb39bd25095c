// `npm run demo`: the paper's experiment in miniature, on a CPU, from a fresh clone.
//
//   1. the synthetic domain-shift benchmark (datasets/synth) in data/synth, if missing;
//   2. three models with the cpu-demo preset, same seed, same number of iterations:
//      source-only (no target data), multi-level adapted (AdaptSegNet), and target-trained
//      (oracle, supervised on target labels);
//   3. the official evaluation of each final model on the synthetic target val split;
//   4. the per-class table with the three mIoUs, image | ground truth | source-only | adapted |
//      oracle panels, and the training curves with mIoU over time, in the output folder.
//
// What the paper shows, and the demo should too: adapted above source-only, oracle above both.

import * as E from "fp-ts/lib/Either.js";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StateDict } from "../checkpoint/tensor.js";
import type { AcquiredDevice } from "../runtime/device.js";
import { describeDataError } from "../datasets/errors.js";
import { readRgb } from "../datasets/image.js";
import { writeSynth, type SynthOptions } from "../datasets/synth/generate.js";
import { colorize } from "../evaluation/colorize.js";
import { formatPercent } from "../evaluation/confusion.js";
import { jsonReport, markdownTable, type ScoreSummary } from "../evaluation/report.js";
import type { GeneratedModule } from "../format/module.js";
import { instantiateTuned } from "../runtime/node-tune.js";
import { acquireFor } from "../cli/train.js";
import { openDataset, type NamedDataset } from "../train/data.js";
import { fromPlotError, fromRuntimeError, trainError, type TrainError } from "../train/errors.js";
import { evalSetup, evaluateWeights, type Prediction, toTrainIds } from "../train/evaluate.js";
import { readMetrics, type MetricRecord } from "../train/metrics.js";
import { writePanelGrid } from "../plots/pictures.js";
import { COLORS, type Panel, renderSvg, writeChart } from "../plots/chart.js";
import { chooseEvalProgram, evalPrograms, loadModule } from "../train/programs.js";
import { expectedTable, persistentSlots } from "../train/slots.js";
import { formatDuration } from "../train/progress.js";
import { protocolOf, train } from "../train/trainer.js";

export interface DemoOptions {
  readonly out: string;
  readonly dataDir: string;
  readonly seed: number;
  readonly iterations: number;
  /** Evaluate on the target val split every this many iterations during training (curves). */
  readonly evalEvery: number;
  /** How many validation images to score (undefined: all). */
  readonly evalImages?: number;
  readonly panels: number;
  readonly synth: Omit<SynthOptions, "out">;
  readonly quick: boolean;
  /** The segmentation network: DeepLab-v2 ResNet (AdaptSegNet's) or DeepLab-MobileNetV2. */
  readonly network: DemoNetwork;
}

export type DemoNetwork = "resnet" | "mobilenet";

/** The benchmark the demo trains on: the generator's scenes at 256x128, a gap of `shift`. */
export const DEMO_SYNTH: Omit<SynthOptions, "out"> = {
  seed: 0,
  sourceSize: { width: 256, height: 128 },
  targetSize: { width: 256, height: 128 },
  countSource: 200,
  countTrain: 200,
  countVal: 50,
  shift: 0.5,
};

/** --quick: small enough for CI on a cold shader cache (< 3 minutes). */
export const QUICK_SYNTH: Omit<SynthOptions, "out"> = { ...DEMO_SYNTH, countSource: 24, countTrain: 24, countVal: 8 };

export const DEFAULT_ITERATIONS = 1500;
export const QUICK_ITERATIONS = 40;

/**
 * The models each network's demo trains, by variant and generated program. MobileNetV2 has no
 * oracle program: the demo compares what adaptation adds to the same network.
 */
export const DEMO_MODELS: { readonly [N in DemoNetwork]: readonly { readonly variant: string; readonly program: string; readonly title: string }[] } = {
  resnet: [
    { variant: "source-only", program: "source-only-cpu-demo", title: "source-only" },
    { variant: "multi-level", program: "multi-level-cpu-demo", title: "adapted (multi-level)" },
    { variant: "oracle", program: "oracle-cpu-demo", title: "target-trained (oracle)" },
  ],
  mobilenet: [
    { variant: "source-only", program: "mobilenet-source-only-cpu-demo", title: "source-only" },
    { variant: "multi-level", program: "mobilenet-multi-level-cpu-demo", title: "adapted (multi-level)" },
  ],
};

interface ModelRun {
  readonly variant: string;
  readonly title: string;
  readonly weights: StateDict;
  readonly seconds: number;
  readonly itsPerS: number;
  readonly metrics: readonly MetricRecord[];
  readonly best?: { readonly iteration: number; readonly mIoU: number };
}

export interface DemoResult {
  readonly summaries: readonly { readonly title: string; readonly variant: string; readonly summary: ScoreSummary }[];
  readonly seconds: number;
  readonly out: string;
  /** The WebGPU adapter it ran on, in words. */
  readonly adapter: string;
}

const say = (s: string) => process.stdout.write(`${s}\n`);

let sharedDevice: E.Right<AcquiredDevice> | undefined;

/** The synthetic data, written unless data/synth/synth.json already records the same options. */
async function ensureData(o: DemoOptions): Promise<E.Either<TrainError, void>> {
  const stamp = join(o.dataDir, "synth.json");
  if (existsSync(stamp)) {
    try {
      const s = JSON.parse(readFileSync(stamp, "utf8")) as { seed?: number; shift?: number; source?: { count?: number; size?: unknown }; target?: { size?: unknown; train?: { count?: number }; val?: { count?: number } } };
      const same =
        s.seed === o.synth.seed &&
        s.shift === o.synth.shift &&
        s.source?.count === o.synth.countSource &&
        s.target?.train?.count === o.synth.countTrain &&
        s.target?.val?.count === o.synth.countVal &&
        JSON.stringify(s.source?.size) === JSON.stringify(o.synth.sourceSize) &&
        JSON.stringify(s.target?.size) === JSON.stringify(o.synth.targetSize);
      if (same) {
        say(`data: ${o.dataDir} (already there)`);
        return E.right(undefined);
      }
      say(`data: ${o.dataDir} was generated with other options; generating it again`);
    } catch {
      say(`data: ${stamp} is unreadable; generating the data again`);
    }
  }
  const t0 = performance.now();
  const r = await writeSynth({ ...o.synth, out: o.dataDir })();
  if (E.isLeft(r)) return E.left(trainError("data", `cannot write the synthetic data: ${describeDataError(r.left)}`));
  say(`data: wrote ${r.right.images} synthetic images to ${o.dataDir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return E.right(undefined);
}

function datasets(dataDir: string, variant: string): { source: NamedDataset; target: NamedDataset; val: NamedDataset } {
  const cs = join(dataDir, "cityscapes");
  return {
    source: { role: "source", option: "--data", spec: { kind: "gta5", root: join(dataDir, "gta5") } },
    target: { role: "target", option: "--data", spec: { kind: "cityscapes", root: cs, split: "train", withLabels: variant === "oracle" } },
    val: { role: "target validation", option: "--data", spec: { kind: "cityscapes", root: cs, split: "val", withLabels: true } },
  };
}

const lossSeries = (records: readonly MetricRecord[], name: string) =>
  records.flatMap((r) => (r.type === "loss" && r.losses[name] !== undefined ? [[r.iteration, r.losses[name]!] as const] : []));
const evalSeries = (records: readonly MetricRecord[]) => records.flatMap((r) => (r.type === "eval" ? [[r.iteration, r.mIoU] as const] : []));

/** The demo's figure: losses of the three runs, the adversarial game, mIoU over time, final mIoUs. */
function demoPanels(runs: readonly ModelRun[], finals: readonly { title: string; miou: number }[]): Panel[] {
  const adapted = runs.find((r) => r.variant === "multi-level");
  const panels: Panel[] = [
    {
      kind: "lines",
      title: "segmentation loss (main head)",
      xLabel: "iteration",
      yMin: 0,
      series: runs.map((r, i) => ({ label: r.variant, color: COLORS[i]!, smooth: 0.8, points: lossSeries(r.metrics, "loss_seg2") })),
    },
    {
      kind: "lines",
      title: "target val mIoU (%) during training",
      xLabel: "iteration",
      yMin: 0,
      legend: "bottom",
      series: runs.map((r, i) => ({ label: r.variant, color: COLORS[i]!, markers: true, points: evalSeries(r.metrics) })),
    },
  ];
  if (adapted !== undefined) {
    panels.push({
      kind: "lines",
      title: "adapted: adversarial loss of G (target)",
      xLabel: "iteration",
      series: [
        { label: "loss_adv2 (main)", color: COLORS[0], smooth: 0.8, points: lossSeries(adapted.metrics, "loss_adv2") },
        { label: "loss_adv1 (aux)", color: COLORS[1], smooth: 0.8, points: lossSeries(adapted.metrics, "loss_adv1") },
      ],
    });
    panels.push({
      kind: "lines",
      title: "adapted: discriminator loss",
      xLabel: "iteration",
      yMin: 0,
      series: [
        { label: "loss_D2 (main)", color: COLORS[0], smooth: 0.8, points: lossSeries(adapted.metrics, "loss_D2") },
        { label: "loss_D1 (aux)", color: COLORS[1], smooth: 0.8, points: lossSeries(adapted.metrics, "loss_D1") },
      ],
    });
  }
  panels.push({ kind: "bars", title: "final target val mIoU (%)", bars: finals.map((f, i) => ({ label: f.title.split(" ")[0]!, value: f.miou, color: COLORS[i]! })) });
  return panels;
}

export async function runDemo(o: DemoOptions): Promise<E.Either<TrainError, DemoResult>> {
  const began = performance.now();
  mkdirSync(o.out, { recursive: true });
  const data = await ensureData(o);
  if (E.isLeft(data)) return data;

  // Programs (generated by `npm run codegen`) and one device for all of them.
  const modules: Record<string, GeneratedModule> = {};
  // Each model is scored by the evaluation program of exactly its network (the oracle is Res_Deeplab).
  const evalOf: Record<string, GeneratedModule> = {};
  const MODELS = DEMO_MODELS[o.network];
  for (const m of MODELS) {
    const name = m.program;
    const loaded = await loadModule(name)();
    if (E.isLeft(loaded)) return loaded;
    modules[name] = loaded.right;
    const chosen = await chooseEvalProgram(`program ${name}'s G`, expectedTable(persistentSlots(loaded.right), "G"), evalPrograms("cpu-demo"), "cpu-demo", loaded.right.config);
    if (E.isLeft(chosen)) return chosen;
    modules[chosen.right.name] = chosen.right.module;
    evalOf[m.variant] = chosen.right.module;
  }
  // One device for every seed of a --seeds run.
  const device = sharedDevice ?? (await acquireFor(Object.values(modules)));
  if (E.isLeft(device)) return device;
  sharedDevice = device;
  say(`device: ${device.right.info.vendor || "?"} ${device.right.info.architecture || ""} (${device.right.adapterClass} adapter)`);
  say(`training ${MODELS.map((m) => m.program).join(", ")} for ${o.iterations} iterations each, seed ${o.seed} (cpu-demo preset: 64x128 inputs)\n`);

  // Train the three models.
  const runs: ModelRun[] = [];
  for (const m of MODELS) {
    const module = modules[m.program]!;
    const dir = join(o.out, m.variant);
    const t0 = performance.now();
    const r = await train(
      {
        module,
        evalModule: evalOf[m.variant]!,
        data: datasets(o.dataDir, m.variant),
        seed: o.seed,
        numStepsStop: o.iterations,
        savePredEvery: 0,
        snapshotDir: dir,
        snapshotPrefix: module.name,
        logEvery: 10,
        evalEvery: o.evalEvery,
        ...(o.evalImages !== undefined ? { evalLimit: o.evalImages } : {}),
        workers: 0,
        metricsPath: join(dir, "metrics.jsonl"),
        plotPath: join(dir, "training.png"),
        title: m.variant.padEnd(12),
        extra: { demo: { seed: o.seed, iterations: o.iterations } },
        // The demo regenerates its output folder: a rerun replaces the earlier run in it.
        existingRun: "replace",
      },
      device.right,
    );
    if (E.isLeft(r)) return r;
    const g = r.right.groups["G"];
    if (g === undefined) return E.left(trainError("program", `${module.name} returned no G weights`));
    const seconds = (performance.now() - t0) / 1000;
    say(`${m.variant}: ${o.iterations} iterations in ${formatDuration(seconds)} (${r.right.itsPerS.toFixed(2)} it/s), snapshot ${r.right.lastSnapshot ?? "-"}`);
    runs.push({
      variant: m.variant,
      title: m.title,
      weights: g,
      seconds,
      itsPerS: r.right.itsPerS,
      metrics: readMetrics(join(dir, "metrics.jsonl")),
      ...(r.right.best ? { best: { iteration: r.right.best.iteration, mIoU: r.right.best.mIoU } } : {}),
    });
  }

  // Evaluate the final models (not the best snapshots: choosing on the val split would be choosing on the test set).
  const valRefs = await openDataset(datasets(o.dataDir, "oracle").val)();
  if (E.isLeft(valRefs)) return valRefs;
  const summaries: { title: string; variant: string; summary: ScoreSummary }[] = [];
  const predictions: Prediction[][] = [];
  for (const run of runs) {
    const evalModule = evalOf[run.variant]!;
    const protocol = protocolOf(evalModule);
    if (E.isLeft(protocol)) return protocol;
    const inst = await instantiateTuned(device.right, evalModule);
    if (E.isLeft(inst)) return E.left(fromRuntimeError(inst.left));
    try {
      const setup = evalSetup(evalModule, inst.right, valRefs.right, protocol.right);
      if (E.isLeft(setup)) return setup;
      const r = await evaluateWeights(setup.right, run.weights, run.variant, { keep: o.panels, ...(o.evalImages !== undefined ? { limit: o.evalImages } : {}) });
      if (E.isLeft(r)) return r;
      summaries.push({ title: run.title, variant: run.variant, summary: r.right.summary });
      predictions.push([...r.right.predictions]);
    } finally {
      inst.right.destroy();
    }
  }

  // Every demo model has the same 19 classes, so one protocol colours every panel.
  const demoProtocol = summaries[0]!.summary.protocol;
  // Pictures: image | ground truth | source-only | adapted | oracle.
  const rows = [];
  for (let i = 0; i < (predictions[0]?.length ?? 0); i++) {
    const p0 = predictions[0]![i]!;
    const size = { width: p0.sample.labelWidth, height: p0.sample.labelHeight };
    const photo = await readRgb(p0.ref.imagePath, size)();
    if (E.isLeft(photo)) return E.left(trainError("data", describeDataError(photo.left)));
    const gt = colorize({ ...size, data: toTrainIds(p0.sample.label!, demoProtocol) });
    rows.push([photo.right, gt, ...predictions.map((ps) => colorize({ ...size, data: toTrainIds(ps[i]!.pred, demoProtocol) }))]);
  }
  const picture = join(o.out, "predictions.png");
  if (rows.length > 0) {
    const w = await writePanelGrid(picture, ["image", "ground truth", ...runs.map((r) => r.title)], rows, 128)();
    if (E.isLeft(w)) return E.left(fromPlotError(w.left));
  }
  const finals = summaries.map((s) => ({ title: s.title, miou: s.summary.miou }));
  const chart = join(o.out, "curves.png");
  const c = await writeChart(chart, renderSvg(`${o.network === "resnet" ? "AdaptSegNet" : "DeepLab-MobileNetV2"} on the synthetic benchmark: cpu-demo, ${o.iterations} iterations, seed ${o.seed}`, demoPanels(runs, finals), 2))();
  if (E.isLeft(c)) return E.left(fromPlotError(c.left));

  // The table.
  const table = markdownTable(summaries.map((s) => ({ title: s.title, summary: s.summary })));
  const seconds = (performance.now() - began) / 1000;
  const miouOf = (variant: string) => summaries.find((s) => s.variant === variant)?.summary.miou;
  const [so, ad, or] = [miouOf("source-only")!, miouOf("multi-level")!, miouOf("oracle")];
  const verdict = [
    `adapted - source-only: ${ad - so >= 0 ? "+" : ""}${(ad - so).toFixed(2)} mIoU`,
    ...(or === undefined ? [] : [`oracle - adapted: ${or - ad >= 0 ? "+" : ""}${(or - ad).toFixed(2)} mIoU`]),
  ].join("; ");
  writeFileSync(join(o.out, "results.md"), `# Demo results (seed ${o.seed}, ${o.iterations} iterations)\n\n${table}\n${verdict}\n`);
  writeFileSync(
    join(o.out, "results.json"),
    JSON.stringify(
      {
        seed: o.seed,
        network: o.network,
        iterations: o.iterations,
        quick: o.quick,
        synth: o.synth,
        seconds,
        runs: runs.map((r, i) => ({ variant: r.variant, seconds: r.seconds, its_per_s: r.itsPerS, best_during_training: r.best, final: jsonReport(summaries[i]!.summary) })),
      },
      null,
      1,
    ) + "\n",
  );
  say(`\ntarget val (${summaries[0] ? `${o.evalImages ?? valRefs.right.length} images` : ""}), IoU per class (%), final models:\n`);
  say(table);
  say(`mIoU: source-only ${formatPercent(so)}, adapted ${formatPercent(ad)}${or === undefined ? "" : `, oracle ${formatPercent(or)}`}  (${verdict})`);
  say(`\n${picture}\n${chart}\n${join(o.out, "results.md")}\ntotal ${formatDuration(seconds)}`);
  const info = device.right.info;
  return E.right({ summaries, seconds, out: o.out, adapter: `${info.vendor || "?"} ${info.architecture || ""} (${device.right.adapterClass})`.replace(/\s+/g, " ") });
}
