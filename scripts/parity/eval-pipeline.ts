// The eval-pipeline parity case (docs/parity.md): `npm run eval` against a PyTorch
// re-implementation of the official evaluation (evaluate_cityscapes.py + compute_iou.py, spec §5)
// on four networks saved as legacy .pth files.
//
// scripts/parity/eval_pipeline.py writes the .pth files, a small Cityscapes-layout val set and
// its own predictions and mIoU under out/parity/eval-pipeline/ (gitignored: about 1 GB of
// weights). Unlike the fixture cases this one compares against files Python writes, so when
// reference.json is missing the Python script is run first (Debian's /usr/bin/python3 with
// torch); later runs reuse it. Here each .pth goes through runEvalCli, the same code as
// `npm run eval -- --restore-from F --program P --data-dir D --save S`, and its prediction PNGs
// and scores.json are compared with Python's.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as E from "fp-ts/lib/Either.js";
import { describeDataError } from "../../datasets/errors";
import { readRawLabel } from "../../datasets/image";
import { renderTrainError } from "../../train/errors";
import { runEvalCli } from "../../cli/eval";
import type { CaseResult, Check } from "./check";

export const EVAL_PIPELINE_CASE = "eval-pipeline";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.join(root, "out/parity/eval-pipeline");
const SCRIPT = path.join(root, "scripts/parity/eval_pipeline.py");

/** Pixel agreement at least 99.99%: float32 differences may flip only near-tie pixels. */
const MAX_DISAGREEMENT = 1e-4;
/** mIoU in percent, as compute_iou.py prints it (two decimals). */
const MAX_MIOU_DIFF = 0.01;

interface NetworkReference {
  readonly pth: string;
  readonly program: string;
  readonly predictions: string;
  readonly mIoU: number;
  readonly twoBranchDisagreement?: number;
}

interface Reference {
  readonly images: readonly string[];
  readonly dataDir: string;
  readonly networks: Readonly<Record<string, NetworkReference>>;
}

/** reference.json, running the Python side first when it is not there yet. */
function loadReference(): Reference {
  const file = path.join(OUT, "reference.json");
  if (!existsSync(file)) {
    console.log(`parity: ${EVAL_PIPELINE_CASE}: no ${path.relative(root, file)}; running ${path.relative(root, SCRIPT)} (a few minutes)`);
    const r = spawnSync("/usr/bin/python3", [SCRIPT, "--out", OUT], { cwd: root, stdio: "inherit" });
    if (r.status !== 0) throw new Error(`${path.relative(root, SCRIPT)} failed (status ${r.status ?? r.signal})`);
  }
  return JSON.parse(readFileSync(file, "utf8")) as Reference;
}

/** Paths in reference.json are relative to the repository root or absolute. */
const abs = (p: string) => path.resolve(root, p);

async function readLabels(file: string): Promise<Uint8Array | Uint16Array> {
  const r = await readRawLabel(file)();
  if (E.isLeft(r)) throw new Error(describeDataError(r.left));
  return r.right.data;
}

/** Fraction of pixels where TS and PyTorch predictions differ, over all images together. */
async function disagreement(ref: Reference, net: NetworkReference, tsDir: string): Promise<{ fraction: number; perImage: string }> {
  let differ = 0;
  let total = 0;
  const per: string[] = [];
  for (const name of ref.images) {
    const file = path.basename(name);
    const [py, ts] = [await readLabels(path.join(abs(net.predictions), file)), await readLabels(path.join(tsDir, file))];
    if (py.length !== ts.length) throw new Error(`${file}: ${ts.length} predicted pixels, PyTorch has ${py.length}`);
    let d = 0;
    for (let i = 0; i < py.length; i++) if (py[i] !== ts[i]) d++;
    differ += d;
    total += py.length;
    per.push(String(d));
  }
  return { fraction: differ / total, perImage: per.join("/") };
}

const check = (name: string, error: number, tol: number, detail: string): Check => ({ name, error, tol, passed: error <= tol, detail });

/** One network: npm run eval on its .pth, then predictions and mIoU against PyTorch's. */
async function checkNetwork(ref: Reference, key: string, net: NetworkReference): Promise<Check[]> {
  const save = path.join(OUT, key, "ts");
  const started = performance.now();
  const r = await runEvalCli({ restoreFrom: abs(net.pth), program: net.program, dataDir: abs(ref.dataDir), set: "val", layout: "cityscapes", save, panels: 0 });
  const seconds = (performance.now() - started) / 1000;
  const prefix = `${EVAL_PIPELINE_CASE} ${key}`;
  if (E.isLeft(r)) return [check(`${prefix}: npm run eval`, Infinity, 0, renderTrainError(r.left))];
  const chose = check(`${prefix}: program`, r.right.program === net.program ? 0 : 1, 0, `${r.right.program}, ${r.right.images} images, ${seconds.toFixed(1)} s`);
  // scores.json holds the mIoU in percent (as printed), per-class IoUs as fractions.
  const scores = JSON.parse(readFileSync(path.join(save, "scores.json"), "utf8")) as { mIoU: number | null };
  const tsMIoU = scores.mIoU ?? NaN;
  const d = await disagreement(ref, net, save);
  return [
    chose,
    check(`${prefix}: pixels that differ from PyTorch`, d.fraction, MAX_DISAGREEMENT, `agreement ${(100 * (1 - d.fraction)).toFixed(4)}%, differing pixels per image ${d.perImage}`),
    check(`${prefix}: mIoU (%)`, Math.abs(tsMIoU - net.mIoU), MAX_MIOU_DIFF, `npm run eval ${tsMIoU.toFixed(4)}, PyTorch ${net.mIoU.toFixed(4)}`),
  ];
}

/**
 * The weights decide the program (docs/training.md): the VGG file named with a ResNet program
 * must be refused, naming a tensor, before anything runs.
 */
async function checkRefusal(ref: Reference): Promise<Check> {
  const vgg = ref.networks["vgg"]!;
  const r = await runEvalCli({ restoreFrom: abs(vgg.pth), program: "eval-multi-level-gta5-cityscapes", dataDir: abs(ref.dataDir), set: "val", layout: "cityscapes", panels: 0 });
  const name = `${EVAL_PIPELINE_CASE} vgg: refused by eval-multi-level-gta5-cityscapes`;
  if (E.isRight(r)) return check(name, 1, 0, `evaluated with ${r.right.program}`);
  const message = renderTrainError(r.left);
  // A tensor of either network: a VGG key (features.N, classifier.) or a ResNet one.
  const namesTensor = /(features\.\d+|classifier\.|conv1\.weight|layer\d\.)/.test(message);
  return check(name, namesTensor ? 0 : 1, 0, message.split("\n")[0]!.slice(0, 200));
}

export async function runEvalPipelineCase(): Promise<CaseResult> {
  const started = performance.now();
  const ref = loadReference();
  const checks: Check[] = [];
  for (const [key, net] of Object.entries(ref.networks)) checks.push(...(await checkNetwork(ref, key, net)));
  checks.push(await checkRefusal(ref));
  return { checks, from: "generated", seconds: (performance.now() - started) / 1000 };
}
