// codegen/main.ts on programs that fail: one line per failing program (no stack trace), the
// others still compiled, nothing written, a non-zero exit.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dsl = JSON.stringify(path.join(root, "dsl/index"));

/** Three programs: one whose build throws a ShapeError, one that does not compile, one fine. */
const PROGRAMS = `
import * as d from ${dsl};
import type { F32 } from ${dsl};

export const badShapes = d.exportProgram("bad-shapes", "conv channels that do not match", () => {
  const x = d.input("x", [1, 3, 8, 8], "f32") as F32<4>;
  const w = d.input("w", [4, 5, 3, 3], "f32", "param") as F32<4>;
  return d.defineProgram({ name: "bad-shapes", params: [], phases: [{ name: "f", outputs: { y: d.conv2d(x, w) }, updates: {} }] });
});

export const twice = d.exportProgram("loss-twice", "two phases output loss", () => {
  const x = d.input("x", [4], "f32") as F32<1>;
  const loss = d.withScope("head", () => d.sum(d.mul(x, x)));
  return d.defineProgram({ name: "loss-twice", params: [], phases: [{ name: "a", outputs: { loss }, updates: {} }, { name: "b", outputs: { loss: d.withScope("head", () => d.add(loss, 1)) }, updates: {} }] });
});

export const fine = d.exportProgram("fine", "compiles", () => {
  const x = d.input("x", [4], "f32") as F32<1>;
  return d.defineProgram({ name: "fine", params: [], phases: [{ name: "f", outputs: { y: d.relu(x) }, updates: {} }] });
});
`;

describe("codegen main", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "codegen-main-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("renders one message per failing program and exits 2", () => {
    // An ES module, as examples/ is (package.json): as CommonJS it would load a second copy of
    // the DSL, whose errors are not main's DslError.
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(path.join(dir, "programs.ts"), PROGRAMS);
    const run = spawnSync("npx", ["tsx", "codegen/main.ts", "--from", dir], { cwd: root, encoding: "utf8", timeout: 120_000 });
    const lines = run.stderr.trim().split("\n");
    const source = path.relative(root, path.join(dir, "programs.ts")).split(path.sep).join("/");
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^codegen: program bad-shapes \\(${source.replaceAll(".", "\\.")}#badShapes\\) does not build: conv2d: `)),
      `codegen: program loss-twice (${source}#twice), phase b: add#5 in head: output name loss is used twice (or names a parameter)`,
      "codegen: 2 programs failed; generated/ is unchanged",
    ]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.status).toBe(2);
  }, 120_000);
});
