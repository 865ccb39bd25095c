// Tile candidates of the CPU variants (format/module.ts, TileSpec; templates/tiling.ts): every
// candidate of a use must give the same bits, since the tuner (runtime/tune.ts) picks among them
// by speed alone. Each program below runs on lavapipe once per candidate row count, with every
// tiled use forced to it, and the outputs are compared bit for bit.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Tensor } from "../dsl/index";
import type { GeneratedModule, KernelVariant } from "../format/module";
import { instantiate } from "../runtime/runner";
import { chooseVariant } from "../runtime/check-module";
import { chooseTile, tuneKey } from "../runtime/tune";
import { compileProgram } from "./compile";
import { CPU_TILE_CANDIDATES } from "./wgsl/templates/tiling";
import { program } from "./testing/cases";
import { bitMismatch, device, deviceFeatures, rng, uniformF32 } from "./testing/differential";

/** The CPU variants with tile candidates of a module, with their shaders. */
function tiledUses(module: GeneratedModule): { shader: GeneratedModule["shaders"][number]; v: KernelVariant; op: string }[] {
  return module.phases.flatMap((p) =>
    p.dispatches.flatMap((dispatch) => {
      const v = chooseVariant(dispatch, "cpu", new Set(["subgroups"]));
      return E.isRight(v) && v.right.tile !== undefined ? [{ shader: module.shaders[v.right.shader]!, v: v.right, op: dispatch.provenance?.op ?? "" }] : [];
    }),
  );
}

/** Choices running every tiled use with `rows` rows where that is one of its candidates. */
function forced(module: GeneratedModule, rows: number): Map<string, number> {
  return new Map(tiledUses(module).filter((u) => u.v.tile!.candidates.includes(rows)).map((u) => [tuneKey(u.shader, u.v), rows]));
}

/** The outputs of one step of `module` on the CPU variants with the given tile choices. */
async function outputs(module: GeneratedModule, tiles: ReadonlyMap<string, number>, data: ReadonlyMap<string, Float32Array>) {
  const dev = await device();
  const made = await instantiate(dev.device, module, "cpu", { tiles });
  if (E.isLeft(made)) throw new Error(made.left.message);
  const inst = made.right;
  try {
    for (const [name, values] of data) inst.write(name, values);
    inst.step(1);
    const names = module.phases[0]!.outputs;
    const read = await inst.readMany(names);
    return new Map(names.map((n, i) => [n, read[i]!]));
  } finally {
    inst.destroy();
  }
}

/** Random data for every input of a module. */
function inputsOf(module: GeneratedModule, seed: number): Map<string, Float32Array> {
  const r = rng(seed);
  return new Map(module.tensors.filter((t) => t.role === "input").map((t) => [t.name, uniformF32(t.bytes / 4, r)]));
}

/** Runs every candidate row count and expects the bits of the default tile from each. */
async function expectSameBits(outs: Readonly<Record<string, Tensor>>, seed: number): Promise<void> {
  const module = compileProgram(program(outs)).module;
  const uses = tiledUses(module);
  // Not vacuous: there are tiled uses, each with more than one candidate, and 64 rows among them.
  expect(uses.length).toBeGreaterThan(0);
  for (const u of uses) expect(u.v.tile!.candidates.length).toBeGreaterThan(1);
  expect(uses.some((u) => u.v.tile!.candidates.includes(64))).toBe(true);
  const data = inputsOf(module, seed);
  const reference = await outputs(module, new Map(), data);
  const candidates = [...new Set([...CPU_TILE_CANDIDATES, ...uses.flatMap((u) => u.v.tile!.candidates)])];
  for (const rows of candidates) {
    const tiles = forced(module, rows);
    expect(tiles.size).toBeGreaterThan(0);
    const got = await outputs(module, tiles, data);
    for (const [name, ref] of reference) expect(bitMismatch(`${name} with ${rows}-row tiles`, got.get(name), ref)).toBeUndefined();
  }
}

describe("tile candidates of the CPU variants", async () => {
  const subgroups = (await deviceFeatures()).has("subgroups");

  it("choosing a tile sets its rows and the grid along its axis", () => {
    const a = d.input("a", [100, 36], "f32") as F32<2>;
    const b = d.input("b", [36, 40], "f32") as F32<2>;
    const module = compileProgram(program({ c: d.matmul(a, b) })).module;
    const [u] = tiledUses(module);
    // 64 rows would leave 4 workgroups (2 x 2), fewer than MIN_CPU_WORKGROUPS: not a candidate.
    expect(u?.v.tile).toMatchObject({ axis: 1, extent: 100, rows: 32, candidates: [16, 32] });
    const chosen = chooseTile(u!.shader, u!.v, new Map([[tuneKey(u!.shader, u!.v), 16]]));
    expect(chosen.tile?.rows).toBe(16);
    expect(chosen.workgroups[1]).toBe(Math.ceil(100 / 16));
    // A choice that is not a candidate is ignored: the default runs.
    expect(chooseTile(u!.shader, u!.v, new Map([[tuneKey(u!.shader, u!.v), 48]]))).toBe(u!.v);
  });

  it.runIf(subgroups)("a matmul (K a multiple of 4, and not) gives the same bits with every tile", async () => {
    // 520 x 256: 9 x 8 workgroups of 64 rows, so every candidate runs (520 is not a multiple of 64).
    const a = d.input("a", [520, 36], "f32") as F32<2>;
    const b = d.input("b", [36, 256], "f32") as F32<2>;
    const a2 = d.input("a2", [520, 37], "f32") as F32<2>;
    const b2 = d.input("b2", [37, 256], "f32") as F32<2>;
    await expectSameBits({ c: d.matmul(a, b), c2: d.relu(d.matmul(a2, b2)) }, 81);
  });

  it.runIf(subgroups)("a convolution with bias, its input and weight gradients give the same bits with every tile", async () => {
    // (The weight gradient's candidates are 32 and 64 out-channels per subgroup.)
    // 2 x 48 x 48 pixels: enough workgroups for 64-pixel tiles in the forward and input gradient.
    const x = d.input("x", [2, 8, 48, 48], "f32") as F32<4>;
    // 40 out-channels: 10 vec4s, more than a subgroup's 8, so the weight gradient is tiled too.
    const w = d.input("w", [40, 8, 3, 3], "f32") as F32<4>;
    const bias = d.input("b", [40], "f32") as F32<1>;
    const y = d.conv2d(x, w, bias, { padding: 1 });
    const dy = d.input("dy", y.shape, "f32") as F32<4>;
    const [dx, dw] = d.vjp([y], [dy], [x, w]);
    // A strided, dilated one too: the input gradient's phases and tap tables.
    const x2 = d.input("x2", [1, 4, 13, 13], "f32") as F32<4>;
    const w2 = d.input("w2", [8, 4, 3, 3], "f32") as F32<4>;
    const y2 = d.conv2d(x2, w2, undefined, { stride: 2, padding: 2, dilation: 2 });
    const dy2 = d.input("dy2", y2.shape, "f32") as F32<4>;
    const [dx2] = d.vjp([y2], [dy2], [x2]);
    const outs = { y, dx: dx!, dw: dw!, y2, dx2: dx2! };
    const templates = tiledUses(compileProgram(program(outs)).module).map((u) => u.op);
    expect(new Set(templates)).toEqual(new Set(["conv2d", "conv2dInputGrad", "conv2dWeightGrad"]));
    await expectSameBits(outs, 82);
  });
});
