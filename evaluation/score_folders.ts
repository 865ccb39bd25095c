// Score a folder of prediction PNGs against a folder of label PNGs: the counterpart of the
// official `compute_iou.py` (docs §5, step 4).
//
// Matching: Cityscapes files of one frame share the key `<city>_<seq>_<frame>` (the image
// `..._leftImg8bit.png`, the label `..._gtFine_labelIds.png`, the prediction the evaluation script
// writes under the image's name). Other names are matched by their stem with the known suffixes
// removed. Like the official script, a prediction whose size differs from its label is skipped with
// a message; unlike it, the skips are counted and returned, so a run cannot silently score half a
// split, and a folder in which nothing could be scored is an error, not a nan mIoU. A label
// without a prediction is an error naming the label file.

import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { readdir } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { LABEL_ID_TO_TRAIN_ID, type Protocol, composeLuts, mapLabels, trainIdToProtocolLut } from "../datasets/classes";
import { type DataError, badLayout, errorText, isNotFound, missingFile } from "../datasets/errors";
import { readRawLabel } from "../datasets/image";
import { cityscapesFrameKey } from "../datasets/layouts";
import { type Confusion, accumulate, emptyConfusion } from "./confusion";
import { type ScoreSummary, summarize } from "./report";

/** How label values are coded in a folder of PNGs. */
export type LabelFormat = "labelid" | "trainid" | "protocol";

export interface ScoreOptions {
  readonly predDir: string;
  readonly gtDir: string;
  readonly protocol: Protocol;
  /** labelid: Cityscapes *_gtFine_labelIds.png; trainid: 19-class trainIds; protocol: the protocol's class indices. */
  readonly gtFormat: LabelFormat;
  /** trainid: a 19-class model's argmax; protocol: a model with one output per protocol class. */
  readonly predFormat: Exclude<LabelFormat, "labelid">;
}

export interface SkippedImage {
  readonly label: string;
  readonly prediction: string;
  readonly reason: string;
}

export interface ScoredPair {
  readonly label: string;
  readonly prediction: string;
}

export interface FolderScore extends ScoreSummary {
  readonly scored: number;
  readonly skipped: readonly SkippedImage[];
  /** The pairs that were scored, in label order (for colorized output). */
  readonly pairs: readonly ScoredPair[];
}

const SUFFIXES = ["_gtFine_labelIds", "_gtFine_labelTrainIds", "_gtFine_trainIds", "_leftImg8bit", "_eval"];

/** The key that pairs a label file with its prediction. */
export function frameKey(fileName: string): string {
  const cs = cityscapesFrameKey(fileName);
  if (cs !== undefined) return cs;
  let stem = fileName.replace(/\.png$/i, "");
  for (const s of SUFFIXES) if (stem.endsWith(s)) stem = stem.slice(0, -s.length);
  return stem;
}

/** All files under `dir` (recursively) whose name passes `keep`, sorted by path. */
function findFiles(dir: string, keep: (name: string) => boolean): TE.TaskEither<DataError, string[]> {
  return TE.tryCatch(
    async () => {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && keep(e.name))
        .map((e) => join(e.parentPath, e.name))
        .sort();
    },
    (err) => (isNotFound(err) ? missingFile(dir) : badLayout(dir, `cannot list: ${errorText(err)}`)),
  );
}

function isLabelFile(format: LabelFormat) {
  return (name: string): boolean => (format === "labelid" ? name.endsWith("_gtFine_labelIds.png") : name.toLowerCase().endsWith(".png"));
}

/** Colorized predictions sit beside the raw ones in the official output folder; they are not scored. */
const isPredictionFile = (name: string): boolean => name.toLowerCase().endsWith(".png") && !name.endsWith("_color.png");

function keyIndex(dir: string, files: readonly string[]): E.Either<DataError, Map<string, string>> {
  const index = new Map<string, string>();
  for (const f of files) {
    const key = frameKey(basename(f));
    const prev = index.get(key);
    if (prev !== undefined) {
      return E.left(badLayout(dir, `two files for frame ${key}: ${relative(dir, prev)} and ${relative(dir, f)}`));
    }
    index.set(key, f);
  }
  return E.right(index);
}

/** Label value -> class index of the protocol, for a folder in `format`. */
export function formatLut(format: LabelFormat, protocol: Protocol): Uint8Array {
  switch (format) {
    case "labelid":
      return composeLuts(LABEL_ID_TO_TRAIN_ID, trainIdToProtocolLut(protocol));
    case "trainid":
      return trainIdToProtocolLut(protocol);
    case "protocol": {
      // Values are class indices already; everything else is ignored (gt) or out of protocol (pred).
      const lut = new Uint8Array(256).fill(255);
      for (let k = 0; k < protocol.numClasses; k++) lut[k] = k;
      return lut;
    }
    default: {
      const never: never = format;
      return never;
    }
  }
}

/** Score one label/prediction pair into `conf`; returns the skip reason on a size mismatch. */
function scorePair(
  conf: Confusion,
  gtPath: string,
  predPath: string,
  gtLut: Uint8Array,
  predLut: Uint8Array,
): TE.TaskEither<DataError, string | undefined> {
  return pipe(
    TE.Do,
    TE.apS("gt", readRawLabel(gtPath)),
    TE.apS("pred", readRawLabel(predPath)),
    TE.map(({ gt, pred }) => {
      if (gt.width !== pred.width || gt.height !== pred.height) {
        return `size mismatch: label ${gt.width}x${gt.height}, prediction ${pred.width}x${pred.height}`;
      }
      accumulate(conf, mapLabels(gt.data, gtLut), mapLabels(pred.data, predLut));
      return undefined;
    }),
  );
}

export function scoreFolders(opts: ScoreOptions): TE.TaskEither<DataError, FolderScore> {
  const conf = emptyConfusion(opts.protocol.numClasses);
  const gtLut = formatLut(opts.gtFormat, opts.protocol);
  const predLut = formatLut(opts.predFormat, opts.protocol);
  return pipe(
    TE.Do,
    TE.apS("gts", findFiles(opts.gtDir, isLabelFile(opts.gtFormat))),
    TE.apS("preds", pipe(findFiles(opts.predDir, isPredictionFile), TE.chainEitherK((fs) => keyIndex(opts.predDir, fs)))),
    TE.chain(({ gts, preds }) =>
      gts.length === 0
        ? TE.left(badLayout(opts.gtDir, `no label files found (format ${opts.gtFormat})`))
        : gts.every((g) => !preds.has(frameKey(basename(g))))
          ? TE.left(
              badLayout(
                opts.predDir,
                `no prediction matched any of the ${gts.length} label file(s) in ${opts.gtDir} (${preds.size} prediction file(s); pairs are matched by frame key, e.g. ${frameKey(basename(gts[0]!))})`,
              ),
            )
          : TE.right({ gts, preds }),
    ),
    TE.chain(({ gts, preds }) =>
      // Sequential: one image's pixels in memory at a time, the accumulation order is fixed.
      TE.traverseSeqArray((gtPath: string) => {
        const predPath = preds.get(frameKey(basename(gtPath)));
        if (predPath === undefined) {
          return TE.left(badLayout(opts.predDir, `no prediction for frame ${frameKey(basename(gtPath))} (label ${gtPath})`));
        }
        return pipe(
          scorePair(conf, gtPath, predPath, gtLut, predLut),
          TE.map((reason): SkippedImage | ScoredPair =>
            reason === undefined ? { label: gtPath, prediction: predPath } : { label: gtPath, prediction: predPath, reason },
          ),
        );
      })(gts),
    ),
    TE.chainEitherK((results) => {
      const skipped = results.filter((r): r is SkippedImage => "reason" in r);
      const pairs = results.filter((r) => !("reason" in r));
      // With nothing scored every IoU is 0/0: a "mIoU: nan" with exit status 0 reads as a result.
      if (pairs.length === 0) {
        const first = skipped[0]!;
        return E.left(
          badLayout(opts.predDir, `nothing to score: every prediction (${skipped.length}) had the wrong size, e.g. ${first.prediction}: ${first.reason}`),
        );
      }
      return E.right({ ...summarize(opts.protocol, conf), scored: pairs.length, skipped, pairs });
    }),
  );
}
