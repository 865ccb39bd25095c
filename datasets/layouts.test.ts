import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LABEL_ID_PALETTE, PROTOCOLS } from "./classes";
import { describeDataError } from "./errors";
import { type DatasetSpec, type SampleRef, listDataset } from "./layouts";
import { encodePng } from "./png";
import { type LoadOptions, type Sample, drawAugment, loadSample } from "./preprocess";
import { makeTempDir, writeFileDeep, writeGradientImage } from "./test_tree";

let root = "";
let cleanup = async () => {};

// A 4x2 label with one pixel per value; each dataset test writes the values its coding uses.
const W = 4;
const H = 2;

async function writePaletteLabel(path: string, values: readonly number[]): Promise<void> {
  await writeFileDeep(
    path,
    encodePng({ width: W, height: H, colorType: "palette", bitDepth: 8, samples: Uint8Array.from(values), palette: LABEL_ID_PALETTE }),
  );
}

async function writeGrayLabel(path: string, values: readonly number[]): Promise<void> {
  await writeFileDeep(path, encodePng({ width: W, height: H, colorType: "gray", bitDepth: 8, samples: Uint8Array.from(values) }));
}

/** SYNTHIA labels: 16-bit RGBA, class id in R, instance id in G (which must be ignored). */
async function writeSynthiaLabel(path: string, ids: readonly number[]): Promise<void> {
  const samples = new Uint16Array(W * H * 4);
  ids.forEach((id, i) => samples.set([id, 1000 + i, 0, 65535], 4 * i));
  await writeFileDeep(path, encodePng({ width: W, height: H, colorType: "rgba", bitDepth: 16, samples }));
}

async function listOk(spec: DatasetSpec): Promise<SampleRef[]> {
  const r = await listDataset(spec)();
  if (E.isLeft(r)) throw new Error(describeDataError(r.left));
  return r.right;
}

async function loadOk(ref: SampleRef, opts: LoadOptions): Promise<Sample> {
  const r = await loadSample(ref, opts)();
  if (E.isLeft(r)) throw new Error(describeDataError(r.left));
  return r.right;
}

const ORIGINAL: Omit<LoadOptions, "protocol"> = { labels: "original-size" };

beforeAll(async () => {
  ({ dir: root, cleanup } = await makeTempDir("layouts-test"));
  // GTA5: two frames, one with a missing label, one with a corrupt label.
  for (const n of ["00001", "00002", "00003", "00004"]) await writeGradientImage(join(root, "gta5", "images", `${n}.png`), W, H);
  await writePaletteLabel(join(root, "gta5", "labels", "00001.png"), [7, 8, 26, 0, 1, 33, 34, 255]);
  await writePaletteLabel(join(root, "gta5", "labels", "00002.png"), [7, 7, 7, 7, 23, 23, 23, 23]);
  await writeFileDeep(join(root, "gta5", "labels", "00004.png"), "this is not a png");
  // Cityscapes: two cities in train, one in val, labels in gtFine.
  const cs = join(root, "cityscapes");
  for (const [split, city, key] of [
    ["train", "aachen", "aachen_000000_000019"],
    ["train", "aachen", "aachen_000001_000019"],
    ["train", "bremen", "bremen_000000_000019"],
    ["val", "lindau", "lindau_000000_000019"],
  ] as const) {
    await writeGradientImage(join(cs, "leftImg8bit", split, city, `${key}_leftImg8bit.png`), W, H);
    await writeGrayLabel(join(cs, "gtFine", split, city, `${key}_gtFine_labelIds.png`), [11, 12, 13, 17, 19, 20, 21, 22]);
  }
  await writeFileDeep(join(cs, "list", "train.txt"), "bremen/bremen_000000_000019_leftImg8bit.png\naachen/aachen_000001_000019_leftImg8bit.png\n");
  // SYNTHIA-RAND-CITYSCAPES
  await writeGradientImage(join(root, "synthia", "RGB", "0000000.png"), W, H);
  await writeSynthiaLabel(join(root, "synthia", "GT", "LABELS", "0000000.png"), [3, 4, 2, 21, 9, 22, 0, 11]);
  // NTHU Cross-City
  await writeGradientImage(join(root, "crosscity", "Rome", "Images", "Train", "pic_001.png"), W, H);
  await writeGradientImage(join(root, "crosscity", "Rome", "Images", "Test", "pic_101.png"), W, H);
  await writeGrayLabel(join(root, "crosscity", "Rome", "Labels", "Test", "pic_101_eval.png"), [0, 3, 5, 6, 9, 12, 255, 13]);
});
afterAll(() => cleanup());

describe("GTA5 layout", () => {
  test("lists images/ in order with labels/ beside them", async () => {
    const refs = await listOk({ kind: "gta5", root: join(root, "gta5") });
    expect(refs.map((r) => r.name)).toEqual(["00001.png", "00002.png", "00003.png", "00004.png"]);
    expect(refs[0]!.labelPath).toBe(join(root, "gta5", "labels", "00001.png"));
  });

  test("palette label ids become trainIds (void ids and 34 -> 255)", async () => {
    const [ref] = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const s = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 });
    expect(Array.from(s.label!)).toEqual([0, 1, 13, 255, 255, 18, 255, 255]);
    expect(s.image.length).toBe(3 * W * H);
  });

  test("resized to the preset: bicubic image, nearest label at the same size", async () => {
    const refs = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const s = await loadOk(refs[1]!, { size: { width: 8, height: 4 }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 });
    expect([s.width, s.height, s.labelWidth, s.labelHeight, s.image.length]).toEqual([8, 4, 8, 4, 3 * 32]);
    expect(Array.from(s.label!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
  });

  test("a missing label is an error naming the label file", async () => {
    const refs = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const r = await loadSample(refs[2]!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 })();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(root, "gta5", "labels", "00003.png") }));
  });

  test("a corrupt label is an error naming the label file", async () => {
    const refs = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const r = await loadSample(refs[3]!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 })();
    expect(E.isLeft(r) && r.left.kind === "corrupt-file" && r.left.path === join(root, "gta5", "labels", "00004.png")).toBe(true);
  });

  test("a root without images/ is an error naming the folder", async () => {
    const r = await listDataset({ kind: "gta5", root: join(root, "nowhere") })();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(root, "nowhere", "images") }));
  });
});

describe("Cityscapes layout", () => {
  test("lists leftImg8bit/<split>/<city>/ by city then name; gtFine labelIds beside", async () => {
    const refs = await listOk({ kind: "cityscapes", root: join(root, "cityscapes"), split: "train", withLabels: true });
    expect(refs.map((r) => r.name)).toEqual([
      "aachen/aachen_000000_000019_leftImg8bit.png",
      "aachen/aachen_000001_000019_leftImg8bit.png",
      "bremen/bremen_000000_000019_leftImg8bit.png",
    ]);
    expect(refs[2]!.labelPath).toBe(join(root, "cityscapes", "gtFine", "train", "bremen", "bremen_000000_000019_gtFine_labelIds.png"));
  });

  test("target training reads no labels", async () => {
    const refs = await listOk({ kind: "cityscapes", root: join(root, "cityscapes"), split: "train", withLabels: false });
    const s = await loadOk(refs[0]!, { size: { width: 2, height: 1 }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 });
    expect(s.label).toBeUndefined();
    expect(s.image.length).toBe(6);
  });

  test("an official list file gives the order", async () => {
    const refs = await listOk({
      kind: "cityscapes",
      root: join(root, "cityscapes"),
      split: "train",
      withLabels: false,
      listFile: join(root, "cityscapes", "list", "train.txt"),
    });
    expect(refs.map((r) => r.name)).toEqual(["bremen/bremen_000000_000019_leftImg8bit.png", "aachen/aachen_000001_000019_leftImg8bit.png"]);
  });

  test("val labels map class by class", async () => {
    const [ref] = await listOk({ kind: "cityscapes", root: join(root, "cityscapes"), split: "val", withLabels: true });
    const s = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 });
    expect(Array.from(s.label!)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    const s13 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.common13 });
    expect(Array.from(s13.label!)).toEqual([2, 255, 255, 255, 3, 4, 5, 255]);
  });

  test("a missing split is an error naming the folder", async () => {
    const r = await listDataset({ kind: "cityscapes", root: join(root, "cityscapes"), split: "test", withLabels: false })();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(root, "cityscapes", "leftImg8bit", "test") }));
  });
});

describe("SYNTHIA-RAND-CITYSCAPES layout", () => {
  test("16-bit labels: R holds the SYNTHIA id; 16 and 13-class protocols", async () => {
    const [ref] = await listOk({ kind: "synthia", root: join(root, "synthia") });
    expect(ref!.labelPath).toBe(join(root, "synthia", "GT", "LABELS", "0000000.png"));
    // ids road 3, sidewalk 4, building 2, wall 21, sign 9, lanemarking 22 (no class), void 0, bicycle 11
    const s19 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 });
    expect(Array.from(s19.label!)).toEqual([0, 1, 2, 3, 7, 255, 255, 18]);
    const s16 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.synthia16 });
    expect(Array.from(s16.label!)).toEqual([0, 1, 2, 3, 7, 255, 255, 15]);
    const s13 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.common13 });
    expect(Array.from(s13.label!)).toEqual([0, 1, 2, 255, 4, 255, 255, 12]);
  });
});

describe("NTHU Cross-City layout", () => {
  test("Train has images only", async () => {
    const refs = await listOk({ kind: "crosscity", root: join(root, "crosscity"), city: "Rome", split: "Train" });
    expect(refs.map((r) => [r.name, r.labelPath])).toEqual([["Rome/pic_001.png", undefined]]);
  });

  test("Test labels are 13-class indices already; in 19 classes they become trainIds", async () => {
    const [ref] = await listOk({ kind: "crosscity", root: join(root, "crosscity"), city: "Rome", split: "Test" });
    expect(ref!.labelPath).toBe(join(root, "crosscity", "Rome", "Labels", "Test", "pic_101_eval.png"));
    const s13 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.common13 });
    expect(Array.from(s13.label!)).toEqual([0, 3, 5, 6, 9, 12, 255, 255]);
    const s19 = await loadOk(ref!, { ...ORIGINAL, protocol: PROTOCOLS.cityscapes19 });
    expect(Array.from(s19.label!)).toEqual([0, 6, 8, 10, 13, 18, 255, 255]);
  });

  test("a city that is not there is an error naming its folder", async () => {
    const r = await listDataset({ kind: "crosscity", root: join(root, "crosscity"), city: "Tokyo", split: "Test" })();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(root, "crosscity", "Tokyo", "Images", "Test") }));
  });
});

describe("augmentation (off by default, as the official code)", () => {
  test("no policy draws the identity", () => {
    expect(drawAugment({ mirror: false }, 1, 5)).toEqual({ mirror: false, scale: 1, offsetX: 0.5, offsetY: 0.5 });
  });

  test("draws depend only on (seed, position)", () => {
    const p = { mirror: true, scale: [0.5, 1.5] as const };
    expect(drawAugment(p, 3, 10)).toEqual(drawAugment(p, 3, 10));
    const draws = Array.from({ length: 40 }, (_, i) => drawAugment(p, 3, i));
    expect(new Set(draws.map((d) => d.mirror)).size).toBe(2);
    expect(draws.every((d) => d.scale >= 0.5 && d.scale < 1.5)).toBe(true);
  });

  test("mirror flips image and label together", async () => {
    const [ref] = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const opts: LoadOptions = { size: { width: W, height: H }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 };
    const plain = await loadOk(ref!, opts);
    const flipped = await loadOk(ref!, { ...opts, augment: { mirror: true, scale: 1, offsetX: 0, offsetY: 0 } });
    // rows before: [0, 1, 13, 255] and [255, 18, 255, 255]
    expect(Array.from(flipped.label!)).toEqual([255, 13, 1, 0, 255, 255, 18, 255]);
    expect(flipped.image[0]).toBe(plain.image[W - 1]);
  });

  test("scaling down pads the label with 255 and keeps the input size", async () => {
    const [ref] = await listOk({ kind: "gta5", root: join(root, "gta5") });
    const s = await loadOk(ref!, {
      size: { width: W, height: H },
      labels: "input-size",
      protocol: PROTOCOLS.cityscapes19,
      augment: { mirror: false, scale: 0.5, offsetX: 0, offsetY: 0 },
    });
    expect([s.width, s.height, s.label!.length]).toEqual([W, H, W * H]);
    // offset 0 puts the 2x1 scaled sample at the top-left; the rest is padding
    expect(s.label![W]).toBe(255);
    expect(s.label!.filter((v) => v === 255).length).toBeGreaterThanOrEqual(6);
    // padded pixels are the mean color: zero after mean subtraction (up to uint8 rounding)
    for (let c = 0; c < 3; c++) expect(Math.abs(s.image[c * W * H + W * H - 1]!)).toBeLessThan(1);
  });
});
