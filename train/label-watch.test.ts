// Labels that map entirely to the ignore label train nothing: one such file is warned about once,
// naming it; a source stream made of them is refused before the first step.

import * as E from "fp-ts/lib/Either.js";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import { encodePng } from "../datasets/png";
import { renderTrainError } from "./errors";
import { ignoreOnlyWarnings, refuseIgnoreOnlyStream } from "./label-watch";
import { compiled, scratch, testDevice, tinyData, tinyTrainProgram } from "./test-programs";
import { train, type TrainRun } from "./trainer";

/** Overwrites a tiny-data GTA5 label with label id 0 ("unlabeled", ignored) everywhere. */
function blankLabel(dataDir: string, name: string): string {
  const path = join(dataDir, "gta5", "labels", name);
  writeFileSync(path, encodePng({ width: 32, height: 16, colorType: "gray", bitDepth: 8, samples: new Uint8Array(32 * 16) }));
  return path;
}

function capture(): { stream: { write: (s: string) => boolean; isTTY: false }; text: () => string } {
  let text = "";
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false }, text: () => text };
}

describe("ignore-only labels", () => {
  const module = compiled(tinyTrainProgram("tiny-train"));
  const run = (data: Awaited<ReturnType<typeof tinyData>>, dir: string, progress: TrainRun["progress"]): TrainRun => ({
    module,
    data,
    seed: 3,
    numStepsStop: 12,
    savePredEvery: 0,
    snapshotDir: dir,
    snapshotPrefix: "tiny",
    logEvery: 4,
    evalEvery: 0,
    workers: 0,
    metricsPath: join(dir, "metrics.jsonl"),
    ...(progress ? { progress } : {}),
  });

  it("one such file among the source labels is warned about once, naming it, and the run goes on", async () => {
    const data = await tinyData();
    const blank = blankLabel(data.dir, "00003.png");
    const out = capture();
    const r = await train(run(data, scratch(), out.stream), await testDevice());
    expect(E.isRight(r) ? "trained" : renderTrainError(r.left)).toBe("trained");
    const warnings = out.text().split("\n").filter((l) => l.startsWith("warning:"));
    expect(warnings).toEqual([`warning: every pixel of the source label ${blank} maps to the ignore label 255; this sample adds nothing to the segmentation loss`]);
  });

  it("a source dataset whose labels are all such files is refused before the first step, leaving no run behind", async () => {
    const data = await tinyData();
    for (const f of readdirSync(join(data.dir, "gta5", "labels"))) blankLabel(data.dir, f);
    const dir = scratch();
    const r = await train(run(data, dir, capture().stream), await testDevice());
    expect(E.isLeft(r) && renderTrainError(r.left)).toMatch(/^data: every pixel of the first 6 source labels drawn maps to the ignore label 255 \(.*gta5\/labels\/\d+\.png/);
    expect(readdirSync(dir).filter((f) => f !== "run.json")).toEqual([]);
  });

  it("the stream check passes as soon as one drawn label has a class", async () => {
    const data = await tinyData();
    const refs = [0, 1, 2].map((i) => ({ name: `${i}`, imagePath: "", labelPath: blankLabel(data.dir, `0000${i + 1}.png`), labelCoding: "cityscapes-label-id" as const }));
    const withClass = { ...refs[0]!, labelPath: join(data.dir, "gta5", "labels", "00004.png") };
    expect(E.isLeft(await refuseIgnoreOnlyStream("source", refs, [0, 1, 2], PROTOCOLS.cityscapes19))).toBe(true);
    expect(await refuseIgnoreOnlyStream("source", [...refs, withClass], [0, 3, 1], PROTOCOLS.cityscapes19)).toEqual(E.right(undefined));
  });

  it("warns once per file however often it is drawn", () => {
    const warn = ignoreOnlyWarnings("source", [{ name: "a.png", imagePath: "i/a.png", labelPath: "l/a.png", labelCoding: "cityscapes-label-id" }]);
    const sample = { name: "a.png", width: 1, height: 1, image: new Float32Array(3), label: Uint8Array.of(255), labelWidth: 1, labelHeight: 1 };
    expect([warn(sample), warn(sample), warn({ ...sample, label: Uint8Array.of(3) })]).toEqual([expect.stringContaining("l/a.png"), undefined, undefined]);
  });
});
