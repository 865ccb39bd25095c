// The page: the adapter and the variants it runs, training of the cpu-demo source-only and
// multi-level programs on the synthetic benchmark with live curves and predictions, the official
// mIoU, adaptation to the user's own images, and snapshots both ways. Every failure is shown on
// the page (#error), never only in the console. window.webState is what the browser test reads.

import * as E from "fp-ts/lib/Either.js";
import type { StateDict } from "../../checkpoint/tensor";
import type { RgbImage } from "../../datasets/rgb";
import type { Sample } from "../../datasets/sample";
import { colorize } from "../../evaluation/colors";
import type { GeneratedModule } from "../../format/module";
import { module as evalModule } from "../../generated/eval-multi-level-cpu-demo/module";
import { module as multiLevel } from "../../generated/multi-level-cpu-demo/module";
import { module as sourceOnly } from "../../generated/source-only-cpu-demo/module";
import { type AcquiredDevice, healthError } from "../../runtime/device";
import { toTrainIds } from "../../train/evaluate-core";
import type { TrainError } from "../../train/errors";
import { type MemoryBenchmark, type MemoryImage, WEB_SYNTH, generateBenchmark, memorySample, rgbFromRgba } from "./benchmark";
import { drawChart, drawPanels, type Series } from "./draw";
import { adapterFacts, pageDevice, variantCounts } from "./gpu";
import { readSnapshot, snapshotBytes } from "./snapshot";
import { type Evaluator, type LossRecord, makeEvaluator, predictInPage, scoreInPage, trainInPage } from "./trainer";

/** What the test reads: per model its loss records, speed and mIoU; the snapshot checks. */
interface WebState {
  phase: "starting" | "ready" | "training" | "trained" | "adapting" | "failed";
  adapter?: { description: string; adapterClass: string; subgroupMinSize?: number; variants: Record<string, { subgroup: number; portable: number }> };
  models: Record<string, { records: LossRecord[]; itsPerS: number; miou?: number }>;
  own?: { images: number; done: boolean };
  loaded?: { program: string; iteration: number; miou: number };
  errors: string[];
}

const state: WebState = { phase: "starting", models: {}, errors: [] };
(window as unknown as { webState: WebState }).webState = state;

const MODELS = [
  { variant: "source-only", module: sourceOnly, title: "source-only", color: "#1f77b4" },
  { variant: "multi-level", module: multiLevel, title: "adapted (multi-level)", color: "#d62728" },
] as const;
const SEED = 1;
/** Validation images shown as prediction panels. */
const PANELS = 3;

/** Chromium reports adapter limits rounded down to tiers; its flag gives the adapter's own. */
const TIERED_LIMITS_HELP =
  "Chromium rounds adapter limits down to fixed tiers (SwiftShader: 10 storage buffers per shader stage of the 12 it has); " +
  "start it with --disable-dawn-features=tiered_adapter_limits to use the adapter's real limits, or use a GPU";

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const text = (id: string, s: string) => (el(id).textContent = s);

function showError(message: string): void {
  state.errors.push(message);
  const box = el("error");
  box.textContent = state.errors.join("\n");
  box.classList.add("shown");
}

const renderError = (e: TrainError) => e.message;
window.addEventListener("error", (ev) => showError(`unexpected error: ${ev.message}`));
window.addEventListener("unhandledrejection", (ev) => showError(`unexpected error: ${ev.reason instanceof Error ? ev.reason.message : String(ev.reason)}`));

let device: AcquiredDevice | undefined;
let bench: MemoryBenchmark | undefined;
let evaluator: Evaluator | undefined;
const weights: Record<string, StateDict> = {};
let adaptedSnapshot: { bytes: Uint8Array; name: string } | undefined;
let ownImages: MemoryImage[] = [];
const iterationsParam = Number(new URLSearchParams(location.search).get("iterations") ?? "");
if (Number.isInteger(iterationsParam) && iterationsParam > 0) el<HTMLInputElement>("iterations").value = String(iterationsParam);

/** Yield to the page so that the progress bar and canvases repaint between GPU waits. */
const repaint = () => new Promise<void>((r) => setTimeout(r, 0));

/** A device error recorded since the last check (lost device, out of memory, validation), shown on the page. */
function deviceTrouble(): boolean {
  if (device === undefined) return false;
  const e = healthError(device.health);
  if (e === undefined) return false;
  showError(e.kind === "gpu" && /out of memory/i.test(e.message) ? `the GPU ran out of memory: ${e.message}` : e.message);
  return true;
}

async function start(): Promise<void> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const d = await pageDevice(gpu, [sourceOnly, multiLevel, evalModule]);
  if (E.isLeft(d)) {
    state.phase = "failed";
    el("adapter").innerHTML = "<tr><td>no WebGPU device</td></tr>";
    text("status", "no WebGPU device");
    showError(d.left.kind === "limit" ? `${d.left.message}. ${TIERED_LIMITS_HELP}` : d.left.message);
    return;
  }
  device = d.right;
  void device.device.lost.then((info) => {
    if (info.reason !== "destroyed") {
      state.phase = "failed";
      showError(`the WebGPU device was lost (${info.reason}): ${info.message}. Reload the page to start again.`);
    }
  });
  const facts = adapterFacts(device);
  el("adapter").innerHTML = "";
  for (const [k, v] of facts) {
    const tr = document.createElement("tr");
    tr.append(Object.assign(document.createElement("th"), { textContent: k }), Object.assign(document.createElement("td"), { textContent: v }));
    el("adapter").append(tr);
  }
  const variants = Object.fromEntries([sourceOnly, multiLevel, evalModule].map((m) => [m.name, variantCounts(m, device!)]));
  const info = device.info as GPUAdapterInfo & { subgroupMinSize?: number };
  state.adapter = { description: facts[0]![1], adapterClass: device.adapterClass, ...(info.subgroupMinSize !== undefined ? { subgroupMinSize: info.subgroupMinSize } : {}), variants };
  text(
    "variants",
    `kernel variants: ${Object.entries(variants)
      .map(([n, c]) => `${n}: ${c.subgroup} subgroup (8-lane), ${c.portable} portable`)
      .join("; ")}` + (Object.values(variants).every((c) => c.subgroup === 0) && device.adapterClass === "cpu" ? " (this adapter's subgroups are narrower than the 8 lanes the subgroup variants need)" : ""),
  );
  const ev = await makeEvaluator(evalModule, device);
  if (E.isLeft(ev)) return fail(ev.left);
  evaluator = ev.right;
  state.phase = "ready";
  text("status", "ready");
  el<HTMLButtonElement>("train").disabled = false;
}

function fail(e: TrainError): void {
  state.phase = "failed";
  text("status", "stopped: see the message above");
  if (!deviceTrouble()) showError(renderError(e));
}

const lossSeries = (name: string): Series[] =>
  MODELS.filter((m) => state.models[m.variant] !== undefined).map((m) => ({
    label: m.variant,
    color: m.color,
    points: state.models[m.variant]!.records.flatMap((r) => (r.losses[name] !== undefined ? [[r.iteration, r.losses[name]!] as const] : [])),
  }));

function drawCurves(): void {
  drawChart(el("curves"), "segmentation loss (main head), loss_seg2", lossSeries("loss_seg2"));
  const ad = state.models["multi-level"];
  const pts = (n: string) => ad?.records.flatMap((r) => (r.losses[n] !== undefined ? [[r.iteration, r.losses[n]!] as const] : [])) ?? [];
  drawChart(el("adv"), "adapted: discriminator losses", [
    { label: "loss_D2 (main)", color: "#2ca02c", points: pts("loss_D2") },
    { label: "loss_D1 (aux)", color: "#9467bd", points: pts("loss_D1") },
  ]);
}

const classMap = (map: Uint8Array, width: number, height: number): RgbImage => colorize({ width, height, data: toTrainIds(map, evaluator!.protocol) });

/** image | label | source-only | adapted for the first PANELS validation images, with whatever weights exist now. */
async function drawPredictions(valSamples: readonly Sample[]): Promise<void> {
  if (bench === undefined || evaluator === undefined) return;
  const shown = valSamples.slice(0, PANELS);
  const preds: Record<string, Uint8Array[]> = {};
  for (const m of MODELS) {
    const g = weights[m.variant];
    if (g !== undefined) preds[m.variant] = await predictInPage(evaluator, g, shown);
  }
  const rows = shown.map((s, i) => {
    const img = bench!.val[i]!;
    return [
      img.rgb,
      classMap(s.label!, s.labelWidth, s.labelHeight),
      ...MODELS.map((m) => (preds[m.variant] ? classMap(preds[m.variant]![i]!, s.width, s.height) : undefined)),
    ];
  });
  drawPanels(el("predictions"), ["image", "label", ...MODELS.map((m) => m.title)], rows, { width: 256, height: 128 });
}

function showMiou(): void {
  const t = el("miou");
  t.innerHTML = "<tr><th>model</th><th>target val mIoU (%)</th><th>it/s</th></tr>";
  for (const m of MODELS) {
    const r = state.models[m.variant];
    if (r?.miou === undefined) continue;
    const tr = document.createElement("tr");
    tr.dataset["variant"] = m.variant;
    for (const v of [m.title, r.miou.toFixed(2), r.itsPerS.toFixed(2)]) tr.append(Object.assign(document.createElement("td"), { textContent: v }));
    t.append(tr);
  }
}

async function trainAll(): Promise<void> {
  if (device === undefined || evaluator === undefined) return;
  const iterations = Number(el<HTMLInputElement>("iterations").value);
  if (!Number.isInteger(iterations) || iterations < 1) return showError(`iterations per model: expected a positive integer, got "${el<HTMLInputElement>("iterations").value}"`);
  el<HTMLButtonElement>("train").disabled = true;
  state.phase = "training";
  const progress = el<HTMLProgressElement>("progress");
  if (bench === undefined) {
    bench = await generateBenchmark(WEB_SYNTH, async (done, total) => {
      progress.value = done / total;
      text("status", `generating the synthetic benchmark: ${done}/${total} images`);
      if (done % 8 === 0) await repaint();
    });
  }
  const b = bench;
  const protocol = evaluator.protocol;
  const inputOf = (m: GeneratedModule, side: string) => {
    const t = m.tensors.find((x) => x.name === `${side}_image`)!;
    return { width: t.shape[3]!, height: t.shape[2]! };
  };
  const valSamples = b.val.map((img) => memorySample(img, evaluator!.size, "original-size", protocol));
  const checkEvery = Math.max(1, Math.ceil(iterations / 4));
  for (const [k, m] of MODELS.entries()) {
    const src = inputOf(m.module, "source");
    const source = { length: b.source.length, sample: (i: number) => memorySample(b.source[i]!, src, "input-size", protocol) };
    const hasTarget = m.module.tensors.some((t) => t.name === "target_image");
    const tgt = hasTarget ? inputOf(m.module, "target") : undefined;
    const target = tgt === undefined ? undefined : { length: b.train.length, sample: (i: number) => memorySample(b.train[i]!, tgt, "none", protocol) };
    state.models[m.variant] = { records: [], itsPerS: 0 };
    const r = await trainInPage(
      {
        module: m.module,
        seed: SEED,
        iterations,
        source,
        ...(target ? { target } : {}),
        logEvery: 1,
        onLosses: async (rec) => {
          state.models[m.variant]!.records.push(rec);
          progress.value = (k * iterations + rec.iteration) / (MODELS.length * iterations);
          text("status", `${m.variant}: iteration ${rec.iteration}/${iterations}, loss_seg2 ${rec.losses["loss_seg2"]?.toFixed(4)}`);
          text("speed", `${m.variant}: ${rec.itsPerS.toFixed(2)} it/s (this iteration)`);
          drawCurves();
          await repaint();
        },
        checkEvery,
        onCheck: async (_, g) => {
          weights[m.variant] = g;
          await drawPredictions(valSamples);
        },
      },
      device,
    );
    if (deviceTrouble()) return void (state.phase = "failed");
    if (E.isLeft(r)) return fail(r.left);
    const g = r.right.checkpoint.groups["G"]!;
    weights[m.variant] = g;
    text("status", `${m.variant}: evaluating on the ${valSamples.length} target val images`);
    const score = await scoreInPage(evaluator, g, `${m.variant} (browser)`, valSamples, 0);
    if (E.isLeft(score)) return fail(score.left);
    state.models[m.variant]!.itsPerS = r.right.itsPerS;
    state.models[m.variant]!.miou = score.right.summary.miou;
    text("speed", MODELS.filter((x) => state.models[x.variant]?.itsPerS).map((x) => `${x.variant}: ${state.models[x.variant]!.itsPerS.toFixed(2)} it/s`).join(", "));
    showMiou();
    await drawPredictions(valSamples);
    if (m.variant === "multi-level") {
      const ckpt = { ...r.right.checkpoint, extra: { ...r.right.checkpoint.extra, mIoU: score.right.summary.miou } };
      const name = `${m.module.name}_${iterations}.safetensors`;
      const bytes = snapshotBytes(name, ckpt);
      if (E.isLeft(bytes)) return fail(bytes.left);
      adaptedSnapshot = { bytes: bytes.right, name };
    }
  }
  progress.value = 1;
  state.phase = "trained";
  text("status", `done: ${MODELS.map((m) => `${m.variant} mIoU ${state.models[m.variant]!.miou!.toFixed(2)}`).join(", ")}`);
  el<HTMLButtonElement>("download").disabled = false;
  el<HTMLButtonElement>("adapt-own").disabled = ownImages.length === 0;
  el<HTMLButtonElement>("train").disabled = false;
}

/** The user's files as images; a file the browser cannot decode is named on the page and skipped. */
async function readOwnImages(files: readonly File[]): Promise<void> {
  const images: MemoryImage[] = [];
  for (const f of files) {
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(f);
    } catch (e) {
      showError(`${f.name} is not an image this browser can decode (${e instanceof Error ? e.message : String(e)}); it was skipped`);
      continue;
    }
    const c = document.createElement("canvas");
    c.width = bitmap.width;
    c.height = bitmap.height;
    const g = c.getContext("2d")!;
    g.drawImage(bitmap, 0, 0);
    images.push({ name: f.name, rgb: rgbFromRgba(bitmap.width, bitmap.height, g.getImageData(0, 0, bitmap.width, bitmap.height).data) });
  }
  ownImages = images;
  state.own = { images: images.length, done: false };
  text("own-status", `${images.length} image(s) ready${images.length > 0 ? `: ${images.map((i) => `${i.name} (${i.rgb.width}x${i.rgb.height})`).join(", ")}` : ""}`);
  el<HTMLButtonElement>("adapt-own").disabled = images.length === 0 || weights["source-only"] === undefined;
}

/** Multi-level adaptation with the user's images as the target domain; before (source-only) / after panels. */
async function adaptToOwn(): Promise<void> {
  if (device === undefined || evaluator === undefined || bench === undefined || ownImages.length === 0) return;
  const before = weights["source-only"];
  if (before === undefined) return showError("train the source-only model first: it is the 'before' of the comparison");
  el<HTMLButtonElement>("adapt-own").disabled = true;
  state.phase = "adapting";
  const iterations = Number(el<HTMLInputElement>("iterations").value);
  const protocol = evaluator.protocol;
  const size = { width: 128, height: 64 };
  const b = bench;
  const own = ownImages;
  const r = await trainInPage(
    {
      module: multiLevel,
      seed: SEED,
      iterations,
      source: { length: b.source.length, sample: (i) => memorySample(b.source[i]!, size, "input-size", protocol) },
      target: { length: own.length, sample: (i) => memorySample(own[i]!, size, "none", protocol) },
      logEvery: 1,
      onLosses: async (rec) => {
        text("own-status", `adapting to your ${own.length} image(s): iteration ${rec.iteration}/${iterations}, loss_adv2 ${rec.losses["loss_adv2"]?.toFixed(4)}`);
        await repaint();
      },
    },
    device,
  );
  if (deviceTrouble()) return void (state.phase = "failed");
  if (E.isLeft(r)) return fail(r.left);
  const after = r.right.checkpoint.groups["G"]!;
  const samples = own.map((img) => memorySample(img, evaluator!.size, "none", protocol));
  const [pb, pa] = [await predictInPage(evaluator, before, samples), await predictInPage(evaluator, after, samples)];
  const rows = samples.map((s, i) => [own[i]!.rgb, classMap(pb[i]!, s.width, s.height), classMap(pa[i]!, s.width, s.height)]);
  drawPanels(el("own-predictions"), ["your image", "before (source-only)", "after (adapted to your images)"], rows, { width: 256, height: 128 });
  state.own = { images: own.length, done: true };
  state.phase = "trained";
  text("own-status", `adapted to your ${own.length} image(s) in ${iterations} iterations (${r.right.itsPerS.toFixed(2)} it/s)`);
  el<HTMLButtonElement>("adapt-own").disabled = false;
}

function download(): void {
  if (adaptedSnapshot === undefined) return;
  const url = URL.createObjectURL(new Blob([adaptedSnapshot.bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: adaptedSnapshot.name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  text("snapshot-status", `downloaded ${adaptedSnapshot.name}: evaluate it with npm run eval -- --restore-from ${adaptedSnapshot.name} --data-dir data/synth-quick/cityscapes`);
}

/** A snapshot file (the Node trainer's or this page's), scored on the synthetic target val split. */
async function loadSnapshot(file: File): Promise<void> {
  if (evaluator === undefined) return;
  const ckpt = readSnapshot(file.name, new Uint8Array(await file.arrayBuffer()));
  if (E.isLeft(ckpt)) return showError(ckpt.left.message);
  const g = ckpt.right.groups["G"];
  if (g === undefined) return showError(`${file.name}: the snapshot has no G (segmentation network) weights`);
  if (bench === undefined) bench = await generateBenchmark(WEB_SYNTH);
  const valSamples = bench.val.map((img) => memorySample(img, evaluator!.size, "original-size", evaluator!.protocol));
  const score = await scoreInPage(evaluator, g, file.name, valSamples, 0);
  if (E.isLeft(score)) return showError(score.left.message);
  state.loaded = { program: ckpt.right.program, iteration: ckpt.right.iteration, miou: score.right.summary.miou };
  text("snapshot-status", `${file.name}: ${ckpt.right.program} at iteration ${ckpt.right.iteration}, target val mIoU ${score.right.summary.miou.toFixed(2)}`);
}

el("train").addEventListener("click", () => void trainAll());
el("adapt-own").addEventListener("click", () => void adaptToOwn());
el("download").addEventListener("click", download);
el<HTMLInputElement>("own-images").addEventListener("change", (ev) => void readOwnImages(Array.from((ev.target as HTMLInputElement).files ?? [])));
el<HTMLInputElement>("load-snapshot").addEventListener("change", (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f !== undefined) void loadSnapshot(f);
});
void start();
