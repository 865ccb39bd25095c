// npm run data:synth -- --out DIR --seed S [--source-size WxH] [--target-size WxH]
//                       [--count-source N] [--count-train N] [--count-val N] [--shift 0..1]
//
// Writes the synthetic domain-shift benchmark (datasets/synth/): a "game" source domain in
// the GTA5 layout and a "camera" target domain in the Cityscapes layout. Same options, same bytes.

import * as E from "fp-ts/lib/Either.js";
import { parseArgs } from "node:util";
import { describeDataError } from "../datasets/errors";
import { DEFAULT_SYNTH, writeSynth } from "../datasets/synth/generate";

const USAGE =
  "usage: npm run data:synth -- --out DIR [--seed S] [--source-size WxH] [--target-size WxH] " +
  "[--count-source N] [--count-train N] [--count-val N] [--shift 0..1]";

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(1);
}

function size(flag: string, v: string | undefined, dflt: { width: number; height: number }) {
  if (v === undefined) return dflt;
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (m === null || Number(m[1]) < 16 || Number(m[2]) < 16) fail(`--${flag} must be WxH with both at least 16, got ${v}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

function int(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${flag} must be a non-negative integer, got ${v}`);
  return n;
}

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    seed: { type: "string", default: "0" },
    "source-size": { type: "string" },
    "target-size": { type: "string" },
    "count-source": { type: "string" },
    "count-train": { type: "string" },
    "count-val": { type: "string" },
    shift: { type: "string" },
  },
});
if (values.out === undefined) fail("--out is required");
const shift = values.shift === undefined ? DEFAULT_SYNTH.shift : Number(values.shift);
if (!(shift >= 0 && shift <= 1)) fail(`--shift must be in [0, 1], got ${values.shift}`);
const options = {
  out: values.out,
  seed: int("seed", values.seed, 0),
  sourceSize: size("source-size", values["source-size"], DEFAULT_SYNTH.sourceSize),
  targetSize: size("target-size", values["target-size"], DEFAULT_SYNTH.targetSize),
  countSource: int("count-source", values["count-source"], DEFAULT_SYNTH.countSource),
  countTrain: int("count-train", values["count-train"], DEFAULT_SYNTH.countTrain),
  countVal: int("count-val", values["count-val"], DEFAULT_SYNTH.countVal),
  shift,
};
const t0 = performance.now();
const r = await writeSynth(options)();
if (E.isLeft(r)) fail(`data:synth: ${describeDataError(r.left)}`);
const secs = (performance.now() - t0) / 1000;
console.log(
  `wrote ${r.right.images} images (${options.countSource} source ${options.sourceSize.width}x${options.sourceSize.height}, ` +
    `${options.countTrain} + ${options.countVal} target ${options.targetSize.width}x${options.targetSize.height}) ` +
    `to ${options.out} in ${secs.toFixed(1)} s`,
);
