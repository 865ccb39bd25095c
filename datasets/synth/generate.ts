// The synthetic domain-shift benchmark written to disk in the layouts of the real datasets, so
// that the real loaders read it:
//
//   <out>/gta5/images/00001.png, <out>/gta5/labels/00001.png       source ("game"), palette labels
//   <out>/cityscapes/leftImg8bit/{train,val}/<city>/<city>_000000_<frame>_leftImg8bit.png
//   <out>/cityscapes/gtFine/{train,val}/<city>/<city>_000000_<frame>_gtFine_labelIds.png
//   <out>/synth.json                                              the parameters and label statistics
//
// Target train labels are written too (the official target training never reads them; the
// target-trained "oracle" does). Every image has its own seed derived from (seed, domain, split,
// index), so an image does not change when the counts do, and the output is byte-identical for
// the same options on the same Node build.

import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { join } from "node:path";
import { LABEL_ID_PALETTE } from "../classes";
import type { DataError } from "../errors";
import { type Size, writeBytes, writeGrayLabelPng, writePaletteLabelPng } from "../image";
import { encodePng } from "../png";
import { type SynthEntry, type SynthSpec, TRAIN_CITIES, VAL_CITIES, synthEntries, synthImage } from "./benchmark";
import type { Domain } from "./domains";

/** Bumped whenever the generator's output changes for the same options. */
export const GENERATOR_VERSION = 1;

export interface SynthOptions extends SynthSpec {
  readonly out: string;
}

export const DEFAULT_SYNTH: Omit<SynthOptions, "out" | "seed"> = {
  sourceSize: { width: 320, height: 180 },
  targetSize: { width: 256, height: 128 },
  countSource: 200,
  countTrain: 200,
  countVal: 50,
  shift: 1,
};

export { TRAIN_CITIES, VAL_CITIES, type SynthImage, synthImage } from "./benchmark";

interface Planned {
  readonly imagePath: string;
  readonly labelPath: string;
  readonly labelFormat: "palette" | "gray";
  readonly domain: Domain;
  readonly size: Size;
  readonly seed: number;
  readonly split: SynthEntry["split"];
}

/** synthEntries (benchmark.ts) placed in the folder layouts of GTA5 and Cityscapes under o.out. */
export function plan(o: SynthOptions): Planned[] {
  return synthEntries(o).map((e) =>
    e.city === undefined
      ? { imagePath: join(o.out, "gta5", "images", e.file), labelPath: join(o.out, "gta5", "labels", e.file), labelFormat: "palette", domain: e.domain, size: e.size, seed: e.seed, split: e.split }
      : {
          imagePath: join(o.out, "cityscapes", "leftImg8bit", e.split, e.city, `${e.file}_leftImg8bit.png`),
          labelPath: join(o.out, "cityscapes", "gtFine", e.split, e.city, `${e.file}_gtFine_labelIds.png`),
          labelFormat: "gray",
          domain: e.domain,
          size: e.size,
          seed: e.seed,
          split: e.split,
        },
  );
}

function writeOne(p: Planned): TE.TaskEither<DataError, { split: Planned["split"]; label: Uint8Array }> {
  const img = synthImage(p.domain, p.size, p.seed);
  const map = { ...p.size, data: img.label };
  return pipe(
    writeBytes(p.imagePath, encodePng({ ...p.size, colorType: "rgb", bitDepth: 8, samples: img.rgb })),
    TE.chain(() => (p.labelFormat === "palette" ? writePaletteLabelPng(p.labelPath, map, LABEL_ID_PALETTE) : writeGrayLabelPng(p.labelPath, map))),
    TE.map(() => ({ split: p.split, label: img.label })),
  );
}

export interface SynthSummary {
  readonly images: number;
  /** Per split: fraction of pixels per Cityscapes label id (ids that occur). */
  readonly labelFrequencies: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

function frequencies(labels: readonly Uint8Array[]): Record<string, number> {
  const counts = new Float64Array(256);
  let total = 0;
  for (const l of labels) {
    for (const v of l) counts[v]!++;
    total += l.length;
  }
  const out: Record<string, number> = {};
  counts.forEach((c, id) => {
    if (c > 0) out[String(id)] = Number((c / total).toFixed(6));
  });
  return out;
}

/** Generate and write the whole benchmark; images are written one at a time, in plan order. */
export function writeSynth(o: SynthOptions): TE.TaskEither<DataError, SynthSummary> {
  const items = plan(o);
  return pipe(
    TE.traverseSeqArray(writeOne)(items),
    TE.map((written) => {
      const bySplit: Record<string, Uint8Array[]> = {};
      for (const w of written) (bySplit[w.split] ??= []).push(w.label);
      const labelFrequencies: Record<string, Record<string, number>> = {};
      for (const [split, labels] of Object.entries(bySplit)) labelFrequencies[split] = frequencies(labels);
      return { images: written.length, labelFrequencies };
    }),
    TE.chainFirst((summary) =>
      writeBytes(
        join(o.out, "synth.json"),
        new TextEncoder().encode(
          JSON.stringify(
            {
              generator: "adaptsegnet synthetic street scenes",
              version: GENERATOR_VERSION,
              seed: o.seed,
              shift: o.shift,
              source: { layout: "gta5", root: "gta5", size: o.sourceSize, count: o.countSource },
              target: {
                layout: "cityscapes",
                root: "cityscapes",
                size: o.targetSize,
                train: { count: o.countTrain, cities: TRAIN_CITIES },
                val: { count: o.countVal, cities: VAL_CITIES },
              },
              labelFrequencies: summary.labelFrequencies,
            },
            null,
            1,
          ) + "\n",
        ),
      ),
    ),
  );
}
