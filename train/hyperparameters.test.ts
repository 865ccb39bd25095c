// Hyperparameters as run settings (hyperparameters.ts): checked against the program and their
// rules with the option named, effective (an override trains exactly like a program compiled with
// that default), recorded in run.json, metrics and every snapshot, and enforced on --resume.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { StateDict } from "../checkpoint/tensor";
import { loadCheckpoint } from "./checkpoint";
import { renderTrainError } from "./errors";
import { describeHyperparameters, hyperparameterDifferences, recordedHyperparameters, runHyperparameters } from "./hyperparameters";
import { readMetrics } from "./metrics";
import { RUN_FILE, type RunFile } from "./run-dir";
import { compiled, scratch, SILENT, testDevice, TINY, tinyData, tinyTrainProgram } from "./test-programs";
import { train, type TrainRun } from "./trainer";

const module = compiled(tinyTrainProgram("tiny-train"));

const message = <R>(r: E.Either<{ kind: string; message: string }, R>): string => (E.isLeft(r) ? r.left.message : "accepted");

describe("runHyperparameters", () => {
  it("without overrides: the program's defaults", () => {
    const r = runHyperparameters(module, {});
    expect(E.isRight(r) && r.right).toEqual(module.hyperparameters);
    expect(module.hyperparameters.map((h) => h.name)).toEqual(["learningRate", "learningRateD", "momentum", "numSteps", "lambdaAdvTarget2"]);
  });

  it("refuses a hyperparameter the program does not read, naming the option and those it reads", () => {
    expect(message(runHyperparameters(module, { lambdaSeg: 0.2 }))).toBe(
      "--lambda-seg: program tiny-train does not read lambdaSeg; it reads --learning-rate, --learning-rate-D, --momentum, --num-steps, --lambda-adv-target2",
    );
  });

  it("checks every value against its rule, naming the option (or the hyperparameter without a flag)", () => {
    expect(message(runHyperparameters(module, { learningRate: 0 }))).toBe("--learning-rate must be positive, got 0");
    expect(message(runHyperparameters(module, { numSteps: 10.5 }))).toBe("--num-steps must be a positive integer, got 10.5");
    expect(message(runHyperparameters(module, { lambdaAdvTarget2: Number.NaN }))).toBe("--lambda-adv-target2 must be a finite number, got NaN");
  });

  it("describes the values for the log, marking overrides", () => {
    expect(describeHyperparameters(module, [{ name: "learningRate", value: 0.02 }, { name: "momentum", value: 0.9 }])).toBe("learningRate 0.02 (default 0.05), momentum 0.9");
  });

  it("a record without hyperparameters (written before they were run-time values) stands for its config's values", () => {
    const config = { learningRate: 2.5e-4, lambdaSeg: 0.1, gan: "Vanilla" };
    expect(recordedHyperparameters(undefined, config, ["learningRate", "lambdaSeg"])).toEqual({ learningRate: 2.5e-4, lambdaSeg: 0.1 });
    expect(recordedHyperparameters({ learningRate: 1 }, config, ["learningRate"])).toEqual({ learningRate: 1 });
    expect(hyperparameterDifferences("the snapshot", { learningRate: 2.5e-4, lambdaSeg: 0.1 }, { learningRate: 5e-3, lambdaSeg: 0.1 })).toEqual([
      "--learning-rate: 0.00025 in the snapshot, 0.005 now",
    ]);
  });
});

describe("training with run-time hyperparameters", () => {
  let data: Awaited<ReturnType<typeof tinyData>>;
  beforeAll(async () => {
    data = await tinyData();
  });

  const STOP = 4;
  const run = (m: TrainRun["module"], dir: string, hyperparameters?: Readonly<Record<string, number>>): TrainRun => ({
    module: m,
    data,
    seed: 3,
    ...(hyperparameters ? { hyperparameters } : {}),
    numStepsStop: STOP,
    savePredEvery: 2,
    snapshotDir: dir,
    snapshotPrefix: "tiny",
    logEvery: 1,
    evalEvery: 0,
    workers: 0,
    metricsPath: join(dir, "metrics.jsonl"),
    progress: SILENT,
  });

  const sameBits = (a: Readonly<Record<string, StateDict>>, b: Readonly<Record<string, StateDict>>): string[] =>
    Object.entries(a).flatMap(([model, dict]) =>
      [...dict].flatMap(([key, t]) => {
        const u = b[model]?.get(key);
        return u !== undefined && Buffer.compare(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)) === 0 ? [] : [`${model}.${key}`];
      }),
    );

  it("an override trains bit for bit like a program built with that default, and differently from the default", async () => {
    const device = await testDevice();
    const values = { learningRate: 0.02, numSteps: 50, lambdaAdvTarget2: 0.5 };
    const overridden = await train(run(module, scratch(), values), device);
    const builtWith = compiled(tinyTrainProgram("tiny-train-other", { ...TINY, learningRate: 0.02, numSteps: 50 }));
    // The other program's remaining default differs too: set it at run time as well.
    const reference = await train(run(builtWith, scratch(), { lambdaAdvTarget2: 0.5 }), device);
    const defaults = await train(run(module, scratch()), device);
    for (const r of [overridden, reference, defaults]) if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    const [a, b, c] = [overridden, reference, defaults].map((r) => (r as E.Right<{ groups: Record<string, StateDict> }>).right.groups);
    expect(sameBits(a!, b!)).toEqual([]);
    expect(sameBits(a!, c!).length).toBeGreaterThan(10);
  });

  it("records the values in run.json, the metrics log and every snapshot; --resume with others is refused", async () => {
    const device = await testDevice();
    const dir = scratch();
    const values = { learningRate: 0.02, lambdaAdvTarget2: 0.5 };
    const r = await train(run(module, dir, values), device);
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    const expected = { learningRate: 0.02, learningRateD: 1e-3, momentum: 0.9, numSteps: 1000, lambdaAdvTarget2: 0.5 };
    const runFile = JSON.parse(readFileSync(join(dir, RUN_FILE), "utf8")) as RunFile;
    expect(runFile.identity.hyperparameters).toEqual(expected);
    expect(readMetrics(join(dir, "metrics.jsonl")).find((m) => m.type === "start")).toMatchObject({ hyperparameters: expected });
    for (const it of [2, 4]) {
      const c = await loadCheckpoint(join(dir, `tiny_${it}.safetensors`))();
      expect(E.isRight(c) && c.right.hyperparameters).toEqual(expected);
    }

    // The directory's run.json holds other values: refused before anything runs.
    const other = await train({ ...run(module, dir, { ...values, learningRate: 0.03 }), numStepsStop: 6, resume: true }, device);
    expect(message(other)).toContain("--learning-rate: 0.02 in the directory, 0.03 now");
    // The snapshot itself, resumed into a fresh directory: refused by the snapshot's record.
    const moved = await train({ ...run(module, scratch(), { learningRate: 0.03 }), numStepsStop: 6, resume: join(dir, "tiny_4.safetensors") }, device);
    expect(message(moved)).toContain("was trained with other hyperparameters (--lambda-adv-target2: 0.5 in the snapshot, 0.01 now; --learning-rate: 0.02 in the snapshot, 0.03 now)");
    // The same values continue the run.
    const same = await train({ ...run(module, dir, values), numStepsStop: 6, resume: true }, device);
    expect(message(same)).toBe("accepted");
  });
});
