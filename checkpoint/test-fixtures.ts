// Shared by the tests: where the fixtures are and what PyTorch says they contain
// (scripts/make_pth_fixtures.py writes both).

import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DType, Tensor } from "./tensor";

export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixture(name)));
}

export interface ExpectedTensorValues {
  readonly dtype: string;
  readonly shape: number[];
  /** Row-major; float16 as raw bits. */
  readonly values: number[];
}

type Described = Record<string, ExpectedTensorValues>;

export interface Manifest {
  readonly flat: Described;
  readonly init: { readonly file: string; readonly sha256: string; readonly tensors: Described };
  readonly nested: Described;
  readonly advent_d: Described;
}

export const manifest: Manifest = JSON.parse(readFileSync(fixture("expected.json"), "utf8")) as Manifest;

const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  int64: "I64",
  int32: "I32",
  uint8: "U8",
};

export function torchDType(name: string): DType {
  const d = TORCH_DTYPES[name];
  if (d === undefined) throw new Error(`fixture dtype ${name} has no mapping`);
  return d;
}

/** Plain numbers for comparison with expected.json (int64 values there are small). */
export function values(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), "ckpt-test-"));
}
