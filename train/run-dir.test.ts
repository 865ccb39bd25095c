// One run per snapshot directory: a rerun never destroys an earlier run, --resume continues only
// the same run, two runs cannot train into one directory at once, and a directory that cannot
// hold a run is refused up front with a message naming it.

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { renderTrainError, type TrainError } from "./errors";
import { acquireRunLock, checkRunDirectory, checkRunRequest, LOCK_FILE, makeDirectory, preflightRunRequest, RUN_FILE, type RunIdentity } from "./run-dir";
import { compiled, scratch, SILENT, testDevice, tinyData, tinyTrainProgram } from "./test-programs";
import { train, type TrainRun } from "./trainer";

const text = (r: E.Either<TrainError, unknown>): string => (E.isLeft(r) ? renderTrainError(r.left) : "accepted");

/** Every file of a directory with its bytes and modification time: "untouched" means equal. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, `${statSync(join(dir, f)).mtimeMs} ${readFileSync(join(dir, f)).toString("base64")}`]));
}

const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!;

const IDENTITY: RunIdentity = { program: "p", config: { numSteps: 10 }, seed: 5, snapshotPrefix: "p", data: {} };

describe("the snapshot directory, checked up front", () => {
  it("is created with its missing parents, and no probe file is left in it", () => {
    const dir = join(scratch(), "a", "b");
    expect(checkRunDirectory(dir)).toEqual(E.right(undefined));
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses a regular file, naming it and the option", () => {
    const file = join(scratch(), "notes.txt");
    writeFileSync(file, "x");
    expect(text(checkRunDirectory(file))).toContain(`--snapshot-dir ${file} cannot hold the run: `);
    expect(text(checkRunDirectory(file))).toContain("is not a directory");
    expect(text(checkRunDirectory(join(file, "sub")))).toContain(`${file} is not a directory`);
  });

  it("refuses /proc/x at once (Node's recursive mkdir never returns there)", () => {
    expect(text(checkRunDirectory("/proc/x"))).toMatch(/--snapshot-dir \/proc\/x cannot hold the run: cannot create \/proc\/x/);
    expect(E.isLeft(makeDirectory("/proc/x/y"))).toBe(true);
  }, 5000);

  it.skipIf(process.getuid?.() === 0)("refuses a directory it cannot write to", () => {
    const dir = scratch();
    spawnSync("chmod", ["0555", dir]);
    expect(text(checkRunDirectory(dir))).toContain("is not writable");
  });
});

describe("the run lock", () => {
  it("refuses a second holder while the first holds it, and is free again after release", () => {
    const dir = scratch();
    const a = acquireRunLock(dir);
    if (E.isLeft(a)) throw new Error(renderTrainError(a.left));
    expect(text(acquireRunLock(dir))).toContain(`${dir} is in use by another run: process ${process.pid}`);
    a.right.release();
    expect(readdirSync(dir)).toEqual([]);
    const b = acquireRunLock(dir);
    expect(E.isRight(b)).toBe(true);
    if (E.isRight(b)) b.right.release();
  });

  it("refuses a lock held by another live process, naming its pid", async () => {
    const dir = scratch();
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"]);
    try {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: child.pid, host: (await import("node:os")).hostname(), started: "earlier" }));
      expect(text(acquireRunLock(dir))).toContain(`process ${child.pid}`);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("is seen by the command line's check, which runs without it", () => {
    const dir = scratch();
    const a = acquireRunLock(dir);
    if (E.isLeft(a)) throw new Error(renderTrainError(a.left));
    expect(text(preflightRunRequest({ dir, identity: IDENTITY, resume: false }))).toContain(`${dir} is in use by another run`);
    a.right.release();
    expect(E.isRight(preflightRunRequest({ dir, identity: IDENTITY, resume: false }))).toBe(true);
  });

  it("takes over a lock whose process is dead, with a warning", async () => {
    const dir = scratch();
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: (await import("node:os")).hostname(), started: "earlier" }));
    const r = acquireRunLock(dir);
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    expect(r.right.notes.join("\n")).toMatch(new RegExp(`warning: took over the lock of run ${pid} .* no longer running`));
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid: process.pid });
    r.right.release();
  });
});

describe("what a directory holding a run accepts", () => {
  const holding = (): string => {
    const dir = scratch();
    writeFileSync(join(dir, "p_10.safetensors"), "snapshot");
    writeFileSync(join(dir, RUN_FILE), JSON.stringify({ identity: IDENTITY, created: "earlier" }));
    return dir;
  };

  it("refuses a new run, naming the directory and both ways out", () => {
    const dir = holding();
    const msg = text(checkRunRequest({ dir, identity: IDENTITY, resume: false }));
    expect(msg).toContain(`${dir} already holds a run (p_10.safetensors)`);
    expect(msg).toContain("Pass --resume to continue it, or another --snapshot-dir to start a new run");
  });

  it("refuses a new run where only a non-empty metrics log is left (a run that diverged before its first snapshot)", () => {
    const dir = scratch();
    writeFileSync(join(dir, "metrics.jsonl"), '{"type":"diverged"}\n');
    expect(text(checkRunRequest({ dir, identity: IDENTITY, metricsPath: join(dir, "metrics.jsonl"), resume: false }))).toContain("already holds a run");
  });

  it("accepts a new run where a run.json alone is left (a run refused before its first step)", () => {
    const dir = scratch();
    writeFileSync(join(dir, RUN_FILE), JSON.stringify({ identity: IDENTITY, created: "earlier" }));
    expect(E.isRight(checkRunRequest({ dir, identity: { ...IDENTITY, seed: 6 }, resume: false }))).toBe(true);
  });

  it("refuses --resume of another run, naming every difference", () => {
    const msg = text(checkRunRequest({ dir: holding(), identity: { ...IDENTITY, seed: 6, config: { numSteps: 20 } }, resume: true }));
    expect(msg).toContain("--resume: ");
    expect(msg).toContain("seed: 5 in the directory, 6 now");
    expect(msg).toContain("config numSteps: 10 in the directory, 20 now");
  });

  it("accepts --resume of the same run", () => {
    expect(E.isRight(checkRunRequest({ dir: holding(), identity: IDENTITY, resume: true }))).toBe(true);
  });
});

describe("training into a directory that holds a run", () => {
  const module = compiled(tinyTrainProgram("tiny-train"));
  let data: Awaited<ReturnType<typeof tinyData>>;
  beforeAll(async () => {
    data = await tinyData();
  });
  const base = (dir: string): TrainRun => ({
    module,
    data,
    seed: 7,
    numStepsStop: 4,
    savePredEvery: 2,
    snapshotDir: dir,
    snapshotPrefix: "tiny",
    logEvery: 1,
    evalEvery: 0,
    workers: 0,
    metricsPath: join(dir, "metrics.jsonl"),
    progress: SILENT,
  });

  it("a rerun without --resume is refused and leaves the earlier snapshots and metrics byte for byte", async () => {
    const device = await testDevice();
    const dir = scratch();
    expect(text(await train(base(dir), device))).toBe("accepted");
    const before = contents(dir);
    expect(Object.keys(before)).toEqual(["metrics.jsonl", RUN_FILE, "tiny_2.safetensors", "tiny_4.safetensors"].sort());
    const again = await train(base(dir), device);
    expect(text(again)).toContain(`${dir} already holds a run (tiny_2.safetensors, tiny_4.safetensors; ${join(dir, "metrics.jsonl")})`);
    expect(contents(dir)).toEqual(before);
  });

  it("--resume continues the same run and refuses another seed, naming it", async () => {
    const device = await testDevice();
    const dir = scratch();
    expect(text(await train(base(dir), device))).toBe("accepted");
    expect(text(await train({ ...base(dir), seed: 8, numStepsStop: 6, resume: true }, device))).toContain("seed: 7 in the directory, 8 now");
    expect(text(await train({ ...base(dir), numStepsStop: 6, resume: true }, device))).toBe("accepted");
    expect(readdirSync(dir)).toContain("tiny_6.safetensors");
  });

  it("a second run into a directory that is being trained into is refused while the first goes on", async () => {
    const device = await testDevice();
    const dir = scratch();
    let second = "";
    const first = await train(
      {
        ...base(dir),
        afterStep: async (done) => {
          if (done === 1) second = text(await train({ ...base(dir), seed: 9 }, device));
        },
      },
      device,
    );
    expect(text(first)).toBe("accepted");
    expect(second).toContain(`${dir} is in use by another run: process ${process.pid}`);
    expect(readdirSync(dir)).not.toContain(LOCK_FILE);
  });

  it("the demo's replace removes the earlier run before training", async () => {
    const device = await testDevice();
    const dir = scratch();
    expect(text(await train({ ...base(dir), numStepsStop: 6 }, device))).toBe("accepted");
    expect(text(await train({ ...base(dir), existingRun: "replace" }, device))).toBe("accepted");
    expect(readdirSync(dir).filter((f) => f.endsWith(".safetensors"))).toEqual(["tiny_2.safetensors", "tiny_4.safetensors"]);
  });
});

describe("npm run train with a --snapshot-dir that cannot hold a run", () => {
  it.each([
    ["a regular file", (d: string) => (writeFileSync(join(d, "f"), "x"), join(d, "f")), /is not a directory/],
    ["/proc/x", () => "/proc/x", /cannot create \/proc\/x/],
  ])("%s is refused before the device is acquired, with exit status 2 and no stack trace", async (_, dirFor, why) => {
    const work = scratch("cli-dir-");
    const { emitStandalone } = await import("../codegen/emit");
    const { compileProgram } = await import("../codegen/compile");
    const { REPO_ROOT } = await import("./programs");
    mkdirSync(join(work, "tiny-train"));
    const moduleFile = join(work, "tiny-train", "module.ts");
    writeFileSync(moduleFile, emitStandalone(compileProgram(tinyTrainProgram("tiny-train")), "train/test-programs.ts"));
    const dir = dirFor(work);
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "scripts", "train.ts"), "--module", moduleFile, "--snapshot-dir", dir], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(2);
    expect(out).toContain(`--snapshot-dir ${dir} cannot hold the run`);
    expect(out).toMatch(why);
    expect(out).not.toMatch(/training to iteration|\n\s+at /);
  }, 60_000);
});
