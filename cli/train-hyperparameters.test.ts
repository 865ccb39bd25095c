// `npm run train` with hyperparameter flags: one compiled program, values set at run time,
// printed at the start, recorded in run.json and the snapshot; a flag the program does not read
// is refused before anything runs.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import { emitStandalone } from "../codegen/emit";
import { loadCheckpoint } from "../train/checkpoint";
import { REPO_ROOT } from "../train/programs";
import { RUN_FILE, type RunFile } from "../train/run-dir";
import { scratch, tinyData, tinyTrainProgram } from "../train/test-programs";

function trainCli(args: readonly string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "scripts", "train.ts"), ...args], { cwd: REPO_ROOT, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("npm run train: hyperparameter flags", () => {
  it("runs the compiled program with the flags' values and records them", async () => {
    const work = scratch("cli-hyper-");
    mkdirSync(join(work, "tiny-train"));
    const moduleFile = join(work, "tiny-train", "module.ts");
    writeFileSync(moduleFile, emitStandalone(compileProgram(tinyTrainProgram("tiny-train")), "train/test-programs.ts"));
    const data = await tinyData(join(work, "data"));
    const dir = join(work, "run");
    const common = ["--module", moduleFile, "--data-dir", join(data.dir, "gta5"), "--data-dir-target", join(data.dir, "cityscapes"), "--snapshot-dir", dir];

    const refused = trainCli([...common, "--lambda-seg", "0.2", "--num-steps-stop", "2"]);
    expect(refused.status, refused.output).toBe(2);
    expect(refused.output).toContain("--lambda-seg: program tiny-train does not read lambdaSeg");

    const r = trainCli([...common, "--learning-rate", "0.02", "--lambda-adv-target2", "0.005", "--num-steps", "40", "--num-steps-stop", "3"]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain("hyperparameters: learningRate 0.02 (default 0.05), learningRateD 0.001, momentum 0.9, numSteps 40 (default 1000), lambdaAdvTarget2 0.005 (default 0.01)");
    const expected = { learningRate: 0.02, learningRateD: 0.001, momentum: 0.9, numSteps: 40, lambdaAdvTarget2: 0.005 };
    const runFile = JSON.parse(readFileSync(join(dir, RUN_FILE), "utf8")) as RunFile;
    expect(runFile.identity.hyperparameters).toEqual(expected);
    const snapshot = await loadCheckpoint(join(dir, "tiny-train_3.safetensors"))();
    expect(E.isRight(snapshot) && snapshot.right.hyperparameters).toEqual(expected);

    const resumed = trainCli([...common, "--learning-rate", "0.03", "--num-steps", "40", "--num-steps-stop", "5", "--resume"]);
    expect(resumed.status, resumed.output).toBe(2);
    expect(resumed.output).toContain("--learning-rate: 0.02 in the directory, 0.03 now");
  });
});
