// npm run score -- --pred DIR --gt DIR [--protocol 19|16|13] [--gt-format labelid|trainid|protocol]
//                  [--pred-format trainid|protocol] [--json FILE] [--markdown FILE]
//                  [--color DIR [--images DIR]]
//
// The counterpart of the official compute_iou.py: scores a folder of prediction PNGs against a
// folder of label PNGs with the official protocol (docs §5) and prints the per-class table and
// "mIoU: xx.xx". --color writes colorized predictions; with --images (a leftImg8bit/<split> tree
// or any folder of photos named by the same frame keys) it also writes image | gt | prediction panels.

import * as E from "fp-ts/lib/Either.js";
import { readdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { protocolByClassCount } from "../datasets/classes";
import { describeDataError } from "../datasets/errors";
import { parseDecimal } from "../cli/numeric-options";
import { formatPercent } from "../evaluation/confusion";
import { jsonReport, markdownTable } from "../evaluation/report";
import { type LabelFormat, frameKey, scoreFolders } from "../evaluation/score_folders";
import { writeComparison } from "../evaluation/visualize";

const USAGE =
  "usage: npm run score -- --pred DIR --gt DIR [--protocol 19|16|13] [--gt-format labelid|trainid|protocol] " +
  "[--pred-format trainid|protocol] [--json FILE] [--markdown FILE] [--color DIR [--images DIR]]";

function fail(msg: string): never {
  console.error(msg);
  process.exit(1);
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  return (allowed as readonly string[]).includes(value) ? (value as T) : fail(`--${name} must be one of ${allowed.join(", ")}, got ${value}\n${USAGE}`);
}

async function imagesByKey(dir: string): Promise<Map<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return new Map(
    entries.filter((e) => e.isFile() && /\.(png|jpe?g)$/i.test(e.name)).map((e) => [frameKey(e.name), join(e.parentPath, e.name)]),
  );
}

async function main(): Promise<void> {
  let parsed;
  try {
    // An unknown option or a missing value: a usage message, not a stack trace.
    parsed = parseArgs({
      options: {
        pred: { type: "string" },
        gt: { type: "string" },
        protocol: { type: "string", default: "19" },
        "gt-format": { type: "string", default: "labelid" },
        "pred-format": { type: "string", default: "trainid" },
        json: { type: "string" },
        markdown: { type: "string" },
        color: { type: "string" },
        images: { type: "string" },
      },
    });
  } catch (e) {
    return fail(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  }
  const values = parsed.values;
  if (values.pred === undefined || values.gt === undefined) fail(USAGE);
  const classes = parseDecimal("protocol", values.protocol, { integer: true, what: "19, 16 or 13" });
  const protocol = (E.isRight(classes) ? protocolByClassCount(classes.right ?? Number.NaN) : undefined) ?? fail(`--protocol must be 19, 16 or 13, got ${JSON.stringify(values.protocol)}\n${USAGE}`);
  const gtFormat = oneOf<LabelFormat>("gt-format", values["gt-format"], ["labelid", "trainid", "protocol"]);
  const predFormat = oneOf<"trainid" | "protocol">("pred-format", values["pred-format"], ["trainid", "protocol"]);

  const r = await scoreFolders({ predDir: values.pred, gtDir: values.gt, protocol, gtFormat, predFormat })();
  if (E.isLeft(r)) fail(`score: ${describeDataError(r.left)}`);
  const s = r.right;
  for (const k of s.skipped) console.log(`skipped ${k.prediction}: ${k.reason}`);
  console.log(markdownTable([{ title: `IoU (${s.scored} images)`, summary: s }]));
  if (s.skipped.length > 0) console.log(`${s.skipped.length} image(s) skipped for a size mismatch`);
  console.log(`mIoU: ${formatPercent(s.miou)}`);
  if (values.json !== undefined) {
    const report = { ...jsonReport(s), images: s.scored, skipped: s.skipped };
    await writeFile(values.json, JSON.stringify(report, null, 1) + "\n");
  }
  if (values.markdown !== undefined) await writeFile(values.markdown, markdownTable([{ title: "IoU", summary: s }]));
  if (values.color !== undefined) {
    const colorDir = values.color;
    const photos = values.images === undefined ? new Map<string, string>() : await imagesByKey(values.images);
    for (const pair of s.pairs) {
      const key = frameKey(basename(pair.label));
      const image = photos.get(key);
      const w = await writeComparison(
        { ...pair, ...(image === undefined ? {} : { image }) },
        { gt: gtFormat, pred: predFormat },
        protocol,
        join(colorDir, `${key}_color.png`),
        values.images === undefined ? undefined : join(colorDir, `${key}_compare.png`),
      )();
      if (E.isLeft(w)) fail(`score: ${describeDataError(w.left)}`);
    }
    console.log(`wrote ${s.pairs.length} colorized prediction(s) to ${colorDir}`);
  }
}

await main();
