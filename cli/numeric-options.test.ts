import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { joinNegativeValues, parseDecimal } from "./numeric-options";

describe("decimal option values", () => {
  const int = (raw: string) => parseDecimal("num-steps-stop", raw, { integer: true, min: 1, what: "a positive integer" });
  const float = (raw: string) => parseDecimal("learning-rate", raw, { integer: false, what: "a number" });

  it.each(["1", "250", "+3", "007"])("accepts the decimal integer %s", (raw) => expect(int(raw)).toEqual(E.right(Number(raw))));

  it.each(["0x2", "0b1", "0o7", "1e3", "2.0", "", " ", "Infinity", "NaN", "1_000", "--1", "0"])("refuses %j where a positive integer is expected, naming the option", (raw) => {
    expect(int(raw)).toEqual(E.left(`--num-steps-stop must be a positive integer (decimal digits), got ${JSON.stringify(raw)}`));
  });

  it.each([["2.5e-4", 2.5e-4], ["-1", -1], [".5", 0.5], ["3.", 3], ["-0.001", -0.001]])("accepts the decimal number %s", (raw, n) => expect(float(raw)).toEqual(E.right(n)));

  it.each(["0x10", "Infinity", "-Infinity", "NaN", "", "1e999", "1,5", "e5"])("refuses %j where a finite number is expected, naming the option", (raw) => {
    expect(E.isLeft(float(raw)) && float(raw)).toEqual(E.left(`--learning-rate must be a number (a finite decimal), got ${JSON.stringify(raw)}`));
  });
});

describe("negative option values", () => {
  const options = new Set(["lambda-seg", "learning-rate"]);

  it("joins `--opt -1` into `--opt=-1` for options that take a value", () => {
    expect(joinNegativeValues(["--lambda-seg", "-1", "--learning-rate", "-.5e-3", "--resume"], options)).toEqual(["--lambda-seg=-1", "--learning-rate=-.5e-3", "--resume"]);
  });

  it("leaves flags, `--opt=-1`, non-numbers and everything after `--` alone", () => {
    const argv = ["--resume", "-1", "--lambda-seg=-2", "--learning-rate", "-x", "--", "--lambda-seg", "-3"];
    expect(joinNegativeValues(argv, options)).toEqual(argv);
  });
});
