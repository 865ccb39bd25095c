// A label stored at another size than its image is refused by name, not stretched onto it.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PROTOCOLS } from "./classes";
import { describeDataError } from "./errors";
import { onlyIgnore } from "./label-check";
import type { SampleRef } from "./layouts";
import { encodePng } from "./png";
import { loadSample } from "./preprocess";
import { makeTempDir, writeFileDeep, writeGradientImage } from "./test_tree";

let root = "";
let cleanup = async () => {};

const gray = (width: number, height: number, value: number) => encodePng({ width, height, colorType: "gray", bitDepth: 8, samples: new Uint8Array(width * height).fill(value) });

beforeAll(async () => {
  ({ dir: root, cleanup } = await makeTempDir("label-check"));
  await writeGradientImage(join(root, "img.png"), 8, 4);
  await writeFileDeep(join(root, "same.png"), gray(8, 4, 7));
  await writeFileDeep(join(root, "half.png"), gray(4, 2, 7));
});
afterAll(() => cleanup());

const ref = (label: string): SampleRef => ({ name: "img.png", imagePath: join(root, "img.png"), labelPath: join(root, label), labelCoding: "cityscapes-label-id" });

describe("label size", () => {
  test.each([
    ["resized to the input size", { size: { width: 16, height: 8 }, labels: "input-size" as const }],
    ["kept as stored (evaluation)", { labels: "original-size" as const }],
  ])("a label of half its image's size is refused naming the label file (%s)", async (_, opts) => {
    const r = await loadSample(ref("half.png"), { ...opts, protocol: PROTOCOLS.cityscapes19 })();
    expect(E.isLeft(r) && describeDataError(r.left)).toBe(
      `corrupt file ${join(root, "half.png")}: the label is 4x2 but its image ${join(root, "img.png")} is 8x4; a label must have its image's size (resizing it would misplace every class boundary)`,
    );
  });

  test("a label of its image's size is resized with it", async () => {
    const r = await loadSample(ref("same.png"), { size: { width: 16, height: 8 }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 })();
    expect(E.isRight(r) && [r.right.labelWidth, r.right.labelHeight, r.right.label![0]]).toEqual([16, 8, 0]);
  });
});

describe("onlyIgnore", () => {
  test("is true only when every pixel is 255", () => {
    expect(onlyIgnore(new Uint8Array(6).fill(255))).toBe(true);
    expect(onlyIgnore(Uint8Array.of(255, 255, 0))).toBe(false);
  });

  test("with a class count, every value past the classes is ignore (a user table's ignore index)", () => {
    expect(onlyIgnore(Uint8Array.of(3, 200, 255), 3)).toBe(true);
    expect(onlyIgnore(Uint8Array.of(3, 2), 3)).toBe(false);
  });
});
