import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { checkGroupNames, readCheckpoint, writeCheckpoint } from "./bundle";
import { readSafetensors, writeSafetensors } from "./safetensors";
import { scratchDir, values } from "./test-fixtures";
import type { Tensor } from "./tensor";

const f32 = (...xs: number[]): Tensor => ({ dtype: "F32", shape: [xs.length], data: new Float32Array(xs) });

describe("trainer checkpoints", () => {
  it("round-trips groups (dotted names included) and JSON metadata", async () => {
    const path = join(scratchDir(), "iter_5000.safetensors");
    const groups = {
      G: new Map([["conv1.weight", f32(1, 2)], ["layer6.conv2d_list.0.bias", f32(3)]]),
      D1: new Map([["conv1.weight", f32(4)]]),
      D2: new Map([["conv1.weight", f32(5)]]),
      "opt.G.momentum": new Map([["conv1.weight", f32(6, 7)]]),
      "opt.D1.exp_avg": new Map<string, Tensor>(),
    };
    const metadata = { iteration: 5000, rng: { state: [1, 2, 3], inc: "0x5" }, config: { lr: 2.5e-4 } };
    expect(E.isRight(await writeCheckpoint(path, { groups, metadata })())).toBe(true);

    const back = await readCheckpoint(path)();
    expect(E.isRight(back)).toBe(true);
    if (E.isLeft(back)) return;
    expect(Object.keys(back.right.groups).sort()).toEqual(Object.keys(groups).sort());
    expect(values(back.right.groups["opt.G.momentum"]!.get("conv1.weight")!)).toEqual([6, 7]);
    expect(values(back.right.groups.G!.get("layer6.conv2d_list.0.bias")!)).toEqual([3]);
    expect(back.right.groups["opt.D1.exp_avg"]!.size).toBe(0);
    expect(back.right.metadata).toEqual(metadata);
  });

  it("stores each group under its prefix, so the file is a plain safetensors file", async () => {
    const path = join(scratchDir(), "c.safetensors");
    await writeCheckpoint(path, { groups: { G: new Map([["w", f32(1)]]), "opt.G.momentum": new Map([["w", f32(2)]]) }, metadata: { iteration: 1 } })();
    const raw = await readSafetensors(path)();
    expect(E.isRight(raw) && [...raw.right.tensors.keys()]).toEqual(["G.w", "opt.G.momentum.w"]);
    expect(E.isRight(raw) && raw.right.metadata.iteration).toBe("1");
  });

  it("refuses group names whose keys would be ambiguous", async () => {
    expect(checkGroupNames(["opt.G", "opt.G.momentum"])).toMatch(/prefix/);
    expect(checkGroupNames(["G."])).toMatch(/invalid group name/);
    const r = await writeCheckpoint(join(scratchDir(), "x.safetensors"), { groups: { opt: new Map(), "opt.G": new Map() }, metadata: {} })();
    expect(E.isLeft(r) && r.left.kind).toBe("mismatch");
  });

  it("refuses reserved metadata keys", async () => {
    const r = await writeCheckpoint(join(scratchDir(), "x.safetensors"), { groups: {}, metadata: { "checkpoint.groups": 1 } })();
    expect(E.isLeft(r) && r.left.detail).toMatch(/reserved/);
  });

  it("refuses to read a safetensors file that is not a trainer checkpoint", async () => {
    const path = join(scratchDir(), "weights.safetensors");
    await writeSafetensors(path, { tensors: new Map([["w", f32(1)]]), metadata: {} })();
    const r = await readCheckpoint(path)();
    expect(E.isLeft(r) && r.left.detail).toMatch(/not a trainer checkpoint/);
  });

  it("names a tensor that belongs to no recorded group", async () => {
    const path = join(scratchDir(), "odd.safetensors");
    const metadata = { "checkpoint.format": "adaptsegnet-checkpoint/1", "checkpoint.groups": JSON.stringify(["G"]) };
    await writeSafetensors(path, { tensors: new Map([["G.w", f32(1)], ["X.w", f32(2)]]), metadata })();
    const r = await readCheckpoint(path)();
    expect(E.isLeft(r) && r.left.tensor).toBe("X.w");
  });
});
