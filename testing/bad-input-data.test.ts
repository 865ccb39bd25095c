// The bad-input suite, data and command lines: PNG images and labels, list files, the train
// command line (in-process, and a few spawned CLIs), run directories. For every case: a refusal
// (Left, or a non-zero exit) whose message names the file or option, no stack trace, no partial
// output, memory bounded, earlier runs untouched. Checkpoints are in bad-input.test.ts.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import * as E from "fp-ts/lib/Either.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crc32 } from "../format/crc32";
import { PROTOCOLS } from "../datasets/classes";
import { describeDataError } from "../datasets/errors";
import { decodeLabelPng } from "../datasets/image";
import type { DatasetSpec, SampleRef } from "../datasets/layouts";
import { encodePng } from "../datasets/png";
import { loadSample } from "../datasets/preprocess";
import { writeGradientImage } from "../datasets/test_tree";
import { openDataset } from "../train/data";
import { renderTrainError } from "../train/errors";
import { MetricsLog } from "../train/metrics";
import { parseTrainOptions } from "../cli/options";
import { REPO_ROOT } from "../train/programs";
import { checkRunRequest, RUN_FILE } from "../train/run-dir";
import { scratch } from "../train/test-programs";
import { caseCount, countCase, expectRefusal, flip, growthOf, MiB } from "./bad-input";

let root = "";
const gray = (w: number, h: number, v = 7) => encodePng({ width: w, height: h, colorType: "gray", bitDepth: 8, samples: new Uint8Array(w * h).fill(v) });
const LABEL = gray(8, 4);

/** A PNG of the given chunks, with correct CRCs: damage that reaches the decoder past the checksums. */
function png(chunks: readonly (readonly [string, Uint8Array])[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10)];
  for (const [type, data] of chunks) {
    const c = new Uint8Array(12 + data.length);
    const dv = new DataView(c.buffer);
    dv.setUint32(0, data.length);
    c.set(new TextEncoder().encode(type), 4);
    c.set(data, 8);
    dv.setUint32(8 + data.length, crc32(c, 4, 8 + data.length));
    parts.push(c);
  }
  return Buffer.concat(parts);
}
const ihdr = (w: number, h: number, depth = 8, color = 0) => {
  const b = new Uint8Array(13);
  new DataView(b.buffer).setUint32(0, w);
  new DataView(b.buffer).setUint32(4, h);
  b.set([depth, color, 0, 0, 0], 8);
  return b;
};
/** 8x4 gray whose IDAT inflates to `bytes` bytes: a decompression bomb when bytes >> 36. */
const bomb = (w: number, h: number, bytes: number) => png([["IHDR", ihdr(w, h)], ["IDAT", deflateSync(new Uint8Array(bytes))], ["IEND", new Uint8Array(0)]]);

beforeAll(async () => {
  root = scratch("bad-data-");
  await writeGradientImage(join(root, "img.png"), 8, 4);
});

async function sampleRefusal(image: Uint8Array | "good", label: Uint8Array): Promise<string | undefined> {
  const dir = scratch("bad-sample-");
  const imagePath = image === "good" ? join(root, "img.png") : join(dir, "image.png");
  if (image !== "good") writeFileSync(imagePath, image);
  writeFileSync(join(dir, "label.png"), label);
  const ref: SampleRef = { name: "x", imagePath, labelPath: join(dir, "label.png"), labelCoding: "cityscapes-label-id" };
  const before = process.memoryUsage().arrayBuffers;
  const r = await loadSample(ref, { size: { width: 16, height: 8 }, labels: "input-size", protocol: PROTOCOLS.cityscapes19 })();
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
  return E.isLeft(r) ? describeDataError(r.left).replaceAll(dir, "<dir>") : undefined;
}

describe("bad images and labels", () => {
  const IMG = () => readFileSync(join(root, "img.png"));
  it.each([
    ["a truncated image", () => IMG().subarray(0, 40), LABEL, "<dir>/image.png"],
    ["an image that is text", () => new TextEncoder().encode("not an image"), LABEL, "<dir>/image.png"],
    ["an empty image", () => new Uint8Array(0), LABEL, "<dir>/image.png"],
    ["a truncated label", "good", LABEL.subarray(0, 30), "<dir>/label.png"],
    ["a label with a flipped byte (CRC)", "good", flip(LABEL, 40, 2), "<dir>/label.png"],
    ["an 8-bit RGB label", "good", encodePng({ width: 8, height: 4, colorType: "rgb", bitDepth: 8, samples: new Uint8Array(96) }), "<dir>/label.png"],
    ["a label of another size than its image", "good", gray(4, 2), "<dir>/label.png"],
    ["a label whose header claims 60000x60000", "good", png([["IHDR", ihdr(60000, 60000)], ["IDAT", deflateSync(new Uint8Array(64))], ["IEND", new Uint8Array(0)]]), "<dir>/label.png"],
    ["an 8x4 label whose data inflates to 256 MiB", "good", bomb(8, 4, 256 * MiB), "<dir>/label.png"],
    ["a label with an unknown filter type", "good", png([["IHDR", ihdr(8, 4)], ["IDAT", deflateSync(new Uint8Array(36).fill(9))], ["IEND", new Uint8Array(0)]]), "<dir>/label.png"],
  ] as const)("%s is refused, naming the file", async (what, image, label, file) => {
    countCase();
    expectRefusal(await sampleRefusal(typeof image === "function" ? image() : image, label), [file], what);
  });

  it("label PNGs damaged anywhere (CRCs recomputed) decode or are refused, never throw (fast-check)", () => {
    const data = deflateSync(Buffer.concat([...Array(4).keys()].map(() => Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8))));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 60 }), (field, at, bit, cut) => {
        countCase();
        const header = flip(ihdr(8, 4), field, bit);
        const idat = cut > 0 ? data.subarray(0, cut) : flip(data, at, bit);
        const { value, grew } = growthOf(() => decodeLabelPng(png([["IHDR", header], ["IDAT", idat], ["IEND", new Uint8Array(0)]]), "fuzz.png"));
        expect(grew).toBeLessThan(64 * MiB);
        if (E.isLeft(value)) expect(describeDataError(value.left)).toContain("fuzz.png");
      }),
      { numRuns: 150, seed: 18 },
    );
  });
});

describe("bad list files", () => {
  const gta5 = (listFile: string): DatasetSpec => ({ kind: "gta5", root: join(root, "gta5"), listFile });
  beforeAll(async () => {
    await writeGradientImage(join(root, "gta5", "images", "00001.png"), 8, 4);
    writeFileSync(join(root, "gta5", "labels.png"), LABEL);
    mkdirSync(join(root, "gta5", "labels"), { recursive: true });
    writeFileSync(join(root, "gta5", "labels", "00001.png"), LABEL);
    writeFileSync(join(root, "missing.txt"), "00001.png\n00002.png\n");
    writeFileSync(join(root, "empty.txt"), "\n\n");
    writeFileSync(join(root, "binary.txt"), Uint8Array.of(0, 1, 2, 0xff, 10));
    mkdirSync(join(root, "dir.txt"));
    writeFileSync(join(root, "cs.txt"), "aachen_000000_000019_leftImg8bit.png\n");
  });
  it.each([
    ["naming an image that does not exist", () => gta5(join(root, "missing.txt")), ["00002.png", "missing.txt"]],
    ["with no entries", () => gta5(join(root, "empty.txt")), ["empty.txt"]],
    ["of binary garbage", () => gta5(join(root, "binary.txt")), ["binary.txt"]],
    ["that is a directory", () => gta5(join(root, "dir.txt")), ["dir.txt"]],
    ["that does not exist", () => gta5(join(root, "nope.txt")), ["nope.txt"]],
    ["with a line that is not <city>/<name>", (): DatasetSpec => ({ kind: "cityscapes", root, split: "train", withLabels: false, listFile: join(root, "cs.txt") }), ["cs.txt", "aachen_000000_000019_leftImg8bit.png"]],
  ] as const)("a list file %s is refused before training, naming it", async (what, spec, names) => {
    countCase();
    const r = await openDataset({ role: "source", option: "--data-list", spec: spec() })();
    expectRefusal(E.isLeft(r) ? renderTrainError(r.left) : undefined, names, what);
  });
});

describe("bad command lines", () => {
  it.each([
    [["--num-steps-stop", "0x2"], "--num-steps-stop"],
    [["--save-pred-every="], "--save-pred-every"],
    [["--random-seed", "Infinity"], "--random-seed"],
    [["--log-every", "NaN"], "--log-every"],
    [["--eval-every", "-1"], "--eval-every"],
    [["--learning-rate", "1e999"], "--learning-rate"],
    [["--lambda-seg", "0b1"], "--lambda-seg"],
    [["--input-size", "-3,4"], "--input-size"],
    [["--snapshot-dir"], "--snapshot-dir"],
    [["--bogus", "1"], "--bogus"],
    [["--batch-size", "2"], "--batch-size"],
    [["--resume", "--restore-from", "x.pth"], "--restore-from"],
    [["--gan", "WGAN"], "--gan"],
    [["--target-layout", "crosscity"], "--target-city"],
  ] as const)("%j is refused, naming %s", (argv, option) => {
    countCase();
    const r = parseTrainOptions(argv);
    expectRefusal(E.isLeft(r) ? renderTrainError(r.left) : undefined, [option], argv.join(" "));
  });

  it("any argv built from the option names and odd values parses or is refused, never throws (fast-check)", () => {
    const names = ["--num-steps-stop", "--save-pred-every", "--random-seed", "--learning-rate", "--lambda-seg", "--input-size", "--resume", "--snapshot-dir", "--num-workers", "--gan", "--x"];
    const values = fc.oneof(fc.constantFrom("-1", "0x10", "", " ", "1e3", "NaN", "--", "-", "1,2", "3.5", "-.5"), fc.string({ maxLength: 6 }));
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...names), values, fc.tuple(fc.constantFrom(...names), values).map(([n, v]) => `${n}=${v}`)), { maxLength: 6 }), (argv) => {
        countCase();
        const r = parseTrainOptions(argv);
        if (E.isLeft(r)) expect(renderTrainError(r.left)).toMatch(/--|option|argument/i);
      }),
      { numRuns: 150, seed: 18 },
    );
  });
});

describe("run directories", () => {
  const identity = { program: "p", config: {}, seed: 1, snapshotPrefix: "p", data: {} };
  const contents = (dir: string) => readdirSync(dir).map((f) => `${f} ${statSync(join(dir, f)).mtimeMs} ${readFileSync(join(dir, f)).toString("base64")}`);
  const earlierRun = (): string => {
    const dir = scratch("earlier-run-");
    writeFileSync(join(dir, "p_100.safetensors"), "weights");
    writeFileSync(join(dir, "metrics.jsonl"), '{"type":"loss"}\n');
    writeFileSync(join(dir, RUN_FILE), JSON.stringify({ identity: { ...identity, seed: 2 }, created: "x" }));
    return dir;
  };

  it.each([
    ["a new run into a directory holding one", false, "already holds a run"],
    ["--resume of a run with another seed", true, "seed: 2 in the directory, 1 now"],
  ] as const)("%s is refused and the earlier run is untouched", (what, resume, why) => {
    countCase();
    const dir = earlierRun();
    const before = contents(dir);
    const r = checkRunRequest({ dir, identity, metricsPath: join(dir, "metrics.jsonl"), resume });
    expectRefusal(E.isLeft(r) ? renderTrainError(r.left) : undefined, [dir, why], what);
    expect(contents(dir)).toEqual(before);
  });

  it("a metrics path that is a symlink is refused and its target untouched", () => {
    countCase();
    const dir = scratch();
    writeFileSync(join(dir, "target"), "keep");
    symlinkSync(join(dir, "target"), join(dir, "metrics.jsonl"));
    const r = MetricsLog.open(join(dir, "metrics.jsonl"));
    expectRefusal(E.isLeft(r) ? renderTrainError(r.left) : undefined, [join(dir, "metrics.jsonl"), "symbolic link"], "symlink");
    expect(readFileSync(join(dir, "target"), "utf8")).toBe("keep");
  });
});

describe("bad inputs through the command-line programs (spawned)", () => {
  const run = (script: string, args: readonly string[]) => {
    countCase();
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "scripts", script), ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    return { status: r.status, out: r.stdout + r.stderr };
  };

  it("import-weights of a text file exits 1 naming it, and writes no output (nor a temporary file)", () => {
    const dir = scratch();
    writeFileSync(join(dir, "notes.pth"), "just text");
    const r = run("import_weights.ts", [join(dir, "notes.pth"), "--out", join(dir, "out.safetensors")]);
    expect(r.status, r.out).toBe(1);
    expectRefusal(r.out, [join(dir, "notes.pth"), "is not a PyTorch checkpoint"], "import-weights");
    expect(readdirSync(dir)).toEqual(["notes.pth"]);
  }, 60_000);

  it("score exits 1 when every prediction has the wrong size, and writes no --json", () => {
    const dir = scratch();
    mkdirSync(join(dir, "gt"));
    mkdirSync(join(dir, "pred"));
    writeFileSync(join(dir, "gt", "a.png"), gray(4, 4, 1));
    writeFileSync(join(dir, "pred", "a.png"), gray(2, 2, 1));
    const r = run("score.ts", ["--pred", join(dir, "pred"), "--gt", join(dir, "gt"), "--gt-format", "trainid", "--json", join(dir, "s.json")]);
    expect(r.status, r.out).toBe(1);
    expectRefusal(r.out, ["nothing to score", "wrong size"], "score");
    expect(r.out).not.toMatch(/mIoU: nan/);
    expect(existsSync(join(dir, "s.json"))).toBe(false);
  }, 60_000);

  it("train with a hexadecimal option exits 2 naming it", () => {
    const r = run("train.ts", ["--num-steps-stop", "0x2"]);
    expect(r.status, r.out).toBe(2);
    expectRefusal(r.out, ['--num-steps-stop must be a positive integer (decimal digits), got "0x2"'], "train 0x2");
  }, 60_000);
});

afterAll(() => {
  console.log(`bad-input suite (data, lists, command lines, run directories): ${caseCount()} cases`);
});
