// plots/ as a library below train/: its own error type, naming the file at fault, and a chart
// input that train's metrics records fit as they are.

import * as E from "fp-ts/lib/Either.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fromPlotError, renderTrainError } from "../train/errors";
import type { MetricRecord } from "../train/metrics";
import { renderSvg, runPanels, writeChart } from "./chart";
import { renderPlotError } from "./errors";
import { writePanelGrid } from "./pictures";

/** A path whose parent is a regular file, so no directory can be made for it. */
function unwritablePath(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "plots-"));
  writeFileSync(join(dir, "blocker"), "");
  return join(dir, "blocker", name);
}

describe("runPanels", () => {
  it("takes train's metrics records as they are and draws loss and eval lines only", () => {
    const records: readonly MetricRecord[] = [
      { type: "start", iteration: 0, program: "p", seed: 1 },
      { type: "loss", iteration: 10, time_s: 1, lr: 0.1, its_per_s: 2, losses: { loss_seg2: 1.5, loss_D2: 0.7 } },
      { type: "eval", iteration: 10, mIoU: 12.5, classes: {}, images: 3, seconds: 1 },
      { type: "best", iteration: 10, mIoU: 12.5, path: "x" },
      { type: "snapshot", iteration: 10, path: "x" },
    ];
    const panels = runPanels(records);
    expect(panels.map((p) => p.title)).toEqual(["segmentation loss (source CE)", "discriminator loss", "target val mIoU (%)"]);
    const miou = panels[2]!;
    expect(miou.kind === "lines" ? miou.series[0]!.points : []).toEqual([[10, 12.5]]);
  });

  it("skips a loss line that carries no losses instead of drawing it", () => {
    expect(runPanels([{ type: "loss", iteration: 1 }])).toEqual([]);
  });
});

describe("PlotError", () => {
  it("names the chart that cannot be written, and train renders it as a bad output path", async () => {
    const path = unwritablePath("curves.png");
    const r = await writeChart(path, renderSvg("t", []))();
    expect(E.isLeft(r)).toBe(true);
    if (E.isRight(r)) return;
    expect(r.left).toMatchObject({ kind: "write", what: "chart", file: path });
    expect(renderPlotError(r.left).startsWith(`cannot write the chart ${path}: `)).toBe(true);
    expect(renderTrainError(fromPlotError(r.left)).startsWith(`bad options: cannot write the chart ${path}: `)).toBe(true);
  });

  it("names the picture asked for with no panels, before touching the disk", async () => {
    const path = unwritablePath("panels.png");
    const r = await writePanelGrid(path, ["image"], [], 64)();
    expect(r).toEqual(E.left({ kind: "empty", what: "picture", file: path }));
    if (E.isLeft(r)) expect(renderPlotError(r.left)).toBe(`cannot write the picture ${path}: no panels to draw`);
  });
});
