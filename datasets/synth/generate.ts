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
import { createRng, mixSeed } from "../prng";
import { type Domain, GAME, targetDomain } from "./domains";
import { createCanvas, fillShape } from "./raster";
import { renderImage } from "./render";
import { generateScene } from "./scene";

/** Bumped whenever the generator's output changes for the same options. */
export const GENERATOR_VERSION = 1;

export interface SynthOptions {
  readonly out: string;
  readonly seed: number;
  readonly sourceSize: Size;
  readonly targetSize: Size;
  readonly countSource: number;
  readonly countTrain: number;
  readonly countVal: number;
  /** Size of the domain gap, 0 (none) to 1 (full); see domains.ts. */
  readonly shift: number;
}

export const DEFAULT_SYNTH: Omit<SynthOptions, "out" | "seed"> = {
  sourceSize: { width: 320, height: 180 },
  targetSize: { width: 256, height: 128 },
  countSource: 200,
  countTrain: 200,
  countVal: 50,
  shift: 1,
};

export const TRAIN_CITIES = ["northbrook", "eastvale", "southport"] as const;
export const VAL_CITIES = ["westfield", "lakemont"] as const;

export interface SynthImage {
  readonly rgb: Uint8Array;
  /** Cityscapes label ids. */
  readonly label: Uint8Array;
}

const DOMAIN_CODE = { source: 1, train: 2, val: 3 } as const;

/** One image and its label map, a pure function of its seed. */
export function synthImage(domain: Domain, size: Size, seed: number): SynthImage {
  const scene = generateScene(createRng(mixSeed(seed, 0)), domain, size.width, size.height);
  const canvas = createCanvas(size.width, size.height);
  for (const layer of scene.layers) fillShape(canvas, layer.shape, layer.label, layer.material);
  const rgb = renderImage(canvas, scene.materials, domain.optics, createRng(mixSeed(seed, 1)));
  return { rgb, label: canvas.label };
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

interface Planned {
  readonly imagePath: string;
  readonly labelPath: string;
  readonly labelFormat: "palette" | "gray";
  readonly domain: Domain;
  readonly size: Size;
  readonly seed: number;
  readonly split: keyof typeof DOMAIN_CODE;
}

export function plan(o: SynthOptions): Planned[] {
  const target = targetDomain(o.shift);
  const out: Planned[] = [];
  for (let i = 0; i < o.countSource; i++) {
    const name = `${pad(i + 1, 5)}.png`;
    out.push({
      imagePath: join(o.out, "gta5", "images", name),
      labelPath: join(o.out, "gta5", "labels", name),
      labelFormat: "palette",
      domain: GAME,
      size: o.sourceSize,
      seed: mixSeed(o.seed, DOMAIN_CODE.source, i),
      split: "source",
    });
  }
  for (const [split, n, cities] of [
    ["train", o.countTrain, TRAIN_CITIES],
    ["val", o.countVal, VAL_CITIES],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const city = cities[i % cities.length]!;
      // Cityscapes-style frame keys: <city>_<sequence>_<frame>
      const key = `${city}_000000_${pad(19 * Math.floor(i / cities.length) + 19, 6)}`;
      out.push({
        imagePath: join(o.out, "cityscapes", "leftImg8bit", split, city, `${key}_leftImg8bit.png`),
        labelPath: join(o.out, "cityscapes", "gtFine", split, city, `${key}_gtFine_labelIds.png`),
        labelFormat: "gray",
        domain: target,
        size: o.targetSize,
        seed: mixSeed(o.seed, DOMAIN_CODE[split], i),
        split,
      });
    }
  }
  return out;
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
