// Numbers on the command line: decimal only, every message naming the option.
//
// JavaScript's Number() reads "0x2" as 2, "" and " " as 0 and "Infinity" as a number, so a typo
// can become a run setting. Values are therefore matched against decimal grammars first, and
// only then converted: integers are digits with an optional sign, other numbers a decimal with an
// optional exponent, and the result must be finite.
//
// node:util parseArgs reads "-1" after an option as another option ("argument is ambiguous"),
// so `--lambda-seg -1` fails although `--lambda-seg=-1` works; joinNegativeValues rewrites the
// first spelling into the second for options that take a value.

import * as E from "fp-ts/lib/Either.js";

export interface NumberRule {
  /** Digits only (no fraction, no exponent). */
  readonly integer: boolean;
  readonly min?: number;
  readonly max?: number;
  /** What the option takes, for the message: "a positive integer", "a number". */
  readonly what: string;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The value of `--option`, or a message naming it; undefined when the option was not given. */
export function parseDecimal(option: string, raw: string | boolean | undefined, rule: NumberRule): E.Either<string, number | undefined> {
  if (raw === undefined) return E.right(undefined);
  const grammar = rule.integer ? INTEGER : DECIMAL;
  const n = typeof raw === "string" && grammar.test(raw) ? Number(raw) : Number.NaN;
  const ok = Number.isFinite(n) && (!rule.integer || Number.isSafeInteger(n)) && (rule.min === undefined || n >= rule.min) && (rule.max === undefined || n <= rule.max);
  const form = rule.integer ? "decimal digits" : "a finite decimal";
  return ok ? E.right(n) : E.left(`--${option} must be ${rule.what} (${form}), got ${JSON.stringify(raw)}`);
}

const NEGATIVE = /^-(\d|\.\d)/;

/** `--opt -1` -> `--opt=-1` for the options in `takesValue`; stops at the `--` terminator. */
export function joinNegativeValues(argv: readonly string[], takesValue: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (a.startsWith("--") && !a.includes("=") && takesValue.has(a.slice(2)) && next !== undefined && NEGATIVE.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}
