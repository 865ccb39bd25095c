// The npm scripts that run long jobs start node itself (`node --import tsx`), not the tsx
// wrapper: tsx runs the script in a child process, so a SIGKILL sent to the process one started
// (the only one a user or a supervisor knows) killed the wrapper and left the trainer running,
// still holding its snapshot directory.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import { emitStandalone } from "../codegen/emit";
import { isProcessAlive } from "../checkpoint/atomic-write";
import { REPO_ROOT } from "../train/programs";
import { LOCK_FILE } from "../train/run-dir";
import { scratch, tinyData, tinyTrainProgram } from "../train/test-programs";

const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const LONG_JOBS = ["train", "eval", "demo", "import-weights", "score"];

const waitFor = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe("npm scripts of long jobs", () => {
  it.each(LONG_JOBS)("%s runs node directly", (name) => {
    expect(scripts[name]).toMatch(/^node --import tsx scripts\/\w+\.ts$/);
  });

  it("SIGKILL of the process `npm run train` starts ends the training", async () => {
    const work = scratch("npm-kill-");
    mkdirSync(join(work, "tiny-train"));
    const moduleFile = join(work, "tiny-train", "module.ts");
    writeFileSync(moduleFile, emitStandalone(compileProgram(tinyTrainProgram("tiny-train")), "train/test-programs.ts"));
    const data = await tinyData(join(work, "data"));
    const dir = join(work, "run");
    const [command, ...words] = scripts["train"]!.split(" ");
    const args = ["--module", moduleFile, "--data-dir", join(data.dir, "gta5"), "--data-dir-target", join(data.dir, "cityscapes"), "--num-steps-stop", "1000", "--snapshot-dir", dir];
    const child = spawn(command === "node" ? process.execPath : command!, [...words, ...args], { cwd: REPO_ROOT, stdio: "ignore" });
    let trainer: number | undefined;
    try {
      // The trainer writes its pid into the run lock once it owns the directory.
      await waitFor("the run lock", () => existsSync(join(dir, LOCK_FILE)), 60_000);
      trainer = (JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")) as { pid: number }).pid;
      expect(trainer).toBe(child.pid);
      child.kill("SIGKILL");
      await waitFor("the trainer to end", () => !isProcessAlive(trainer!), 5_000);
    } finally {
      child.kill("SIGKILL");
      if (trainer !== undefined && isProcessAlive(trainer)) process.kill(trainer, "SIGKILL");
    }
  }, 90_000);
});
