import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError } from "./errors";
import type { StateDict } from "./tensor";
import { checkStateDict, compareStateDict, parseExpectedTable, type ExpectedTable } from "./validate";

const dict: StateDict = new Map([
  ["conv1.weight", { dtype: "F32", shape: [64, 3, 7, 7], data: new Float32Array(64 * 3 * 49) }],
  ["bn1.weight", { dtype: "F32", shape: [64], data: new Float32Array(64) }],
  ["extra.bias", { dtype: "F32", shape: [2], data: new Float32Array(2) }],
  ["bn1.num_batches_tracked", { dtype: "I64", shape: [], data: new BigInt64Array(1) }],
]);

const table: ExpectedTable = new Map([
  ["conv1.weight", { shape: [64, 3, 7, 7], dtype: "F32" as const }],
  ["bn1.weight", { shape: [128] }],
  ["bn1.num_batches_tracked", { shape: [], dtype: "F32" as const }],
  ["layer6.conv2d_list.0.bias", { shape: [19] }],
]);

describe("state-dict validation", () => {
  it("reports missing keys, unexpected keys, wrong shapes and wrong dtypes by name", () => {
    const r = compareStateDict(dict, table);
    expect(r.missing).toEqual(["layer6.conv2d_list.0.bias"]);
    expect(r.unexpected).toEqual(["extra.bias"]);
    expect(r.shapeMismatches).toEqual([{ key: "bn1.weight", expected: [128], actual: [64] }]);
    expect(r.dtypeMismatches).toEqual([{ key: "bn1.num_batches_tracked", expected: "F32", actual: "I64" }]);
  });

  it("fails strictly with a message naming every offending tensor", () => {
    const r = checkStateDict("G.safetensors", dict, table);
    expect(E.isLeft(r)).toBe(true);
    if (E.isRight(r)) return;
    const msg = renderCheckpointError(r.left);
    expect(msg).toContain("G.safetensors");
    expect(msg).toContain("tensor bn1.weight has shape [64], expected [128]");
    expect(msg).toContain("missing 1 key: layer6.conv2d_list.0.bias");
    expect(msg).toContain("unexpected 1 key: extra.bias");
  });

  it("names the tensor in the error when it is the only culprit", () => {
    const one: ExpectedTable = new Map([...table].filter(([k]) => k !== "bn1.num_batches_tracked"));
    const r = checkStateDict("x", dict, one, { allowMissing: true, allowUnexpected: true });
    expect(E.isLeft(r) && r.left.tensor).toBe("bn1.weight");
  });

  it("accepts missing and unexpected keys when the policy allows them, never wrong shapes", () => {
    const exact: ExpectedTable = new Map([["conv1.weight", { shape: [64, 3, 7, 7] }], ["absent", { shape: [1] }]]);
    expect(E.isRight(checkStateDict("x", dict, exact, { allowMissing: true, allowUnexpected: true }))).toBe(true);
    expect(E.isLeft(checkStateDict("x", dict, exact, { allowMissing: false, allowUnexpected: true }))).toBe(true);
  });

  it("parses {key: [dims]} and {key: {shape, dtype}} tables", () => {
    const r = parseExpectedTable("shapes.json", { "conv1.weight": [64, 3, 7, 7], "bn1.num_batches_tracked": { shape: [], dtype: "I64" } });
    expect(E.isRight(r) && [...r.right]).toEqual([
      ["conv1.weight", { shape: [64, 3, 7, 7] }],
      ["bn1.num_batches_tracked", { shape: [], dtype: "I64" }],
    ]);
  });

  it("refuses a malformed table entry, naming the key and the file", () => {
    const r = parseExpectedTable("shapes.json", { "conv1.weight": [64, -3] });
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toMatch(/shapes\.json: conv1\.weight/);
  });
});
