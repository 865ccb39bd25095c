// Results: what each case measured, the JSON file (--json) and the markdown summary, with the
// targets of issue 7 and issue 3's kernel acceptance checked against the figures of this run.

import { type Timing, median } from "./measure";
import type { DispatchProfile } from "./ours";

export interface TemplateTime {
  readonly template: string;
  readonly count: number;
  readonly ms: number;
  readonly flops: number;
}

/** Per-dispatch GPU times summed by kernel template, slowest first. */
export function byTemplate(profile: readonly DispatchProfile[]): TemplateTime[] {
  const groups = new Map<string, { count: number; ms: number; flops: number }>();
  for (const k of profile) {
    const g = groups.get(k.template) ?? { count: 0, ms: 0, flops: 0 };
    groups.set(k.template, { count: g.count + 1, ms: g.ms + k.ms, flops: g.flops + k.flops });
  }
  return [...groups].map(([template, g]) => ({ template, ...g })).sort((a, b) => b.ms - a.ms);
}

export interface OursDetails {
  readonly compileMs: number;
  readonly instantiateMs: number;
  /** The first step, which pays for lavapipe's lazy shader compilation. */
  readonly firstStepMs: number;
  readonly dispatches: number;
  /** Sum of per-dispatch GPU timestamps of one profiled step (one pass per dispatch). */
  readonly gpuMs?: number | undefined;
  readonly templates?: readonly TemplateTime[] | undefined;
  /** The tile each dispatch with tile candidates ran with (tuned: runtime/tune.ts). */
  readonly tiles?: readonly { readonly dispatch: string; readonly rows: number; readonly candidates: readonly number[] }[] | undefined;
}

export interface StepDetails {
  readonly config: string;
  readonly shaders: number;
  readonly persistentBytes: number;
  /** Scratch arena: bytes the planner placed, and the largest set of buffers live at once. */
  readonly scratchPeakBytes: number;
  readonly scratchLowerBoundBytes: number;
  readonly oursMaxRssKiB: number;
  readonly torchMaxRssKiB?: number | undefined;
  /** The slowest dispatches of the profiled step. */
  readonly top: readonly DispatchProfile[];
}

export interface CaseReport {
  readonly suite: "kernels" | "step";
  readonly name: string;
  /** FLOPs of one repetition (our compiler's count for steps, the conv formula for kernels). */
  readonly flops: number;
  readonly timings: readonly Timing[];
  readonly ours?: OursDetails;
  readonly step?: StepDetails;
}

export interface Machine {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  adapter: string;
  readonly loadavgStart: readonly number[];
  loadavgEnd?: readonly number[];
  torch?: string;
  tfjs?: string;
  readonly notes: string[];
}

// ---------------------------------------------------------------------------------------------
// JSON

export interface ResultRow {
  readonly name: string;
  readonly impl: string;
  readonly ms: number;
  readonly gflops: number;
}

const gflops = (flops: number, ms: number) => flops / ms / 1e6;

function timing(c: CaseReport, prefix: string): number | undefined {
  const t = c.timings.find((x) => x.impl.startsWith(prefix));
  return t?.status === "ok" ? t.ms : undefined;
}

export const oursMs = (c: CaseReport) => timing(c, "ours");
export const tfjsMs = (c: CaseReport) => timing(c, "tfjs");
export const torchMs = (c: CaseReport) => timing(c, "torch");

export function resultRows(cases: readonly CaseReport[]): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const c of cases) {
    for (const t of c.timings) {
      if (t.status === "ok") rows.push({ name: c.name, impl: t.impl, ms: t.ms, gflops: gflops(c.flops, t.ms) });
    }
    const gpu = c.ours?.gpuMs;
    if (gpu !== undefined && gpu > 0) rows.push({ name: c.name, impl: "ours-gpu-timestamps", ms: gpu, gflops: gflops(c.flops, gpu) });
  }
  return rows;
}

/** Per case: our time over PyTorch's, and TF.js's time over ours (how many times faster we are). */
export function ratios(cases: readonly CaseReport[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of cases) {
    const ours = oursMs(c);
    if (ours === undefined) continue;
    const r: Record<string, number> = {};
    const torch = torchMs(c);
    const tfjs = tfjsMs(c);
    if (torch !== undefined) r["ours/torch"] = ours / torch;
    if (tfjs !== undefined) r["tfjs/ours"] = tfjs / ours;
    if (c.step) r["plannedPeak/lowerBound"] = c.step.scratchPeakBytes / Math.max(1, c.step.scratchLowerBoundBytes);
    if (Object.keys(r).length > 0) out[c.name] = r;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Targets

export interface Target {
  readonly what: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

const find = (cases: readonly CaseReport[], name: string) => cases.find((c) => c.name === name);

/**
 * PyTorch's times for the same iterations measured on a quiet standard machine (environment.md),
 * when the targets were set: a same-run figure far above them means a busy machine.
 */
export const TORCH_REFERENCE_MS: Readonly<Record<string, readonly [number, number]>> = {
  "step ResNet-101 (321x321)": [3990, 3990],
  "step tiny (128x128, width 16)": [49, 63],
};

function referenceText(name: string, ours: number | undefined): string {
  const ref = TORCH_REFERENCE_MS[name];
  if (ref === undefined || ours === undefined) return "";
  const [lo, hi] = ref;
  const range = lo === hi ? fmtS(lo) : `${fmtS(lo)}-${fmtS(hi)}`;
  const x = lo === hi ? `${(ours / lo).toFixed(2)}x` : `${(ours / hi).toFixed(2)}-${(ours / lo).toFixed(2)}x`;
  return `; ${x} the quiet-machine PyTorch figure (${range})`;
}

export function targets(cases: readonly CaseReport[]): Target[] {
  const out: Target[] = [];
  const stepRatio = (name: string, what: string, limit: number) => {
    const c = find(cases, name);
    if (c === undefined) return;
    const o = oursMs(c);
    const t = torchMs(c);
    const r = o !== undefined && t !== undefined ? o / t : undefined;
    const measured = r === undefined ? (o === undefined ? "not measured" : `ours ${fmtS(o)}, PyTorch not measured`) : `${r.toFixed(2)}x (${fmtS(o!)} vs ${fmtS(t!)})`;
    out.push({ what, goal: `<= ${limit}x PyTorch (same run)`, measured: measured + referenceText(name, o), met: r === undefined ? undefined : r <= limit });
  };
  stepRatio("step ResNet-101 (321x321)", "ResNet-101 321x321 iteration", 3);
  stepRatio("step tiny (128x128, width 16)", "tiny 128x128 iteration", 1.5);

  const convs = cases.filter((c) => c.suite === "kernels" && !c.name.startsWith("matmul"));
  const vsTfjs = convs.flatMap((c) => {
    const o = oursMs(c);
    const t = tfjsMs(c);
    return o !== undefined && t !== undefined ? [{ name: c.name, r: t / o }] : [];
  });
  if (vsTfjs.length > 0) {
    const slow = vsTfjs.filter((x) => x.r < 5);
    const worst = vsTfjs.reduce((a, b) => (b.r < a.r ? b : a));
    out.push({
      what: "every conv vs TF.js WebGPU, same device",
      goal: ">= 5x faster",
      measured: `${vsTfjs.length - slow.length}/${vsTfjs.length} met; slowest ${worst.r.toFixed(2)}x (${worst.name})`,
      met: slow.length === 0,
    });
  }
  for (const c of cases.filter((x) => x.step)) {
    const r = c.step!.scratchPeakBytes / Math.max(1, c.step!.scratchLowerBoundBytes);
    out.push({ what: `planned peak memory, ${c.name}`, goal: "<= 1.3x live-tensor lower bound", measured: `${r.toFixed(3)}x (${mib(c.step!.scratchPeakBytes)} vs ${mib(c.step!.scratchLowerBoundBytes)})`, met: r <= 1.3 });
  }
  const rate = (name: string, what: string, min: number, tfjsFactor?: number) => {
    const c = find(cases, name);
    if (c === undefined) return;
    const o = oursMs(c);
    if (o === undefined) {
      out.push({ what, goal: `>= ${min} GFLOP/s`, measured: "not measured", met: undefined });
      return;
    }
    const g = gflops(c.flops, o);
    const t = tfjsMs(c);
    const vs = t !== undefined ? t / o : undefined;
    const goal = `>= ${min} GFLOP/s${tfjsFactor ? ` and >= ${tfjsFactor}x TF.js` : ""}`;
    const measured = `${g.toFixed(1)} GFLOP/s${tfjsFactor ? `, ${vs === undefined ? "TF.js not measured" : `${vs.toFixed(1)}x TF.js`}` : ""}`;
    const met = g >= min && (tfjsFactor === undefined || (vs !== undefined && vs >= tfjsFactor));
    out.push({ what, goal, measured, met });
  };
  rate("conv3x3 256>256 @64x64 fwd+dx+dw", "issue 3: conv3x3 256>256 @64x64, fwd+dx+dw", 50, 5);
  rate("layer4 conv3x3 d4 512>512 @41x41 fwd+dx+dw", "issue 3: dilation-4 conv3x3 512>512 @41x41, fwd+dx+dw", 40);
  rate("matmul 1024^3", "issue 3: matmul 1024^3", 60);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const fmtMs = (ms: number | undefined) => (ms === undefined ? "-" : ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const fmtS = (ms: number) => `${(ms / 1000).toFixed(ms >= 10000 ? 1 : 3)} s`;
const fmtG = (flops: number, ms: number | undefined) => (ms === undefined ? "-" : gflops(flops, ms).toFixed(1));
const fmtX = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)}x`);

/** The cores each implementation's process kept busy during its runs, e.g. "1.9 / 1.2". */
function coresCell(c: CaseReport, prefixes: readonly string[]): string {
  return prefixes
    .map((p) => {
      const t = c.timings.find((x) => x.impl.startsWith(p));
      return t?.status === "ok" && t.cores !== undefined ? t.cores.toFixed(1) : "-";
    })
    .join(" / ");
}

function status(c: CaseReport, prefix: string): string | undefined {
  const t = c.timings.find((x) => x.impl.startsWith(prefix));
  return t && t.status !== "ok" ? t.status : undefined;
}

function cell(c: CaseReport, prefix: string, ms: number | undefined, seconds = false): string {
  if (ms !== undefined) return seconds ? fmtS(ms) : fmtMs(ms);
  return status(c, prefix) ?? "-";
}

export function renderMarkdown(machine: Machine, cases: readonly CaseReport[], runs: number): string {
  const L: string[] = [];
  L.push(`## Benchmark, ${machine.date}`, "");
  L.push(`- machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}`);
  L.push(`- adapter: ${machine.adapter}`);
  if (machine.torch) L.push(`- PyTorch: ${machine.torch}`);
  if (machine.tfjs) L.push(`- TF.js: ${machine.tfjs}`);
  L.push(`- load average at start / end: ${machine.loadavgStart.map((x) => x.toFixed(2)).join(" ")} / ${machine.loadavgEnd?.map((x) => x.toFixed(2)).join(" ") ?? "-"}`);
  L.push(`- medians of ${runs} interleaved runs; wall time per repetition (submit to idle queue); "GPU" is the sum of per-dispatch timestamps of one profiled step`);
  L.push(`- "cores busy": the process's CPU time over wall time during its runs (lavapipe's threads count in ours); below ${machine.cores} means it was waiting or crowded out`);
  for (const n of machine.notes) L.push(`- note: ${n}`);
  L.push("");

  const t = targets(cases);
  if (t.length > 0) {
    L.push("### Targets", "", "| target | goal | measured | met |", "|---|---|---|---|");
    for (const x of t) L.push(`| ${x.what} | ${x.goal} | ${x.measured} | ${x.met === undefined ? "-" : x.met ? "yes" : "**no**"} |`);
    L.push("");
  }

  const steps = cases.filter((c) => c.suite === "step");
  if (steps.length > 0) {
    L.push("### Training step (one multi-level iteration)", "");
    L.push("| config | GFLOP | ours | ours GFLOP/s | ours GPU | PyTorch | PyTorch GFLOP/s | ours / PyTorch | cores busy ours / PyTorch | dispatches | scratch planned / bound | persistent | peak RSS ours / PyTorch |");
    L.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const c of steps) {
      const o = oursMs(c);
      const p = torchMs(c);
      const s = c.step;
      const mem = s ? `${mib(s.scratchPeakBytes)} / ${mib(s.scratchLowerBoundBytes)} (${(s.scratchPeakBytes / Math.max(1, s.scratchLowerBoundBytes)).toFixed(3)}x)` : "-";
      const rss = s ? `${mib(s.oursMaxRssKiB * 1024)} / ${s.torchMaxRssKiB ? mib(s.torchMaxRssKiB * 1024) : "-"}` : "-";
      L.push(
        `| ${c.name} | ${(c.flops / 1e9).toFixed(1)} | ${cell(c, "ours", o, true)} | ${fmtG(c.flops, o)} | ${c.ours?.gpuMs ? fmtS(c.ours.gpuMs) : "-"} | ${cell(c, "torch", p, true)} | ${fmtG(c.flops, p)} | ${fmtX(o !== undefined && p !== undefined ? o / p : undefined)} | ${coresCell(c, ["ours", "torch"])} | ${c.ours?.dispatches ?? "-"} | ${mem} | ${s ? mib(s.persistentBytes) : "-"} | ${rss} |`,
      );
    }
    L.push("");
    for (const c of steps) {
      const tmpl = c.ours?.templates;
      if (!tmpl || !c.ours?.gpuMs) continue;
      const total = c.ours.gpuMs;
      L.push(`#### ${c.name}: GPU time by kernel template (${tmpl.length > 20 ? `top 20 of ${tmpl.length}` : `all ${tmpl.length}`}; one profiled step, ${fmtS(total)})`, "");
      L.push("| template | dispatches | ms | share | GFLOP | GFLOP/s |", "|---|---|---|---|---|---|");
      for (const g of tmpl.slice(0, 20)) {
        L.push(`| ${g.template} | ${g.count} | ${fmtMs(g.ms)} | ${((100 * g.ms) / total).toFixed(1)}% | ${(g.flops / 1e9).toFixed(2)} | ${g.ms > 0 ? gflops(g.flops, g.ms).toFixed(1) : "-"} |`);
      }
      const flops = tmpl.reduce((s, g) => s + g.flops, 0);
      L.push(`| total | ${c.ours.dispatches} | ${fmtMs(total)} | 100% | ${(flops / 1e9).toFixed(2)} | ${gflops(flops, total).toFixed(1)} |`, "");
      const top = c.step?.top ?? [];
      if (top.length > 0) {
        L.push(`Slowest dispatches:`, "", "| dispatch | template | ms | GFLOP/s |", "|---|---|---|---|");
        for (const k of top.slice(0, 10)) L.push(`| ${k.name} | ${k.template} | ${fmtMs(k.ms)} | ${k.ms > 0 ? gflops(k.flops, k.ms).toFixed(1) : "-"} |`);
        L.push("");
      }
    }
  }

  const kernels = cases.filter((c) => c.suite === "kernels");
  if (kernels.length > 0) {
    L.push("### Kernels (ms per call; GFLOP/s)", "");
    L.push("| kernel | GFLOP | ours | ours GFLOP/s | ours GPU | TF.js | TF.js GFLOP/s | PyTorch | PyTorch GFLOP/s | TF.js / ours | ours / PyTorch | cores busy ours / TF.js / PyTorch |");
    L.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const c of kernels) {
      const o = oursMs(c);
      const tf = tfjsMs(c);
      const p = torchMs(c);
      L.push(
        `| ${c.name} | ${(c.flops / 1e9).toFixed(2)} | ${cell(c, "ours", o)} | ${fmtG(c.flops, o)} | ${fmtMs(c.ours?.gpuMs)} | ${cell(c, "tfjs", tf)} | ${fmtG(c.flops, tf)} | ${cell(c, "torch", p)} | ${fmtG(c.flops, p)} | ${fmtX(o !== undefined && tf !== undefined ? tf / o : undefined)} | ${fmtX(o !== undefined && p !== undefined ? o / p : undefined)} | ${coresCell(c, ["ours", "tfjs", "torch"])} |`,
      );
    }
    L.push("");
    // Where our kernel time goes when a case needs more than one dispatch (packing, split-K).
    const split = kernels.filter((c) => (c.ours?.templates?.length ?? 0) > 1);
    if (split.length > 0) {
      L.push("Our dispatches per kernel case (GPU ms by template):", "");
      for (const c of split) L.push(`- ${c.name}: ${c.ours!.templates!.map((g) => `${g.template} ${fmtMs(g.ms)}`).join(", ")}`);
      L.push("");
    }
  }
  L.push(...renderTiles(kernels));
  const failed = cases.flatMap((c) => c.timings.filter((x) => x.status === "failed").map((x) => `${c.name} / ${x.impl}: ${x.status === "failed" ? x.reason : ""}`));
  if (failed.length > 0) L.push("### Failures", "", ...failed.map((f) => `- ${f}`), "");
  return L.join("\n");
}

/**
 * An implementation's CPU milliseconds per call (median over runs; lavapipe's threads count) and
 * wall milliseconds (median). The tile comparison reads CPU time: the contenders differ by a few
 * percent, while on a shared machine the wall time of one run swings by tens of percent with how
 * many cores the others leave lavapipe; the work a call costs barely moves (measured here: CPU
 * medians of one configuration within 2% across runs, wall times 2-3x apart).
 */
function tileCost(c: CaseReport, impl: string): { cpu: number; wall: number } | undefined {
  const t = c.timings.find((x) => x.impl === impl);
  return t?.status === "ok" && t.cpuRuns !== undefined && t.cpuRuns.length > 0 ? { cpu: median(t.cpuRuns), wall: t.ms } : undefined;
}

/** Costs of our contenders with fixed tiles (impl `tile R rows`, bench/kernels.ts), by rows. */
function fixedTileCosts(c: CaseReport): Map<number, { cpu: number; wall: number }> {
  const out = new Map<number, { cpu: number; wall: number }>();
  for (const t of c.timings) {
    const m = /^tile (\d+) rows$/.exec(t.impl);
    const cost = tileCost(c, t.impl);
    if (m && cost !== undefined) out.set(Number(m[1]), cost);
  }
  return out;
}

/**
 * The tile choices: per case, the tile each tuned dispatch ran with; and where the case was also
 * run with each fixed candidate, tuned against the best of them (issue 19: within 10%).
 */
export function renderTiles(kernels: readonly CaseReport[]): string[] {
  const L: string[] = [];
  const chosen = kernels.filter((c) => (c.ours?.tiles?.length ?? 0) > 0);
  if (chosen.length === 0) return L;
  L.push("### Tile choices (runtime/tune.ts; CPU ms / wall ms per call, medians of the interleaved runs)", "");
  const compared = chosen.filter((c) => fixedTileCosts(c).size > 0);
  if (compared.length > 0) {
    const rows = [...new Set(compared.flatMap((c) => [...fixedTileCosts(c).keys()]))].sort((a, b) => a - b);
    const both = (x: { cpu: number; wall: number } | undefined) => (x === undefined ? "-" : `${fmtMs(x.cpu)} / ${fmtMs(x.wall)}`);
    L.push(`| kernel | tuned | ${rows.map((r) => `${r} rows`).join(" | ")} | tuned / best fixed (CPU) | within 10% |`);
    L.push(`|---|---|${rows.map(() => "---|").join("")}---|---|`);
    for (const c of compared) {
      const fixed = fixedTileCosts(c);
      const tuned = tileCost(c, "ours");
      const best = Math.min(...[...fixed.values()].map((x) => x.cpu));
      const ratio = tuned !== undefined ? tuned.cpu / best : undefined;
      L.push(
        `| ${c.name} | ${both(tuned)} | ${rows.map((r) => both(fixed.get(r))).join(" | ")} | ${ratio !== undefined ? ratio.toFixed(3) : "-"} | ${ratio === undefined ? "-" : ratio <= 1.1 ? "yes" : "**no**"} |`,
      );
    }
    L.push("");
  }
  L.push("Tuned tile per dispatch (rows chosen, of the candidates):", "");
  for (const c of chosen) L.push(`- ${c.name}: ${c.ours!.tiles!.map((t) => `${t.dispatch} ${t.rows} of [${t.candidates.join(", ")}]`).join("; ")}`);
  L.push("");
  return L;
}
