// The progress line and the metrics log: what a person reads while a run goes.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricsLog, readMetrics } from "./metrics";
import { niceTicks } from "../plots/chart";
import { formatDuration, Progress, progressLine } from "./progress";
import { scratch } from "./test-programs";

describe("progress line", () => {
  it("shows the iteration, the six losses, it/s and the time left", () => {
    const line = progressLine({
      title: "multi-level",
      done: 250,
      total: 1000,
      losses: { loss_seg1: 0.5, loss_seg2: 0.25, loss_adv1: 2.5, loss_adv2: 1.25, loss_D1: 0.3, loss_D2: 0.35 },
      itsPerS: 5,
      width: 400,
    });
    expect(line).toBe("multi-level [#####...............] 250/1000 | seg1 0.5000 seg2 0.2500 adv1 2.500 adv2 1.250 D1 0.3000 D2 0.3500 | 5.00 it/s | ETA 2m30s");
  });

  it("formats durations for people", () => {
    expect([formatDuration(42), formatDuration(150), formatDuration(3 * 3600 + 120), formatDuration(Number.NaN)]).toEqual(["42s", "2m30s", "3h02m", "--"]);
  });

  it("in a log it writes plain lines, at most one per interval", () => {
    const lines: string[] = [];
    const p = new Progress("t", 10, { write: (s) => lines.push(s) > 0, isTTY: false }, 3600);
    p.update(1, { loss_seg2: 1 }, 1);
    p.update(2, { loss_seg2: 1 }, 1);
    p.message("snapshot x");
    p.update(10, { loss_seg2: 1 }, 1, true);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(" 1/10 ");
    expect(lines[1]).toBe("snapshot x\n");
    expect(lines[2]).toContain(" 10/10 ");
    expect(lines.every((l) => l.endsWith("\n") && !l.includes("\r"))).toBe(true);
  });
});

describe("metrics log", () => {
  const opened = (r: ReturnType<typeof MetricsLog.open>): MetricsLog => {
    if (r._tag === "Left") throw new Error(r.left.message);
    return r.right;
  };

  it("appends JSON lines; a resumed run drops what came after its snapshot", () => {
    const path = join(scratch(), "m.jsonl");
    const log = opened(MetricsLog.open(path));
    for (const i of [10, 20, 30]) log.write({ type: "loss", iteration: i, time_s: i, lr: 1, its_per_s: 1, losses: { loss_seg2: Number.NaN } });
    expect(readMetrics(path).map((r) => r.iteration)).toEqual([10, 20, 30]);
    const resumed = opened(MetricsLog.open(path, 20));
    resumed.write({ type: "snapshot", iteration: 25, path: "x" });
    const back = readMetrics(path);
    expect(back.map((r) => r.iteration)).toEqual([10, 20, 25]);
    // JSON has no NaN: a non-finite loss is logged as null.
    expect(back[0]).toMatchObject({ losses: { loss_seg2: null } });
  });
});

describe("plot axes", () => {
  it("chooses round ticks", () => {
    expect(niceTicks(0, 1000)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(0.13, 0.71)).toEqual([0.2, 0.4, 0.6]);
    expect(niceTicks(17, 33)).toEqual([20, 25, 30]);
  });
});
