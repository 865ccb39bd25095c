// The demo's results section is written by the demo; these specify what it writes and where.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import { confusionOf, formatPercent } from "../evaluation/confusion";
import { summarize } from "../evaluation/report";
import { BEGIN, END, replaceResults, resultsMarkdown, type SeedRun } from "./docs";

const p = PROTOCOLS.cityscapes19;
/** A summary whose mIoU is `right` out of 4 pixels of road (the only class present). */
const scored = (right: number) => summarize(p, confusionOf(19, Uint8Array.from([0, 0, 0, 0]), Uint8Array.from([0, 0, 0, 0].map((_, i) => (i < right ? 0 : 1)))));
const run = (seed: number, so: number, ad: number, or: number): SeedRun => ({
  seed,
  seconds: 125,
  summaries: [
    { title: "source-only", variant: "source-only", summary: scored(so) },
    { title: "adapted", variant: "multi-level", summary: scored(ad) },
    { title: "oracle", variant: "oracle", summary: scored(or) },
  ],
});
const context = { command: "npm run demo -- --seeds 1,2,3 --write-docs", iterations: 1500, machine: "a test CPU (2 CPUs)", adapter: "mesa software (cpu)" };

describe("the demo's results section", () => {
  it("has a row per seed with the gain, the medians, and the first seed's per-class table", () => {
    const md = resultsMarkdown([run(1, 1, 2, 4), run(2, 2, 3, 4), run(3, 1, 4, 3)], context);
    const m = (right: number) => formatPercent(scored(right).miou);
    const gain = (a: number, b: number) => `+${formatPercent(scored(a).miou - scored(b).miou)}`;
    expect(md.startsWith(BEGIN) && md.endsWith(END)).toBe(true);
    expect(md).toContain(`| 1 | ${m(1)} | ${m(2)} | ${m(4)} | ${gain(2, 1)} | 2 min 5 s |`);
    // Medians (lower middle of three): source-only 1, adapted 3, oracle 4; gains 1, 1, 3.
    expect(md).toContain(`| **median** | **${m(1)}** | **${m(3)}** | **${m(4)}** | **${gain(2, 1)}** | |`);
    expect(md).toContain("`npm run demo -- --seeds 1,2,3 --write-docs` (1500 iterations per model), on a test CPU (2 CPUs), WebGPU adapter mesa software (cpu)");
    expect(md).toContain("| road | 25.00 | 50.00 | 100.00 |");
    expect(m(1)).not.toBe(m(2));
  });

  it("replaces only what lies between the markers, and refuses a document without them", () => {
    const doc = `intro\n${BEGIN}\nold table\n${END}\noutro\n`;
    const r = replaceResults(doc, `${BEGIN}\nnew\n${END}`);
    expect(E.isRight(r) && r.right).toBe(`intro\n${BEGIN}\nnew\n${END}\noutro\n`);
    expect(E.isLeft(replaceResults("no markers", "x"))).toBe(true);
    expect(E.isLeft(replaceResults(`${BEGIN}${END}${BEGIN}${END}`, "x"))).toBe(true);
  });

  it("docs/demo.md carries the markers, so --write-docs has a place to write", () => {
    const doc = readFileSync(new URL("../docs/demo.md", import.meta.url), "utf8");
    expect(E.isRight(replaceResults(doc, `${BEGIN}\n${END}`))).toBe(true);
  });
});
