// `npm run demo -- --seeds 1,2,3 --write-docs`: the results section of docs/demo.md is written by
// the run that measured it, never typed. The section sits between two markers; everything
// outside them is prose and stays as it is. The machine is named (CPU model, adapter) because
// times on these shared 2-core machines are only comparable within one run.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { formatPercent } from "../evaluation/confusion.js";
import { markdownTable, type ScoreSummary } from "../evaluation/report.js";

export const BEGIN = "<!-- demo-results:begin (written by `npm run demo -- --seeds ... --write-docs`; do not edit) -->";
export const END = "<!-- demo-results:end -->";

export interface SeedRun {
  readonly seed: number;
  readonly seconds: number;
  readonly summaries: readonly { readonly title: string; readonly variant: string; readonly summary: ScoreSummary }[];
}

export interface RunContext {
  readonly command: string;
  readonly iterations: number;
  readonly machine: string;
  readonly adapter: string;
}

/** Median of an odd or even count: the lower middle, as the demo's summary prints it. */
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const signed = (x: number): string => `${x >= 0 ? "+" : ""}${formatPercent(x)}`;
const minutes = (s: number): string => `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

function miou(run: SeedRun, variant: string): number {
  const s = run.summaries.find((x) => x.variant === variant);
  if (s === undefined) throw new Error(`invariant: the demo scored ${variant}`);
  return s.summary.miou;
}

/** The results section: one row per seed, the medians, and the per-class table of the first seed. */
export function resultsMarkdown(runs: readonly SeedRun[], c: RunContext): string {
  const first = runs[0];
  if (first === undefined) throw new Error("resultsMarkdown: no runs");
  // The oracle column only when the demo trained one (the ResNet demo; MobileNetV2 has none).
  const oracle = first.summaries.some((s) => s.variant === "oracle");
  const rows = runs.map((r) => {
    const [so, ad] = [miou(r, "source-only"), miou(r, "multi-level")];
    const or = oracle ? ` ${formatPercent(miou(r, "oracle"))} |` : "";
    return `| ${r.seed} | ${formatPercent(so)} | ${formatPercent(ad)} |${or} ${signed(ad - so)} | ${minutes(r.seconds)} |`;
  });
  const col = (v: string) => runs.map((r) => miou(r, v));
  const gains = runs.map((r) => miou(r, "multi-level") - miou(r, "source-only"));
  const oracleHead = oracle ? " target-trained (oracle) |" : "";
  const oracleMedian = oracle ? ` **${formatPercent(median(col("oracle")))}** |` : "";
  return [
    BEGIN,
    "",
    `\`${c.command}\` (${c.iterations} iterations per model), on ${c.machine}, WebGPU adapter ${c.adapter}. Final models, the`,
    "target validation images, the official protocol:",
    "",
    `| seed | source-only | adapted (multi-level) |${oracleHead} adapted − source-only | wall time |`,
    `|---|---:|---:|${oracle ? "---:|" : ""}---:|---|`,
    ...rows,
    `| **median** | **${formatPercent(median(col("source-only")))}** | **${formatPercent(median(col("multi-level")))}** |${oracleMedian} **${signed(median(gains))}** | |`,
    "",
    `Per class, seed ${first.seed}:`,
    "",
    markdownTable(first.summaries.map((s) => ({ title: s.title, summary: s.summary }))).trimEnd(),
    "",
    END,
  ].join("\n");
}

/** `doc` with its results section replaced by `section`; Left when the markers are not there once each. */
export function replaceResults(doc: string, section: string): E.Either<string, string> {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a || doc.indexOf(BEGIN, a + 1) >= 0 || doc.indexOf(END, b + 1) >= 0) {
    return E.left(`the results markers must appear once each, in order: ${BEGIN} ... ${END}`);
  }
  return E.right(doc.slice(0, a) + section + doc.slice(b + END.length));
}

/** The CPU model, from /proc/cpuinfo where there is one. */
export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[1]?.trim() ?? "an unknown CPU";
  } catch {
    return "an unknown CPU";
  }
}
