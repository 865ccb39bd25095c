// Checking a loaded state dict against the table of tensors a network expects.
//
// The comparison is a report, not a verdict: the init file legitimately lacks the heads and
// num_batches_tracked (§8.2 of the spec), while a released model must match exactly. Callers
// pick the policy; `checkStateDict` turns a report plus a policy into an Either whose error
// names every offending tensor.

import * as E from "fp-ts/lib/Either.js";
import { checkpointError, type CheckpointError } from "./errors";
import { isDType, isValidShape, showShape, type DType, type StateDict } from "./tensor";

export interface ExpectedTensor {
  readonly shape: readonly number[];
  /** Omitted: any dtype is accepted (the shapes table the trainers emit may not carry dtypes). */
  readonly dtype?: DType;
}

export type ExpectedTable = ReadonlyMap<string, ExpectedTensor>;

export interface ShapeMismatch {
  readonly key: string;
  readonly expected: readonly number[];
  readonly actual: readonly number[];
}

export interface DTypeMismatch {
  readonly key: string;
  readonly expected: DType;
  readonly actual: DType;
}

export interface StateDictReport {
  /** In the table, not in the state dict. */
  readonly missing: readonly string[];
  /** In the state dict, not in the table. */
  readonly unexpected: readonly string[];
  readonly shapeMismatches: readonly ShapeMismatch[];
  readonly dtypeMismatches: readonly DTypeMismatch[];
}

export interface ValidationPolicy {
  readonly allowMissing: boolean;
  readonly allowUnexpected: boolean;
}

export const STRICT: ValidationPolicy = { allowMissing: false, allowUnexpected: false };

export function compareStateDict(dict: StateDict, expected: ExpectedTable): StateDictReport {
  const missing = [...expected.keys()].filter((k) => !dict.has(k));
  const unexpected = [...dict.keys()].filter((k) => !expected.has(k));
  const shapeMismatches: ShapeMismatch[] = [];
  const dtypeMismatches: DTypeMismatch[] = [];
  for (const [key, t] of dict) {
    const want = expected.get(key);
    if (want === undefined) continue;
    if (!sameShape(t.shape, want.shape)) shapeMismatches.push({ key, expected: want.shape, actual: t.shape });
    if (want.dtype !== undefined && want.dtype !== t.dtype) {
      dtypeMismatches.push({ key, expected: want.dtype, actual: t.dtype });
    }
  }
  return { missing, unexpected, shapeMismatches, dtypeMismatches };
}

export function checkStateDict(
  file: string,
  dict: StateDict,
  expected: ExpectedTable,
  policy: ValidationPolicy = STRICT,
): E.Either<CheckpointError, StateDictReport> {
  const report = compareStateDict(dict, expected);
  const problems = reportProblems(report, policy);
  if (problems.length === 0) return E.right(report);
  const only = singleCulprit(report, policy);
  return E.left(checkpointError("mismatch", file, problems.join("; "), only));
}

/** One line per kind of problem the policy does not accept, every tensor named. */
export function reportProblems(report: StateDictReport, policy: ValidationPolicy): string[] {
  const lines: string[] = [];
  for (const m of report.shapeMismatches) {
    lines.push(`tensor ${m.key} has shape ${showShape(m.actual)}, expected ${showShape(m.expected)}`);
  }
  for (const m of report.dtypeMismatches) lines.push(`tensor ${m.key} has dtype ${m.actual}, expected ${m.expected}`);
  if (!policy.allowMissing && report.missing.length > 0) lines.push(`missing ${listNames(report.missing)}`);
  if (!policy.allowUnexpected && report.unexpected.length > 0) lines.push(`unexpected ${listNames(report.unexpected)}`);
  return lines;
}

function singleCulprit(report: StateDictReport, policy: ValidationPolicy): string | undefined {
  const names = [
    ...report.shapeMismatches.map((m) => m.key),
    ...report.dtypeMismatches.map((m) => m.key),
    ...(policy.allowMissing ? [] : report.missing),
    ...(policy.allowUnexpected ? [] : report.unexpected),
  ];
  return new Set(names).size === 1 ? names[0] : undefined;
}

/** Long key lists (104 num_batches_tracked) are cut so the message stays readable. */
export function listNames(names: readonly string[], limit = 20): string {
  const shown = names.slice(0, limit).join(", ");
  const count = `${names.length} key${names.length === 1 ? "" : "s"}`;
  return names.length > limit ? `${count}: ${shown}, … and ${names.length - limit} more` : `${count}: ${shown}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Reads a table from JSON: `{key: [dims]}` or `{key: {shape: [dims], dtype: "F32"}}`.
 * `file` names the JSON file in errors.
 */
export function parseExpectedTable(file: string, json: unknown): E.Either<CheckpointError, ExpectedTable> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return E.left(checkpointError("corrupt", file, "expected a JSON object {key: shape}"));
  }
  const table = new Map<string, ExpectedTensor>();
  for (const [key, raw] of Object.entries(json)) {
    const entry = parseExpectedEntry(raw);
    if (entry === undefined) {
      return E.left(checkpointError("corrupt", file, `expected [dims] or {shape, dtype}, got ${JSON.stringify(raw)}`, key));
    }
    table.set(key, entry);
  }
  return E.right(table);
}

function parseExpectedEntry(raw: unknown): ExpectedTensor | undefined {
  if (Array.isArray(raw)) return isValidShape(raw) ? { shape: raw } : undefined;
  if (typeof raw !== "object" || raw === null) return undefined;
  const { shape, dtype } = raw as { shape?: unknown; dtype?: unknown };
  if (!Array.isArray(shape) || !isValidShape(shape)) return undefined;
  if (dtype === undefined) return { shape };
  return typeof dtype === "string" && isDType(dtype) ? { shape, dtype } : undefined;
}
