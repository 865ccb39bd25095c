import * as E from "fp-ts/lib/Either.js";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LABEL_ID, LABEL_ID_TO_TRAIN_ID, PROTOCOLS } from "../classes";
import { listDataset } from "../layouts";
import { loadSample } from "../preprocess";
import { makeTempDir } from "../test_tree";
import { CAMERA, GAME, targetDomain } from "./domains";
import { type SynthOptions, synthImage, writeSynth } from "./generate";

let dir = "";
let cleanup = async () => {};

const small = (out: string, seed: number): SynthOptions => ({
  out,
  seed,
  sourceSize: { width: 96, height: 54 },
  targetSize: { width: 64, height: 32 },
  countSource: 3,
  countTrain: 3,
  countVal: 2,
  shift: 1,
});

function filesUnder(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(relative(root, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir("synth-test"));
  for (const [name, seed] of [["a", 5], ["b", 5], ["c", 6]] as const) {
    const r = await writeSynth(small(join(dir, name), seed))();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  }
});
afterAll(() => cleanup());

describe("writeSynth", () => {
  test("the same seed writes byte-identical files", () => {
    const a = filesUnder(join(dir, "a"));
    const b = filesUnder(join(dir, "b"));
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [k, v] of a) expect({ file: k, same: v.equals(b.get(k)!) }).toEqual({ file: k, same: true });
  });

  test("another seed writes different images", () => {
    const a = filesUnder(join(dir, "a"));
    const c = filesUnder(join(dir, "c"));
    expect(a.get(join("gta5", "images", "00001.png"))!.equals(c.get(join("gta5", "images", "00001.png"))!)).toBe(false);
  });

  test("writes the GTA5 layout for the source and the Cityscapes layout for the target", () => {
    const names = [...filesUnder(join(dir, "a")).keys()].sort();
    expect(names).toContain(join("gta5", "images", "00003.png"));
    expect(names).toContain(join("gta5", "labels", "00003.png"));
    expect(names).toContain(join("cityscapes", "leftImg8bit", "train", "northbrook", "northbrook_000000_000019_leftImg8bit.png"));
    expect(names).toContain(join("cityscapes", "gtFine", "val", "lakemont", "lakemont_000000_000019_gtFine_labelIds.png"));
    expect(names).toContain("synth.json");
    expect(names.length).toBe(2 * 3 + 2 * 3 + 2 * 2 + 1);
  });

  test("the real loaders read both domains", async () => {
    const src = await listDataset({ kind: "gta5", root: join(dir, "a", "gta5") })();
    const val = await listDataset({ kind: "cityscapes", root: join(dir, "a", "cityscapes"), split: "val", withLabels: true })();
    if (E.isLeft(src) || E.isLeft(val)) throw new Error("listing failed");
    expect(src.right.length).toBe(3);
    expect(val.right.length).toBe(2);
    const s = await loadSample(src.right[0]!, { size: { width: 48, height: 27 }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 })();
    const t = await loadSample(val.right[0]!, { labels: "original-size", protocol: PROTOCOLS.cityscapes19 })();
    expect(E.isRight(s) && s.right.label!.length === 48 * 27).toBe(true);
    expect(E.isRight(t) && t.right.labelWidth === 64 && t.right.labelHeight === 32).toBe(true);
  });
});

describe("synthImage", () => {
  const W = 160;
  const H = 90;
  const source = Array.from({ length: 8 }, (_, i) => synthImage(GAME, { width: W, height: H }, 100 + i));
  const target = Array.from({ length: 8 }, (_, i) => synthImage(CAMERA, { width: W, height: H }, 200 + i));

  test("uses only Cityscapes label ids of the classes drawn, plus the void ids 1 (ego vehicle) and 4 (static)", () => {
    const allowed = new Set<number>([...Object.values(LABEL_ID), 4]);
    for (const im of [...source, ...target]) for (const v of new Set(im.label)) expect(allowed.has(v)).toBe(true);
  });

  test("shares the layout prior: sky on top, road at the bottom centre, in both domains", () => {
    for (const im of [...source, ...target]) {
      expect(im.label[2 * W + W / 2]).toBe(LABEL_ID.sky);
      // a few rows above the bottom (below the hood, if any): road in the middle of the frame
      const bottomRow = Array.from(im.label.subarray((H - 14) * W, (H - 13) * W));
      expect(bottomRow.filter((v) => v === LABEL_ID.road).length).toBeGreaterThan(W / 4);
    }
  });

  test("the ego-vehicle hood is a target-domain trait", () => {
    const hood = (ims: typeof source) => ims.filter((im) => im.label[(H - 1) * W + W / 2] === LABEL_ID.egoVehicle).length;
    expect(hood(source)).toBe(0);
    expect(hood(target)).toBeGreaterThan(0);
  });

  function meanColor(ims: typeof source, labelId: number): number[] {
    const s = [0, 0, 0];
    let n = 0;
    for (const im of ims) {
      im.label.forEach((v, i) => {
        if (v !== labelId) return;
        for (let c = 0; c < 3; c++) s[c]! += im.rgb[3 * i + c]!;
        n++;
      });
    }
    return s.map((v) => v / n);
  }
  const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));

  test("the gap crosses road and sidewalk tones: target road looks like source sidewalk", () => {
    const tRoad = meanColor(target, LABEL_ID.road);
    expect(dist(tRoad, meanColor(source, LABEL_ID.sidewalk))).toBeLessThan(dist(tRoad, meanColor(source, LABEL_ID.road)));
  });

  test("shift 0 has no appearance gap: the target palette is the source palette", () => {
    expect(targetDomain(0).palette).toEqual(GAME.palette);
    expect(targetDomain(1).palette).toEqual(CAMERA.palette);
    expect(targetDomain(0).optics).toEqual(GAME.optics);
  });

  test("labels map to the 19 training classes with a large share of valid pixels", () => {
    for (const im of source) {
      const valid = im.label.reduce((k, v) => k + (LABEL_ID_TO_TRAIN_ID[v] === 255 ? 0 : 1), 0);
      expect(valid / im.label.length).toBeGreaterThan(0.9);
    }
  });
});
