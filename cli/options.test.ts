// Numeric run options: decimal only, negative values spelled either way, the option named in
// every refusal.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderTrainError } from "../train/errors";
import { parseTrainOptions, type TrainCliOptions } from "./options";

const parsed = (argv: string[]): TrainCliOptions => {
  const r = parseTrainOptions(argv);
  if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
  return r.right;
};
const refusal = (argv: string[]): string => {
  const r = parseTrainOptions(argv);
  return E.isLeft(r) ? renderTrainError(r.left) : "accepted";
};

describe("numeric train options", () => {
  it.each([
    ["--num-steps-stop", "0x2"],
    ["--num-steps-stop", "1e3"],
    ["--save-pred-every", ""],
    ["--random-seed", "Infinity"],
    ["--log-every", "NaN"],
    ["--eval-every", " "],
    ["--num-workers", "2.5"],
  ])("%s %j is refused, naming the option", (option, value) => {
    expect(refusal([`${option}=${value}`])).toContain(`${option} must be`);
    expect(refusal([`${option}=${value}`])).toContain(JSON.stringify(value));
  });

  it("a hexadecimal hyperparameter is refused, naming the option", () => {
    expect(refusal(["--learning-rate", "0x1"])).toContain('--learning-rate must be a number (a finite decimal), got "0x1"');
  });

  it("a negative value parses after a space as after `=` (then meets its rule)", () => {
    expect(refusal(["--lambda-seg", "-1"])).toContain("--lambda-seg must be 0 or more, got -1");
    expect(refusal(["--lambda-adv-target1=-0.5e-3"])).toContain("--lambda-adv-target1 must be 0 or more, got -0.0005");
  });

  it("a negative count is refused as out of range, naming the option (not as an ambiguous argument)", () => {
    expect(refusal(["--save-pred-every", "-1"])).toContain('--save-pred-every must be a non-negative integer (decimal digits), got "-1"');
  });

  it("decimal values are taken as given", () => {
    const o = parsed(["--num-steps-stop", "250", "--random-seed", "0", "--num-workers", "2", "--learning-rate", "2.5e-4"]);
    expect([o.numStepsStop, o.seed, o.workers, o.hyperparameters["learningRate"]]).toEqual([250, 0, 2, 2.5e-4]);
  });
});

describe("hyperparameter options", () => {
  it("every official numeric flag sets its hyperparameter, not a compiled option", () => {
    const o = parsed([
      ...["--learning-rate", "5e-3", "--learning-rate-D", "3e-4", "--momentum", "0.8", "--weight-decay", "1e-3", "--power", "0.8"],
      ...["--num-steps", "20", "--lambda-seg", "0.2", "--lambda-adv-target1", "0", "--lambda-adv-target2", "0.005"],
    ]);
    expect(o.hyperparameters).toEqual({
      learningRate: 5e-3,
      learningRateD: 3e-4,
      momentum: 0.8,
      weightDecay: 1e-3,
      power: 0.8,
      numSteps: 20,
      lambdaSeg: 0.2,
      lambdaAdvTarget1: 0,
      lambdaAdvTarget2: 0.005,
    });
    expect(o.overrides).toEqual({});
  });

  it("none given: no hyperparameter is set (the program's defaults apply)", () => {
    expect(parsed([]).hyperparameters).toEqual({});
  });

  it.each([
    [["--learning-rate", "0"], "--learning-rate must be positive, got 0"],
    [["--learning-rate-D", "-1e-4"], "--learning-rate-D must be positive, got -0.0001"],
    [["--num-steps", "0"], '--num-steps must be a positive integer (decimal digits), got "0"'],
    [["--num-steps", "2.5"], '--num-steps must be a positive integer (decimal digits), got "2.5"'],
    [["--lambda-adv-target2", "-0.001"], "--lambda-adv-target2 must be 0 or more, got -0.001"],
    [["--momentum", "-0.9"], "--momentum must be 0 or more, got -0.9"],
    [["--weight-decay", "1e999"], '--weight-decay must be a number (a finite decimal), got "1e999"'],
  ])("%j is refused: %s", (argv, message) => {
    expect(refusal(argv)).toContain(message);
  });
});
