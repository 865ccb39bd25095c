// `npm run eval`: the official evaluation (evaluate_cityscapes.py + compute_iou.py) of a
// checkpoint on the target validation split, with the evaluation program (main head only,
// eval-mode BN), bilinear upsampling to the label resolution (align_corners=True) and argmax in
// evaluation/. Prints the per-class table; with --save, writes the official prediction PNGs
// (trainIds, named after the image), their colorized versions (`<stem>_color.png`), a few
// image | ground truth | prediction panels, and the scores as JSON and markdown.

import * as E from "fp-ts/lib/Either.js";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readRgb, writeGrayLabelPng } from "../datasets/image.js";
import { colorize, writeRgbPng } from "../evaluation/colorize.js";
import { type ClassTable, classPalette } from "../datasets/class-table.js";
import { PROTOCOLS } from "../datasets/classes.js";
import { jsonReport, markdownTable, type ScoreSummary, subsetMIoU } from "../evaluation/report.js";
import type { GeneratedModule } from "../format/module.js";
import { instantiateTuned } from "../runtime/node-tune.js";
import { fitWeights, readWeights, type ReadWeights } from "../train/checkpoint.js";
import { acquireFor } from "./train.js";
import { openDataset, type NamedDataset } from "../train/data.js";
import { fromDataError, fromPlotError, fromRuntimeError, trainError, type TrainError } from "../train/errors.js";
import { evalSetup, evaluateWeights, predictionIds, predictionStem, type Prediction, sampleToRgb } from "../train/evaluate.js";
import { defaultDataRoots } from "./options.js";
import { writePanelGrid } from "../plots/pictures.js";
import { parseDecimal } from "./numeric-options.js";
import { chooseEvalProgram, configOf, evalPrograms, loadModule, presetOf, VARIANTS } from "../train/programs.js";
import { persistentSlots } from "../train/slots.js";
import { classesFor } from "./class-option.js";

export const EVAL_USAGE = `usage: npm run eval -- --restore-from FILE [options]
  --restore-from FILE     a trainer snapshot (.safetensors), an imported state dict (.safetensors) or a PyTorch .pth
  --program NAME          the evaluation program (eval-...), or the trained variant (multi-level, ...) with --preset
  --module FILE.ts        a generated evaluation module file instead (a user's network: codegen --from DIR --out DIR)
  --preset PRESET         pick the evaluation program of this preset (default: the snapshot's)
  --data-dir DIR          the target dataset root (or --data-target; Cityscapes layout; default ./data/Cityscapes/data, data/synth/cityscapes for cpu-demo)
  --data-list FILE        official val.txt-style list
  --set val               the split
  --target-layout cityscapes|crosscity  --target-city Rome
  --save DIR              write predictions, colorized predictions, panels and scores here
  --num-images N          only the first N images
  --panels N              how many image | ground truth | prediction panels to write (default 8)
  --classes FILE.json     the class table the model was trained with (names, colors, label values, ignore index;
                          schema in datasets/class-table.ts); default: the built-in protocol of its class count (19 | 16 | 13).
                          With it, reports use its class names, colorized outputs its colors, and saved predictions hold its class indices`;

export interface EvalCliOptions {
  readonly restoreFrom: string;
  readonly program?: string;
  /** A generated evaluation module file, used as given (its G must fit the weights exactly). */
  readonly module?: string;
  readonly preset?: string;
  readonly dataDir?: string;
  readonly dataList?: string;
  readonly set: string;
  readonly layout: string;
  readonly city?: string;
  readonly save?: string;
  readonly numImages?: number;
  readonly panels: number;
  readonly classesFile?: string;
}

export function parseEvalOptions(argv: readonly string[]): E.Either<TrainError, EvalCliOptions> {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: [...argv],
      options: {
        "restore-from": { type: "string" },
        program: { type: "string" },
        module: { type: "string" },
        preset: { type: "string" },
        "data-dir": { type: "string" },
        "data-dir-target": { type: "string" },
        "data-target": { type: "string" },
        "data-list": { type: "string" },
        set: { type: "string" },
        "target-layout": { type: "string" },
        "target-city": { type: "string" },
        save: { type: "string" },
        "num-images": { type: "string" },
        panels: { type: "string" },
        classes: { type: "string" },
      },
    }).values;
  } catch (e) {
    return E.left(trainError("options", e instanceof Error ? e.message : String(e)));
  }
  const s = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
  const restoreFrom = s("restore-from");
  if (restoreFrom === undefined) return E.left(trainError("options", "--restore-from is required"));
  // Decimal integers only (cli/numeric-options.ts): no hex, empty, Infinity or NaN.
  const int = (k: string): E.Either<TrainError, number | undefined> =>
    E.mapLeft((m: string) => trainError("options", m))(parseDecimal(k, s(k), { integer: true, min: 0, what: "a non-negative integer" }));
  const numImages = int("num-images");
  if (E.isLeft(numImages)) return numImages;
  const panels = int("panels");
  if (E.isLeft(panels)) return panels;
  return E.right({
    restoreFrom,
    ...opt("program", s("program")),
    ...opt("module", s("module")),
    ...opt("preset", s("preset")),
    ...opt("dataDir", s("data-dir") ?? s("data-dir-target") ?? s("data-target")),
    ...opt("dataList", s("data-list")),
    set: s("set") ?? "val",
    layout: s("target-layout") ?? "cityscapes",
    ...opt("city", s("target-city")),
    ...opt("save", s("save")),
    ...opt("numImages", numImages.right === 0 ? undefined : numImages.right),
    panels: panels.right ?? 8,
    ...opt("classesFile", s("classes")),
  });
}

/**
 * The evaluation programs to consider: the one named, else those of the preset (given, or the
 * trainer checkpoint's), else all. Which of them runs is decided by the weights (chooseEvalProgram).
 */
function evalCandidates(o: EvalCliOptions, read: ReadWeights): E.Either<TrainError, { names: string[]; preset?: string }> {
  if (o.program !== undefined && o.program.startsWith("eval-")) return E.right({ names: [o.program], ...opt("preset", o.preset ?? presetOf(o.program)) });
  if (o.program !== undefined && !(VARIANTS as readonly string[]).includes(o.program)) {
    return E.left(trainError("options", `--program ${o.program} is neither an evaluation program (eval-...) nor a variant (${VARIANTS.join(", ")})`));
  }
  const preset = o.preset ?? (read.program !== undefined ? presetOf(read.program) : undefined);
  return E.right({ names: evalPrograms(preset), ...opt("preset", preset) });
}

/**
 * The config the weights were trained with, when known: a trainer checkpoint's own, or that of the
 * training program --program VARIANT --preset P names. It tells networks with the same tensors
 * apart (programs.ts, networkOf).
 */
async function originConfig(o: EvalCliOptions, read: ReadWeights, preset: string | undefined): Promise<Readonly<Record<string, unknown>> | undefined> {
  if (read.config !== undefined) return read.config;
  if (o.program !== undefined && !o.program.startsWith("eval-") && preset !== undefined) return configOf(`${o.program}-${preset}`);
  return undefined;
}

/** SYNTHIA models (16 classes) are also scored on the 13-class protocol (spec §4.5). */
function mIoU13(s: ScoreSummary): { mIoU13?: number } {
  const m = s.protocol.id === "synthia16" ? subsetMIoU(s, PROTOCOLS.common13) : undefined;
  return m === undefined || Number.isNaN(m) ? {} : { mIoU13: m };
}

const opt = <K extends string, T>(k: K, x: T | undefined) => (x === undefined ? {} : ({ [k]: x } as Record<K, T>));

export interface EvalCliResult {
  readonly program: string;
  readonly summary: ScoreSummary;
  readonly images: number;
  readonly seconds: number;
  readonly notes: readonly string[];
}

function targetDataset(o: EvalCliOptions, preset: string | undefined): NamedDataset {
  const root = o.dataDir ?? defaultDataRoots(preset ?? "").target;
  if (o.layout === "crosscity") {
    return { role: "target validation", option: "--data-dir", spec: { kind: "crosscity", root, city: (o.city ?? "Rome") as "Rome", split: "Test" } };
  }
  return { role: "target validation", option: "--data-dir", spec: { kind: "cityscapes", root, split: o.set, withLabels: true, ...(o.dataList ? { listFile: o.dataList } : {}) } };
}

/**
 * Writes the official prediction PNG (trainIds; a user table's class indices) and its colorized
 * version, as evaluate_cityscapes.py does; colors are the table's (the Cityscapes palette for the
 * built-in protocols).
 */
async function savePrediction(dir: string, p: Prediction, table: ClassTable): Promise<void> {
  const stem = predictionStem(p.name);
  const size = { width: p.sample.labelWidth, height: p.sample.labelHeight };
  const a = await writeGrayLabelPng(join(dir, `${stem}.png`), { ...size, data: predictionIds(p.pred, table) })();
  if (E.isLeft(a)) throw new Error(fromDataError(a.left).message);
  const b = await writeRgbPng(join(dir, `${stem}_color.png`), colorize({ ...size, data: p.pred }, classPalette(table)))();
  if (E.isLeft(b)) throw new Error(fromDataError(b.left).message);
}

/** The evaluation program a module file holds; fitWeights below checks the weights fit it exactly. */
async function moduleGiven(o: EvalCliOptions, file: string): Promise<E.Either<TrainError, { module: GeneratedModule; preset?: string }>> {
  return E.map((module: GeneratedModule) => ({ module, ...opt("preset", o.preset) }))(await loadModule(file)());
}

/** Among the generated evaluation programs, the one the weights fit exactly (chooseEvalProgram). */
async function chooseAmongGenerated(o: EvalCliOptions, read: ReadWeights, g: NonNullable<ReadWeights["groups"][string]>): Promise<E.Either<TrainError, { module: GeneratedModule; preset?: string }>> {
  const candidates = evalCandidates(o, read);
  if (E.isLeft(candidates)) return candidates;
  const origin = await originConfig(o, read, candidates.right.preset);
  const chosen = await chooseEvalProgram(o.restoreFrom, g, candidates.right.names, candidates.right.preset, origin);
  return E.map((c: { module: GeneratedModule }) => ({ module: c.module, ...opt("preset", candidates.right.preset) }))(chosen);
}

export async function runEvalCli(o: EvalCliOptions): Promise<E.Either<TrainError, EvalCliResult>> {
  const read = await readWeights(o.restoreFrom)();
  if (E.isLeft(read)) return read;
  const g = read.right.groups["G"];
  if (g === undefined || g.size === 0) return E.left(trainError("checkpoint", `${o.restoreFrom} holds no segmentation network (G) tensors`));
  if (o.module !== undefined && o.program !== undefined) return E.left(trainError("options", "--module and --program both name the evaluation program: give one"));
  const chosen = o.module !== undefined ? await moduleGiven(o, o.module) : await chooseAmongGenerated(o, read.right, g);
  if (E.isLeft(chosen)) return chosen;
  const module: GeneratedModule = chosen.right.module;

  const weights = fitWeights(o.restoreFrom, read.right, persistentSlots(module), "eval");
  if (E.isLeft(weights)) return weights;
  const preset = chosen.right.preset ?? presetOf(module.name);
  const refs = await openDataset(targetDataset(o, preset))();
  if (E.isLeft(refs)) return refs;
  const protocol = await classesFor(module, o.classesFile);
  if (E.isLeft(protocol)) return protocol;
  const palette = classPalette(protocol.right);
  const G = weights.right.groups["G"]!;
  const device = await acquireFor([module]);
  if (E.isLeft(device)) return device;
  const inst = await instantiateTuned(device.right, module);
  if (E.isLeft(inst)) return E.left(fromRuntimeError(inst.left));
  try {
    const setup = evalSetup(module, inst.right, refs.right, protocol.right);
    if (E.isLeft(setup)) return setup;
    if (o.save !== undefined) mkdirSync(o.save, { recursive: true });
    const save = o.save;
    const r = await evaluateWeights(setup.right, G, o.restoreFrom, {
      ...(o.numImages !== undefined ? { limit: o.numImages } : {}),
      keep: save === undefined ? 0 : o.panels,
      ...(save !== undefined ? { onPrediction: (p: Prediction) => savePrediction(save, p, protocol.right) } : {}),
    });
    if (E.isLeft(r)) return r;
    if (save !== undefined) {
      const summary = r.right.summary;
      writeFileSync(join(save, "scores.json"), JSON.stringify({ checkpoint: o.restoreFrom, program: module.name, images: r.right.images, ...jsonReport(summary), ...mIoU13(summary) }, null, 1) + "\n");
      writeFileSync(join(save, "scores.md"), markdownTable([{ title: o.restoreFrom, summary }]));
      if (r.right.predictions.length > 0) {
        const rows = [];
        for (const p of r.right.predictions) {
          const size = { width: p.sample.labelWidth, height: p.sample.labelHeight };
          const photo = await readRgb(p.ref.imagePath, size)();
          const gt = colorize({ ...size, data: p.sample.label! }, palette);
          const pred = colorize({ ...size, data: p.pred }, palette);
          rows.push([E.isRight(photo) ? photo.right : sampleToRgb(p.sample), gt, pred]);
        }
        const w = await writePanelGrid(join(save, "panels.png"), ["image", "ground truth", "prediction"], rows, Math.min(256, rows[0]![0]!.height))();
        if (E.isLeft(w)) return E.left(fromPlotError(w.left));
      }
    }
    return E.right({ program: module.name, summary: r.right.summary, images: r.right.images, seconds: r.right.seconds, notes: weights.right.notes });
  } finally {
    inst.right.destroy();
  }
}
