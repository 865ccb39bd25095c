import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import { describeDataError } from "../datasets/errors";
import { encodePng } from "../datasets/png";
import { makeTempDir, writeFileDeep } from "../datasets/test_tree";
import { formatPercent } from "./confusion";
import { type FolderScore, type ScoreOptions, frameKey, scoreFolders } from "./score_folders";

const TREE = fileURLToPath(new URL("./fixtures/tree", import.meta.url));
const expected = JSON.parse(readFileSync(join(TREE, "expected.json"), "utf8")) as {
  hist: number[][];
  iou: (number | null)[];
  mIoU: number;
  mIoURounded: string;
  scored: number;
  skipped: string[];
};

async function scoreOk(opts: ScoreOptions): Promise<FolderScore> {
  const r = await scoreFolders(opts)();
  if (E.isLeft(r)) throw new Error(describeDataError(r.left));
  return r.right;
}

describe("frameKey pairs labels with predictions", () => {
  test.each([
    ["frankfurt_000000_000294_gtFine_labelIds.png", "frankfurt_000000_000294"],
    ["frankfurt_000000_000294_leftImg8bit.png", "frankfurt_000000_000294"],
    ["pic_101_eval.png", "pic_101"],
    ["pic_101.png", "pic_101"],
    ["00042.png", "00042"],
  ])("%s -> %s", (name, key) => expect(frameKey(name)).toBe(key));
});

describe("scoreFolders on the fixture tree (Pillow-written PNGs, NumPy-scored)", () => {
  const opts: ScoreOptions = {
    predDir: join(TREE, "pred"),
    gtDir: join(TREE, "gtFine", "val"),
    protocol: PROTOCOLS.cityscapes19,
    gtFormat: "labelid",
    predFormat: "trainid",
  };

  test("confusion matrix, IoUs and mIoU are exactly NumPy's", async () => {
    const s = await scoreOk(opts);
    expect(Array.from(s.confusion.hist)).toEqual(expected.hist.flat());
    expect(Array.from(s.iou, (v) => (Number.isNaN(v) ? null : v))).toEqual(expected.iou);
    expect(s.miou).toBe(expected.mIoU);
    expect(formatPercent(s.miou)).toBe(expected.mIoURounded);
  });

  test("a size mismatch is skipped and counted, and the _color.png files are not scored", async () => {
    const s = await scoreOk(opts);
    expect(s.scored).toBe(expected.scored);
    expect(s.skipped.map((k) => frameKey(k.label.split("/").pop()!))).toEqual(expected.skipped);
    expect(s.skipped[0]!.reason).toMatch(/size mismatch: label 32x16, prediction 16x16/);
  });
});

describe("scoreFolders errors and formats", () => {
  let dir = "";
  let cleanup = async () => {};
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir("score-test"));
    const gray = (values: number[]) => encodePng({ width: 2, height: 2, colorType: "gray", bitDepth: 8, samples: Uint8Array.from(values) });
    // trainId labels and 19-class predictions: road, sidewalk, wall, sky
    await writeFileDeep(join(dir, "gt", "a.png"), gray([0, 1, 3, 10]));
    await writeFileDeep(join(dir, "pred", "a.png"), gray([0, 0, 3, 10]));
    await writeFileDeep(join(dir, "gt2", "a.png"), gray([0, 1, 3, 10]));
    await writeFileDeep(join(dir, "gt2", "b.png"), gray([0, 0, 0, 0]));
  });
  afterAll(() => cleanup());

  test("13-class protocol: wall is not a class of it and its gt pixels are ignored", async () => {
    const s = await scoreOk({
      predDir: join(dir, "pred"),
      gtDir: join(dir, "gt"),
      protocol: PROTOCOLS.common13,
      gtFormat: "trainid",
      predFormat: "trainid",
    });
    // road: tp 1, row 1, col 2 -> 1/2; sidewalk: row 1, tp 0 -> 0; sky: 1; others NaN
    expect([s.iou[0], s.iou[1], s.iou[6]]).toEqual([0.5, 0, 1]);
    expect(formatPercent(s.miou)).toBe("50.00");
  });

  test("a label without a prediction is an error naming the label file", async () => {
    const r = await scoreFolders({
      predDir: join(dir, "pred"),
      gtDir: join(dir, "gt2"),
      protocol: PROTOCOLS.cityscapes19,
      gtFormat: "trainid",
      predFormat: "trainid",
    })();
    expect(E.isLeft(r) && describeDataError(r.left)).toMatch(new RegExp(`no prediction for frame b \\(label ${join(dir, "gt2", "b.png")}\\)`));
  });

  test("every prediction of the wrong size is an error saying so, not a nan mIoU", async () => {
    await writeFileDeep(join(dir, "small", "a.png"), encodePng({ width: 1, height: 1, colorType: "gray", bitDepth: 8, samples: Uint8Array.of(0) }));
    const r = await scoreFolders({ predDir: join(dir, "small"), gtDir: join(dir, "gt"), protocol: PROTOCOLS.cityscapes19, gtFormat: "trainid", predFormat: "trainid" })();
    expect(E.isLeft(r) && describeDataError(r.left)).toMatch(/nothing to score: every prediction \(1\) had the wrong size.*a\.png: size mismatch: label 2x2, prediction 1x1/);
  });

  test("predictions none of which matches a label are an error saying so", async () => {
    await writeFileDeep(join(dir, "other", "zzz.png"), encodePng({ width: 2, height: 2, colorType: "gray", bitDepth: 8, samples: new Uint8Array(4) }));
    const r = await scoreFolders({ predDir: join(dir, "other"), gtDir: join(dir, "gt"), protocol: PROTOCOLS.cityscapes19, gtFormat: "trainid", predFormat: "trainid" })();
    expect(E.isLeft(r) && describeDataError(r.left)).toMatch(/no prediction matched any of the 1 label file\(s\)/);
  });

  test("a missing gt folder is an error naming it", async () => {
    const r = await scoreFolders({
      predDir: join(dir, "pred"),
      gtDir: join(dir, "nope"),
      protocol: PROTOCOLS.cityscapes19,
      gtFormat: "labelid",
      predFormat: "trainid",
    })();
    expect(r).toEqual(E.left({ kind: "missing-file", path: join(dir, "nope") }));
  });

  test("no label files of the expected kind is an error", async () => {
    const r = await scoreFolders({
      predDir: join(dir, "pred"),
      gtDir: join(dir, "gt"),
      protocol: PROTOCOLS.cityscapes19,
      gtFormat: "labelid",
      predFormat: "trainid",
    })();
    expect(E.isLeft(r) && describeDataError(r.left)).toMatch(/no label files found/);
  });
});
