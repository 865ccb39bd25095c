// Exact signatures: a set of weights fits a program only when it holds exactly the program's
// tensors for that model (every key, no other key, each at its shape and dtype), and every value
// is finite. This is what makes a printed mIoU trustworthy: a file that covers 1 of 101 tensors,
// or a four-branch ADVENT head scored by a two-branch program, or a file of NaNs, is refused with
// the first offending tensor named, instead of being scored with whatever the program had.
//
// The few legitimate exceptions are explicit values (`Exemption`), each with the reason printed
// in the log: the DeepLab init file and torchvision's ImageNet MobileNetV2 have no trained
// heads (the official script leaves them at their random initialisation), and nothing else is
// exempt.

import * as E from "fp-ts/lib/Either.js";
import type { ExpectedTable } from "../checkpoint/validate.js";
import { listNames } from "../checkpoint/validate.js";
import { showShape, type StateDict, type Tensor } from "../checkpoint/tensor.js";
import { trainError, type TrainError } from "./errors.js";

/** Keys a file may lack, and why (printed). */
export interface Exemption {
  readonly applies: (key: string) => boolean;
  readonly why: string;
}

/** The heads (ASPP classifiers) of DeepLab: what the init file does not provide. */
export const INIT_HEADS: Exemption = {
  applies: (key) => /^(layer5|layer6|classifier)\./.test(key),
  why: "the DeepLab init file carries no head for these classes; the heads start from their initialisation, as in the official script",
};

/** The heads of DeepLab-MobileNetV2: what torchvision's ImageNet mobilenet_v2 file does not provide. */
export const MOBILENET_HEADS: Exemption = {
  applies: (key) => /^(classifier|aux_classifier)\./.test(key),
  why: "torchvision's ImageNet mobilenet_v2 carries the backbone only; the segmentation heads start from their initialisation",
};

/** The keys a backbone file read through import rule `rule` may lack, if any. */
export function headExemption(rule: string | undefined): Exemption | undefined {
  return rule === "init" ? INIT_HEADS : rule === "mobilenet" ? MOBILENET_HEADS : undefined;
}

/** Named tensors with shapes (a state dict, or a program's table). */
export type Described = ReadonlyMap<string, { readonly shape: readonly number[]; readonly dtype?: string }>;

/** The first way `dict` differs from `table`, in the order a reader checks: shape, dtype, missing, unexpected. */
export type Difference =
  | { readonly kind: "shape"; readonly key: string; readonly expected: readonly number[]; readonly actual: readonly number[] }
  | { readonly kind: "dtype"; readonly key: string; readonly expected: string; readonly actual: string }
  | { readonly kind: "missing"; readonly key: string; readonly count: number }
  | { readonly kind: "unexpected"; readonly key: string; readonly count: number };

export function describeDifference(d: Difference): string {
  switch (d.kind) {
    case "shape":
      return `tensor ${d.key} has shape ${showShape(d.actual)}, the program's is ${showShape(d.expected)}`;
    case "dtype":
      return `tensor ${d.key} has dtype ${d.actual}, the program's is ${d.expected}`;
    case "missing":
      return `tensor ${d.key} is missing${d.count > 1 ? ` (and ${d.count - 1} more of the program's tensors)` : ""}`;
    case "unexpected":
      return `tensor ${d.key} is not in the program${d.count > 1 ? ` (and ${d.count - 1} more of the file's tensors)` : ""}`;
    default: {
      const never: never = d;
      return never;
    }
  }
}

export interface Coverage {
  /** Keys of the program the file lacks that an exemption allows (they keep their initial values). */
  readonly exempted: readonly string[];
}

/**
 * Every difference between `dict` and `table`, first the ones that break the fit. Table order
 * decides which missing key is named first, so the message names the earliest layer.
 */
export function tensorDifferences(dict: Described, table: ExpectedTable, exemption?: Exemption): { readonly problems: Difference[]; readonly exempted: string[] } {
  const problems: Difference[] = [];
  for (const [key, t] of dict) {
    const want = table.get(key);
    if (want === undefined) continue;
    if (!sameShape(t.shape, want.shape)) problems.push({ kind: "shape", key, expected: want.shape, actual: t.shape });
    else if (want.dtype !== undefined && t.dtype !== undefined && want.dtype !== t.dtype) problems.push({ kind: "dtype", key, expected: want.dtype, actual: t.dtype });
  }
  const absent = [...table.keys()].filter((k) => !dict.has(k));
  const exempted = exemption === undefined ? [] : absent.filter(exemption.applies);
  const missing = absent.filter((k) => !exempted.includes(k));
  if (missing.length > 0) problems.push({ kind: "missing", key: missing[0]!, count: missing.length });
  const unexpected = [...dict.keys()].filter((k) => !table.has(k));
  if (unexpected.length > 0) problems.push({ kind: "unexpected", key: unexpected[0]!, count: unexpected.length });
  return { problems, exempted };
}

/**
 * `dict` (model `model` of `file`) covers `table` exactly, or Left naming the first difference
 * (and how many more there are).
 */
export function coverExactly(file: string, model: string, dict: StateDict, table: ExpectedTable, exemption?: Exemption): E.Either<TrainError, Coverage> {
  const { problems, exempted } = tensorDifferences(dict, table, exemption);
  const first = problems[0];
  if (first === undefined) return E.right({ exempted });
  const more = problems.length > 1 ? `; also ${problems.slice(1).map(describeDifference).join("; ")}` : "";
  return E.left(trainError("checkpoint", `${file} does not fit the program's ${model}: ${describeDifference(first)}${more}`));
}

/** The first non-finite value of a float tensor: its flat index and value. */
function firstNonFinite(t: Tensor): { index: number; value: number } | undefined {
  if (t.dtype !== "F32" && t.dtype !== "F64") return undefined;
  const data = t.data;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is 0 for finite v and NaN for NaN and +-Inf: one subtraction per element.
    if (v - v !== 0) return { index: i, value: v };
  }
  return undefined;
}

/** Every value of every group is finite, or Left naming the tensor, the element and its value. */
export function checkFinite(file: string, groups: Readonly<Record<string, StateDict>>): E.Either<TrainError, void> {
  for (const [model, dict] of Object.entries(groups)) {
    for (const [key, t] of dict) {
      const bad = firstNonFinite(t);
      if (bad !== undefined) {
        return E.left(
          trainError("checkpoint", `${file}: tensor ${key} of ${model} holds ${bad.value} at element ${bad.index} of ${showShape(t.shape)}; weights must be finite`),
        );
      }
    }
  }
  return E.right(undefined);
}

export const exemptionNote = (model: string, keys: readonly string[], e: Exemption): string => `${model}: not in the file, ${e.why}: ${listNames(keys, 6)}`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
