// The synthetic benchmark's images as pure functions: which images it has (split, name in the
// layout of the real dataset, domain, size, seed) and each image from its seed. No Node: the
// browser page generates the same images in memory; generate.ts writes them to disk.

import { createRng, mixSeed } from "../prng";
import type { Size } from "../rgb";
import { type Domain, GAME, targetDomain } from "./domains";
import { createCanvas, fillShape } from "./raster";
import { renderImage } from "./render";
import { generateScene } from "./scene";

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

/** What sets the benchmark's images (generate.ts's SynthOptions without the output folder). */
export interface SynthSpec {
  readonly seed: number;
  readonly sourceSize: Size;
  readonly targetSize: Size;
  readonly countSource: number;
  readonly countTrain: number;
  readonly countVal: number;
  /** Size of the domain gap, 0 (none) to 1 (full); see domains.ts. */
  readonly shift: number;
}

/** One image of the benchmark: `city` is set for the target splits (Cityscapes layout). */
export interface SynthEntry {
  readonly split: keyof typeof DOMAIN_CODE;
  /** gta5: `00001.png`; cityscapes: `<city>_000000_<frame>` (the frame key). */
  readonly file: string;
  readonly city?: string;
  readonly domain: Domain;
  readonly size: Size;
  readonly seed: number;
}

/** Every image, in generation order: source, then target train, then target val. */
export function synthEntries(o: SynthSpec): SynthEntry[] {
  const target = targetDomain(o.shift);
  const out: SynthEntry[] = [];
  for (let i = 0; i < o.countSource; i++) {
    out.push({ split: "source", file: `${pad(i + 1, 5)}.png`, domain: GAME, size: o.sourceSize, seed: mixSeed(o.seed, DOMAIN_CODE.source, i) });
  }
  for (const [split, n, cities] of [
    ["train", o.countTrain, TRAIN_CITIES],
    ["val", o.countVal, VAL_CITIES],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const city = cities[i % cities.length]!;
      // Cityscapes-style frame keys: <city>_<sequence>_<frame>
      const key = `${city}_000000_${pad(19 * Math.floor(i / cities.length) + 19, 6)}`;
      out.push({ split, file: key, city, domain: target, size: o.targetSize, seed: mixSeed(o.seed, DOMAIN_CODE[split], i) });
    }
  }
  return out;
}
