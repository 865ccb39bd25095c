import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import type { Dispatch } from "../format/module";
import { SUBGROUP_LANES } from "../format/module";
import { chooseVariant, usableFeatures } from "./check-module";

// A dispatch as codegen emits it for a CPU-tuned kernel: the subgroup variant first, the portable one after.
const dispatch: Dispatch = {
  name: "conv",
  bindings: [],
  variants: [
    { adapter: "cpu", features: ["subgroups"], shader: 0, workgroups: [1, 1, 1] },
    { shader: 1, workgroups: [4, 1, 1] },
  ],
} as unknown as Dispatch;

const chosenShader = (features: ReadonlySet<string>) => {
  const v = chooseVariant(dispatch, "cpu", features);
  if (E.isLeft(v)) throw new Error(v.left.message);
  return v.right.shader;
};

describe("kernel variants follow the device's real subgroup size", () => {
  it("lavapipe (subgroups of 8 lanes) runs the subgroup variant", () => {
    expect(chosenShader(usableFeatures(["subgroups"], { subgroupMinSize: 8, subgroupMaxSize: 8 }))).toBe(0);
  });

  it("SwiftShader (subgroups of 4 lanes, narrower than SUBGROUP_LANES) runs the portable variant", () => {
    expect(SUBGROUP_LANES).toBe(8);
    expect(chosenShader(usableFeatures(["subgroups", "timestamp-query"], { subgroupMinSize: 4, subgroupMaxSize: 4 }))).toBe(1);
  });

  it("subgroups that may be narrower than 8 (min 4, max 32) are refused", () => {
    expect(usableFeatures(["subgroups"], { subgroupMinSize: 4, subgroupMaxSize: 32 }).has("subgroups")).toBe(false);
  });

  it("wider subgroups hold the whole 8-invocation workgroup", () => {
    expect(usableFeatures(["subgroups"], { subgroupMinSize: 32, subgroupMaxSize: 64 }).has("subgroups")).toBe(true);
  });

  it("a device that does not report its subgroup sizes gets the portable variants", () => {
    expect(chosenShader(usableFeatures(["subgroups"], undefined))).toBe(1);
    expect(chosenShader(usableFeatures(["subgroups"], {}))).toBe(1);
  });

  it("other features pass through untouched", () => {
    expect([...usableFeatures(["timestamp-query", "subgroups"], { subgroupMinSize: 4 })]).toEqual(["timestamp-query"]);
  });
});
