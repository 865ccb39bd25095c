// Charts of a run as SVG, rendered to PNG by sharp (librsvg): loss curves and mIoU over time.
// Batch-1 losses are noisy, so each curve is drawn twice: the values read back, faint, and an
// exponential moving average over them, solid. No chart library: a few panels of polylines
// with axes and ticks are all a person needs to see whether training went as it should.

import * as TE from "fp-ts/lib/TaskEither.js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { type PlotError, plotWriteError } from "./errors.js";

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  /** Draw the raw points faintly and an EMA with this factor solidly (0: raw only). */
  readonly smooth?: number;
  readonly markers?: boolean;
}

export interface LinePanel {
  readonly kind: "lines";
  readonly title: string;
  readonly xLabel: string;
  readonly series: readonly Series[];
  readonly yMin?: number;
  readonly yMax?: number;
  /** Where the legend goes: top right (default, for falling curves) or bottom right (rising ones). */
  readonly legend?: "top" | "bottom";
}

export interface BarPanel {
  readonly kind: "bars";
  readonly title: string;
  readonly bars: readonly { readonly label: string; readonly value: number; readonly color: string }[];
  readonly yMax?: number;
}

export type Panel = LinePanel | BarPanel;

export const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"] as const;

const PANEL_W = 460;
const PANEL_H = 270;
const M = { left: 58, right: 16, top: 34, bottom: 44 };
const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** About five round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function tickText(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 10000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return String(Number(v.toFixed(2)));
  return String(Number(v.toPrecision(2)));
}

export function ema(points: readonly (readonly [number, number])[], factor: number): [number, number][] {
  let s: number | undefined;
  return points.map(([x, y]) => {
    s = s === undefined ? y : factor * s + (1 - factor) * y;
    return [x, s];
  });
}

function linePanel(p: LinePanel, ox: number, oy: number): string {
  const w = PANEL_W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const parts: string[] = [`<text x="${ox + PANEL_W / 2}" y="${oy + 20}" text-anchor="middle" font-size="14" font-weight="bold" ${FONT}>${esc(p.title)}</text>`];
  if (pts.length === 0) {
    parts.push(`<text x="${ox + PANEL_W / 2}" y="${oy + PANEL_H / 2}" text-anchor="middle" font-size="12" fill="#888" ${FONT}>no data</text>`);
    return parts.join("");
  }
  let [x0, x1] = [Math.min(...pts.map((q) => q[0])), Math.max(...pts.map((q) => q[0]))];
  let [y0, y1] = [p.yMin ?? Math.min(...pts.map((q) => q[1])), p.yMax ?? Math.max(...pts.map((q) => q[1]))];
  if (x1 <= x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 <= y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  if (p.yMin === undefined) y0 -= pad;
  if (p.yMax === undefined) y1 += pad;
  const X = (x: number) => ox + M.left + ((x - x0) / (x1 - x0)) * w;
  const Y = (y: number) => oy + M.top + h - ((Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0)) * h;
  parts.push(`<rect x="${ox + M.left}" y="${oy + M.top}" width="${w}" height="${h}" fill="#fafafa" stroke="#bbb"/>`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${ox + M.left}" x2="${ox + M.left + w}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${ox + M.left - 6}" y="${Y(t) + 4}" text-anchor="end" font-size="11" ${FONT}>${tickText(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${oy + M.top + h}" y2="${oy + M.top + h + 4}" stroke="#666"/>`);
    parts.push(`<text x="${X(t)}" y="${oy + M.top + h + 16}" text-anchor="middle" font-size="11" ${FONT}>${tickText(t)}</text>`);
  }
  parts.push(`<text x="${ox + M.left + w / 2}" y="${oy + PANEL_H - 8}" text-anchor="middle" font-size="11" fill="#444" ${FONT}>${esc(p.xLabel)}</text>`);
  const poly = (ps: readonly (readonly [number, number])[], color: string, width: number, opacity: number) =>
    `<polyline fill="none" stroke="${color}" stroke-width="${width}" stroke-opacity="${opacity}" stroke-linejoin="round" points="${ps
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`)
      .join(" ")}"/>`;
  p.series.forEach((s) => {
    if (s.smooth !== undefined && s.smooth > 0) {
      parts.push(poly(s.points, s.color, 1, 0.25));
      parts.push(poly(ema(s.points, s.smooth), s.color, 2, 1));
    } else {
      parts.push(poly(s.points, s.color, 2, 1));
    }
    if (s.markers === true) for (const [x, y] of s.points) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
  });
  // Legend, top or bottom right inside the plot.
  const legendTop = p.legend === "bottom" ? oy + M.top + h - 6 - 15 * p.series.length : oy + M.top;
  p.series.forEach((s, i) => {
    const ly = legendTop + 14 + i * 15;
    const lx = ox + M.left + w - 150;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 23}" y="${ly}" font-size="11" ${FONT}>${esc(s.label)}</text>`);
  });
  return parts.join("");
}

function barPanel(p: BarPanel, ox: number, oy: number): string {
  const w = PANEL_W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const max = p.yMax ?? Math.max(1e-9, ...p.bars.map((b) => b.value)) * 1.15;
  const Y = (v: number) => oy + M.top + h - (Math.max(0, Math.min(max, v)) / max) * h;
  const parts = [
    `<text x="${ox + PANEL_W / 2}" y="${oy + 20}" text-anchor="middle" font-size="14" font-weight="bold" ${FONT}>${esc(p.title)}</text>`,
    `<rect x="${ox + M.left}" y="${oy + M.top}" width="${w}" height="${h}" fill="#fafafa" stroke="#bbb"/>`,
  ];
  for (const t of niceTicks(0, max)) {
    parts.push(`<line x1="${ox + M.left}" x2="${ox + M.left + w}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${ox + M.left - 6}" y="${Y(t) + 4}" text-anchor="end" font-size="11" ${FONT}>${tickText(t)}</text>`);
  }
  const slot = w / Math.max(1, p.bars.length);
  p.bars.forEach((b, i) => {
    const x = ox + M.left + i * slot + slot * 0.2;
    parts.push(`<rect x="${x}" y="${Y(b.value)}" width="${slot * 0.6}" height="${oy + M.top + h - Y(b.value)}" fill="${b.color}"/>`);
    parts.push(`<text x="${x + slot * 0.3}" y="${Y(b.value) - 5}" text-anchor="middle" font-size="12" font-weight="bold" ${FONT}>${Number.isFinite(b.value) ? b.value.toFixed(1) : "nan"}</text>`);
    parts.push(`<text x="${x + slot * 0.3}" y="${oy + M.top + h + 16}" text-anchor="middle" font-size="11" ${FONT}>${esc(b.label)}</text>`);
  });
  return parts.join("");
}

/** Panels in a grid of `columns`, under a title line. */
export function renderSvg(title: string, panels: readonly Panel[], columns = 2): string {
  const cols = Math.max(1, Math.min(columns, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const head = 36;
  const width = cols * PANEL_W;
  const height = head + rows * PANEL_H;
  const body = panels.map((p, i) => {
    const ox = (i % cols) * PANEL_W;
    const oy = head + Math.floor(i / cols) * PANEL_H;
    return p.kind === "lines" ? linePanel(p, ox, oy) : barPanel(p, ox, oy);
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold" ${FONT}>${esc(title)}</text>`,
    ...body,
    "</svg>",
  ].join("\n");
}

/** Writes `<path>` (PNG) and the same chart as `<path minus .png>.svg`. */
export function writeChart(path: string, svg: string): TE.TaskEither<PlotError, void> {
  return TE.tryCatch(
    async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path.replace(/\.png$/i, "") + ".svg", svg);
      await sharp(Buffer.from(svg), { density: 96 }).png({ compressionLevel: 9 }).toFile(path);
    },
    (e) => plotWriteError("chart", path, e),
  );
}

// ---------------------------------------------------------------------------------------------
// The panels of one run

const LOSS_GROUPS: readonly { readonly title: string; readonly names: readonly string[] }[] = [
  { title: "segmentation loss (source CE)", names: ["loss_seg2", "loss_seg1"] },
  { title: "adversarial loss (G on target)", names: ["loss_adv2", "loss_adv1"] },
  { title: "discriminator loss", names: ["loss_D2", "loss_D1"] },
];

/**
 * A line of a run's metrics log, as far as the charts read it: "loss" lines carry `losses`,
 * "eval" lines `mIoU`, and every other line is skipped. Declared here rather than taken from
 * train/ because plots/ sits below train/; the optional fields keep train's richer records
 * (and any line type it adds later) passable as they are.
 */
export interface RunRecord {
  readonly type: string;
  readonly iteration: number;
  readonly losses?: Readonly<Record<string, number>>;
  readonly mIoU?: number;
}

type LossRecord = RunRecord & { readonly losses: Readonly<Record<string, number>> };
type EvalRecord = RunRecord & { readonly mIoU: number };

// The type alone does not tie a field to its line type, so both are checked: a "loss" line
// without losses (a foreign or truncated log) is skipped rather than drawn as zeros.
const isLossRecord = (r: RunRecord): r is LossRecord => r.type === "loss" && r.losses !== undefined;
const isEvalRecord = (r: RunRecord): r is EvalRecord => r.type === "eval" && r.mIoU !== undefined;

/** Loss curves (by group, main then aux) and, when the run was evaluated, mIoU over time. */
export function runPanels(records: readonly RunRecord[]): Panel[] {
  const losses = records.filter(isLossRecord);
  const evals = records.filter(isEvalRecord);
  const present = new Set(losses.flatMap((r) => Object.keys(r.losses)));
  const panels: Panel[] = [];
  for (const g of LOSS_GROUPS) {
    const names = g.names.filter((n) => present.has(n));
    if (names.length === 0) continue;
    panels.push({
      kind: "lines",
      title: g.title,
      xLabel: "iteration",
      series: names.map((n, i) => ({
        label: n.endsWith("1") ? `${n} (aux)` : `${n} (main)`,
        color: COLORS[i]!,
        smooth: 0.8,
        points: losses.map((r) => [r.iteration, r.losses[n] ?? Number.NaN] as const),
      })),
      ...(g.title.startsWith("segmentation") ? { yMin: 0 } : {}),
    });
  }
  if (evals.length > 0) {
    panels.push({
      kind: "lines",
      title: "target val mIoU (%)",
      xLabel: "iteration",
      yMin: 0,
      legend: "bottom",
      series: [{ label: "mIoU", color: COLORS[2], markers: true, points: evals.map((r) => [r.iteration, r.mIoU] as const) }],
    });
  }
  return panels;
}
