// The two data CLIs end to end, as a user runs them (through tsx, in a child process).

import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { makeTempDir } from "../datasets/test_tree";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const TREE = join(ROOT, "evaluation", "fixtures", "tree");

let dir = "";
let cleanup = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir("data-cli-test"));
});
afterAll(() => cleanup());

test("score prints the per-class table and the NumPy mIoU of the fixture tree, and writes JSON", async () => {
  const expected = JSON.parse(readFileSync(join(TREE, "expected.json"), "utf8")) as { mIoURounded: string; scored: number };
  const json = join(dir, "score.json");
  const { stdout } = await run(TSX, ["scripts/score.ts", "--pred", join(TREE, "pred"), "--gt", join(TREE, "gtFine", "val"), "--json", json], {
    cwd: ROOT,
  });
  expect(stdout).toContain(`mIoU: ${expected.mIoURounded}`);
  expect(stdout).toContain("| road |");
  expect(stdout).toMatch(/1 image\(s\) skipped for a size mismatch/);
  const report = JSON.parse(readFileSync(json, "utf8")) as { images: number; classes: unknown[] };
  expect(report.images).toBe(expected.scored);
  expect(report.classes.length).toBe(19);
});

test("score exits non-zero with a message naming the missing folder", async () => {
  const err = await run(TSX, ["scripts/score.ts", "--pred", join(dir, "none"), "--gt", join(dir, "nowhere")], { cwd: ROOT }).catch(
    (e: { code: number; stderr: string }) => e,
  );
  expect("code" in err && err.code).toBe(1);
  expect((err as { stderr: string }).stderr).toContain(join(dir, "nowhere"));
});

test("data:synth writes both layouts with the requested sizes and counts", async () => {
  const out = join(dir, "synth");
  await run(
    TSX,
    ["scripts/synth.ts", "--out", out, "--seed", "3", "--source-size", "48x32", "--target-size", "32x16", "--count-source", "2", "--count-train", "1", "--count-val", "1"],
    { cwd: ROOT },
  );
  expect(readdirSync(join(out, "gta5", "images"))).toEqual(["00001.png", "00002.png"]);
  expect(readdirSync(join(out, "cityscapes", "gtFine", "val", "westfield"))).toEqual(["westfield_000000_000019_gtFine_labelIds.png"]);
  const manifest = JSON.parse(readFileSync(join(out, "synth.json"), "utf8")) as { seed: number; source: { size: unknown } };
  expect(manifest.seed).toBe(3);
  expect(manifest.source.size).toEqual({ width: 48, height: 32 });
});
