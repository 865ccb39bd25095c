// Numeric run options: decimal only, negative values spelled either way, the option named in
// every refusal.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderTrainError } from "./errors";
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

  it("a hexadecimal compiled hyperparameter is refused, naming the option", () => {
    expect(refusal(["--learning-rate", "0x1"])).toContain('--learning-rate must be a number (a finite decimal), got "0x1"');
  });

  it("a negative value parses after a space as after `=`", () => {
    expect(parsed(["--lambda-seg", "-1"]).overrides).toEqual({ lambdaSeg: -1 });
    expect(parsed(["--lambda-adv-target1=-0.5e-3"]).overrides).toEqual({ lambdaAdvTarget1: -0.5e-3 });
  });

  it("a negative count is refused as out of range, naming the option (not as an ambiguous argument)", () => {
    expect(refusal(["--save-pred-every", "-1"])).toContain('--save-pred-every must be a non-negative integer (decimal digits), got "-1"');
  });

  it("decimal values are taken as given", () => {
    const o = parsed(["--num-steps-stop", "250", "--random-seed", "0", "--num-workers", "2", "--learning-rate", "2.5e-4"]);
    expect([o.numStepsStop, o.seed, o.workers, o.overrides["learningRate"]]).toEqual([250, 0, 2, 2.5e-4]);
  });
});
