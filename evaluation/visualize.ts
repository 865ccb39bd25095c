// Colorized prediction files and image | ground truth | prediction panels for a scored folder.
// Labels and predictions are mapped to the protocol's classes, then back to trainIds, so the
// colors are the Cityscapes palette whatever the file coding, and pixels outside the protocol
// (ignored) are black in both panels.

import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { type Protocol, composeLuts, mapLabels, protocolToTrainIdLut } from "../datasets/classes";
import type { DataError } from "../datasets/errors";
import { type RgbImage, readRawLabel, readRgb } from "../datasets/image";
import { colorize, sideBySide, writeRgbPng } from "./colorize";
import { type LabelFormat, formatLut } from "./score_folders";

function readColorized(path: string, format: LabelFormat, protocol: Protocol): TE.TaskEither<DataError, RgbImage> {
  const lut = composeLuts(formatLut(format, protocol), protocolToTrainIdLut(protocol));
  return pipe(
    readRawLabel(path),
    TE.map((raw) => colorize({ width: raw.width, height: raw.height, data: mapLabels(raw.data, lut) })),
  );
}

export interface Comparison {
  readonly label: string;
  readonly prediction: string;
  /** The input photo, when known; it is resized to the label size for the panel. */
  readonly image?: string;
}

/** Write the colorized prediction alone (`colorPath`) and, when `panelPath` is given, the panel. */
export function writeComparison(
  c: Comparison,
  formats: { readonly gt: LabelFormat; readonly pred: LabelFormat },
  protocol: Protocol,
  colorPath: string,
  panelPath?: string,
): TE.TaskEither<DataError, void> {
  return pipe(
    TE.Do,
    TE.apS("pred", readColorized(c.prediction, formats.pred, protocol)),
    TE.apS("gt", readColorized(c.label, formats.gt, protocol)),
    TE.chainFirst(({ pred }) => writeRgbPng(colorPath, pred)),
    TE.chain(({ pred, gt }) => {
      if (panelPath === undefined) return TE.right(undefined);
      const photo = c.image === undefined ? TE.right<DataError, RgbImage[]>([]) : pipe(readRgb(c.image, gt), TE.map((p) => [p]));
      return pipe(
        photo,
        TE.chain((ps) => writeRgbPng(panelPath, sideBySide([...ps, gt, pred]))),
      );
    }),
  );
}
