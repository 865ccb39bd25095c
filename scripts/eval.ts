// npm run eval -- --restore-from FILE [--data-dir DIR] [--set val] [--save DIR] [--preset P | --program NAME]
//
// The official evaluation of a checkpoint (cli/eval.ts): main head, eval-mode BN,
// bilinear upsampling to label resolution with align_corners=True, argmax, confusion matrix,
// per-class IoU and mIoU. Exit status: 0 done, 1 failed, 2 bad request.

import * as E from "fp-ts/lib/Either.js";
import { PROTOCOLS } from "../datasets/classes";
import { markdownTable, subsetMIoU } from "../evaluation/report";
import { formatPercent } from "../evaluation/confusion";
import { exitCodeOf, renderTrainError } from "../train/errors";
import { EVAL_USAGE, parseEvalOptions, runEvalCli } from "../cli/eval";

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const o = parseEvalOptions(argv);
  if (E.isLeft(o)) {
    console.error(`${renderTrainError(o.left)}\n${EVAL_USAGE}`);
    return 2;
  }
  const r = await runEvalCli(o.right);
  if (E.isLeft(r)) {
    console.error(renderTrainError(r.left));
    return exitCodeOf(r.left);
  }
  for (const n of r.right.notes) console.error(n);
  console.log(`${r.right.program}: ${r.right.images} images in ${r.right.seconds.toFixed(1)} s\n`);
  console.log(markdownTable([{ title: "IoU (%)", summary: r.right.summary }]));
  console.log(`mIoU: ${formatPercent(r.right.summary.miou)}`);
  // SYNTHIA -> Cityscapes is reported on 16 classes and on the 13-class protocol (spec §4.5).
  const m13 = r.right.summary.protocol.id === "synthia16" ? subsetMIoU(r.right.summary, PROTOCOLS.common13) : undefined;
  if (m13 !== undefined) console.log(`mIoU (13 classes: ${PROTOCOLS.common13.names.join(", ")}): ${formatPercent(m13)}`);
  if (o.right.save !== undefined) console.log(`predictions, colorized predictions, panels.png and scores.json in ${o.right.save}`);
  return 0;
}

process.exit(await main(process.argv.slice(2)));
