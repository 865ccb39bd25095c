// The per-class result table, as markdown (for people and REPORT.md files) and as JSON (for
// scripts). Several runs can share one markdown table, one column each (source-only, adapted,
// target-trained), which is how the paper's tables read.

import type { ClassTable } from "../datasets/class-table";
import { type Confusion, formatPercent, meanIoU, perClassIoU, pixelAccuracy } from "./confusion";

export interface ScoreSummary {
  /** The classes scored: a built-in protocol or a user's class table. */
  readonly protocol: ClassTable;
  readonly confusion: Confusion;
  /** Per-class IoU in [0, 1], NaN for absent classes. */
  readonly iou: Float64Array;
  /** 100 x nan-mean of `iou`. */
  readonly miou: number;
}

/**
 * mIoU over the classes of `sub` only, from a summary of a wider protocol: SYNTHIA models are
 * trained on 16 classes and reported on 16 and on the 13 of the Cross-City protocol (16 less
 * wall, fence, pole), from the same confusion matrix. Undefined when `sub` is not a subset, or
 * either side is a user's table (whose classes have no trainIds to match them by).
 */
export function subsetMIoU(s: ScoreSummary, sub: ClassTable): number | undefined {
  const wide = s.protocol.trainIds;
  if (wide === undefined || sub.trainIds === undefined) return undefined;
  const index = sub.trainIds.map((t) => wide.indexOf(t));
  if (index.some((k) => k < 0)) return undefined;
  return meanIoU(Float64Array.from(index, (k) => s.iou[k]!));
}

export function summarize(protocol: ClassTable, confusion: Confusion): ScoreSummary {
  if (confusion.numClasses !== protocol.numClasses) {
    throw new Error(`summarize: a ${confusion.numClasses}-class matrix for the ${protocol.numClasses}-class protocol`);
  }
  const iou = perClassIoU(confusion);
  return { protocol, confusion, iou, miou: meanIoU(iou) };
}

export interface Column {
  readonly title: string;
  readonly summary: ScoreSummary;
}

/** Markdown: one row per class (IoU x 100, 2 decimals), then mIoU; one column per run. */
export function markdownTable(columns: readonly Column[]): string {
  const first = columns[0];
  if (first === undefined) throw new Error("markdownTable: no columns");
  const p = first.summary.protocol;
  if (columns.some((c) => c.summary.protocol.id !== p.id)) throw new Error("markdownTable: columns use different protocols");
  const lines = [
    `| class | ${columns.map((c) => c.title).join(" | ")} |`,
    `|---|${columns.map(() => "---:").join("|")}|`,
    ...p.names.map((name, k) => `| ${name} | ${columns.map((c) => formatPercent(100 * c.summary.iou[k]!)).join(" | ")} |`),
    `| **mIoU** | ${columns.map((c) => `**${formatPercent(c.summary.miou)}**`).join(" | ")} |`,
  ];
  return lines.join("\n") + "\n";
}

export interface JsonReport {
  readonly protocol: string;
  readonly numClasses: number;
  /** mIoU x 100, null when every class is absent. */
  readonly mIoU: number | null;
  readonly pixelAccuracy: number | null;
  /** trainId: a built-in protocol's classes only (a user's table has none). */
  readonly classes: readonly { readonly name: string; readonly trainId?: number; readonly iou: number | null }[];
  /** hist[gt][pred] */
  readonly confusion: readonly (readonly number[])[];
  readonly outOfProtocolPredictions: readonly number[];
}

const nullIfNaN = (v: number): number | null => (Number.isNaN(v) ? null : v);

const trainIdOf = (t: ClassTable, k: number): { trainId?: number } => (t.trainIds === undefined ? {} : { trainId: t.trainIds[k]! });

/** JSON has no NaN: absent classes are null. IoUs are fractions in [0, 1], mIoU is x 100 as printed. */
export function jsonReport(s: ScoreSummary): JsonReport {
  const n = s.protocol.numClasses;
  return {
    protocol: s.protocol.id,
    numClasses: n,
    mIoU: nullIfNaN(s.miou),
    pixelAccuracy: nullIfNaN(pixelAccuracy(s.confusion)),
    classes: s.protocol.names.map((name, k) => ({ name, ...trainIdOf(s.protocol, k), iou: nullIfNaN(s.iou[k]!) })),
    confusion: Array.from({ length: n }, (_, g) => Array.from(s.confusion.hist.subarray(g * n, (g + 1) * n))),
    outOfProtocolPredictions: Array.from(s.confusion.missed),
  };
}
