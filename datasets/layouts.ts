// The on-disk layouts of the four datasets, read as users download them. Listing a dataset gives
// one `SampleRef` per image: where its image and label live and how the label's values are coded.
// Nothing is decoded here; a missing label is found when the sample is loaded, and reported there
// with its path.
//
//   GTA5        <root>/images/00001.png          <root>/labels/00001.png (palette, Cityscapes label ids)
//   Cityscapes  <root>/leftImg8bit/<split>/<city>/<c>_<seq>_<frame>_leftImg8bit.png
//               <root>/gtFine/<split>/<city>/<c>_<seq>_<frame>_gtFine_labelIds.png
//   SYNTHIA     <root>/RGB/0000000.png           <root>/GT/LABELS/0000000.png (16-bit, id in R)
//   Cross-City  <root>/<City>/Images/{Train,Test}/<stem>.png   <root>/<City>/Labels/Test/<stem>_eval.png

import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type DataError, badLayout, errorText, isNotFound, missingFile } from "./errors";

// How a label file codes its classes, and the coding -> class index tables: label-coding.ts (no Node).
import type { LabelCoding } from "./label-coding";
export { type LabelCoding, codingToTrainId, labelLut } from "./label-coding";

export const CROSS_CITIES = ["Rome", "Rio", "Tokyo", "Taipei"] as const;
export type CrossCity = (typeof CROSS_CITIES)[number];

export type DatasetSpec =
  | { readonly kind: "gta5"; readonly root: string; readonly listFile?: string }
  | {
      readonly kind: "cityscapes";
      readonly root: string;
      readonly split: string;
      /** Official target training reads no labels; evaluation and the target-trained oracle do. */
      readonly withLabels: boolean;
      readonly listFile?: string;
    }
  | { readonly kind: "synthia"; readonly root: string }
  | { readonly kind: "crosscity"; readonly root: string; readonly city: CrossCity; readonly split: "Train" | "Test" };

export interface SampleRef {
  /** A stable name: the file name, prefixed by the city where the layout has cities. */
  readonly name: string;
  readonly imagePath: string;
  readonly labelPath?: string;
  readonly labelCoding: LabelCoding;
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

function listDir(dir: string): TE.TaskEither<DataError, string[]> {
  return TE.tryCatch(
    async () => (await readdir(dir)).sort(),
    (err) => (isNotFound(err) ? missingFile(dir) : badLayout(dir, `cannot list: ${errorText(err)}`)),
  );
}

function readList(path: string): TE.TaskEither<DataError, string[]> {
  return TE.tryCatch(
    async () =>
      (await readFile(path, "utf8"))
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l.length > 0),
    (err) => (isNotFound(err) ? missingFile(path) : badLayout(path, `cannot read list: ${errorText(err)}`)),
  );
}

function nonEmpty(dir: string, what: string) {
  return <T>(xs: T[]): TE.TaskEither<DataError, T[]> =>
    xs.length > 0 ? TE.right(xs) : TE.left(badLayout(dir, `no ${what} found`));
}

function listGta5(root: string, listFile?: string): TE.TaskEither<DataError, SampleRef[]> {
  const imageDir = join(root, "images");
  const names = listFile === undefined ? pipe(listDir(imageDir), TE.map((fs) => fs.filter((f) => IMAGE_EXT.test(f)))) : readList(listFile);
  return pipe(
    names,
    // An empty list file is the list file's fault, not the image folder's.
    TE.chain(listFile === undefined ? nonEmpty(imageDir, "images") : nonEmpty(listFile, "entries")),
    TE.map((fs) =>
      fs.map((f) => ({
        name: f,
        imagePath: join(imageDir, f),
        labelPath: join(root, "labels", f),
        labelCoding: "cityscapes-label-id" as const,
      })),
    ),
  );
}

const CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png";

/** `<city>_<seq>_<frame>` of a Cityscapes file name, the key shared by image, labels and predictions. */
export function cityscapesFrameKey(fileName: string): string | undefined {
  const m = /^([^_/]+_\d+_\d+)_/.exec(fileName);
  return m?.[1];
}

function cityscapesRef(root: string, split: string, city: string, file: string, withLabels: boolean): SampleRef {
  const key = file.slice(0, -CITYSCAPES_IMAGE_SUFFIX.length);
  return {
    name: `${city}/${file}`,
    imagePath: join(root, "leftImg8bit", split, city, file),
    ...(withLabels ? { labelPath: join(root, "gtFine", split, city, `${key}_gtFine_labelIds.png`) } : {}),
    labelCoding: "cityscapes-label-id",
  };
}

function listCityscapes(spec: Extract<DatasetSpec, { kind: "cityscapes" }>): TE.TaskEither<DataError, SampleRef[]> {
  const splitDir = join(spec.root, "leftImg8bit", spec.split);
  if (spec.listFile !== undefined) {
    // Official list lines are "<city>/<file>".
    return pipe(
      readList(spec.listFile),
      TE.chain(nonEmpty(spec.listFile, "entries")),
      TE.chain((lines) => {
        const bad = lines.find((l) => l.split("/").length !== 2 || !l.endsWith(CITYSCAPES_IMAGE_SUFFIX));
        return bad === undefined
          ? TE.right(lines.map((l) => {
              const [city, file] = l.split("/") as [string, string];
              return cityscapesRef(spec.root, spec.split, city, file, spec.withLabels);
            }))
          : TE.left(badLayout(spec.listFile!, `line "${bad}" is not <city>/<name>${CITYSCAPES_IMAGE_SUFFIX}`));
      }),
    );
  }
  return pipe(
    listDir(splitDir),
    TE.chain(nonEmpty(splitDir, "city folders")),
    TE.chain((cities) =>
      TE.traverseSeqArray((city: string) =>
        pipe(
          listDir(join(splitDir, city)),
          TE.map((files) =>
            files.filter((f) => f.endsWith(CITYSCAPES_IMAGE_SUFFIX)).map((f) => cityscapesRef(spec.root, spec.split, city, f, spec.withLabels)),
          ),
        ),
      )(cities),
    ),
    TE.map((perCity) => perCity.flat()),
    TE.chain(nonEmpty(splitDir, `*${CITYSCAPES_IMAGE_SUFFIX} images`)),
  );
}

function listSynthia(root: string): TE.TaskEither<DataError, SampleRef[]> {
  const rgbDir = join(root, "RGB");
  return pipe(
    listDir(rgbDir),
    TE.map((fs) => fs.filter((f) => IMAGE_EXT.test(f))),
    TE.chain(nonEmpty(rgbDir, "images")),
    TE.map((fs) =>
      fs.map((f) => ({
        name: f,
        imagePath: join(rgbDir, f),
        labelPath: join(root, "GT", "LABELS", f.replace(IMAGE_EXT, ".png")),
        labelCoding: "synthia-id" as const,
      })),
    ),
  );
}

function listCrossCity(spec: Extract<DatasetSpec, { kind: "crosscity" }>): TE.TaskEither<DataError, SampleRef[]> {
  const imageDir = join(spec.root, spec.city, "Images", spec.split);
  return pipe(
    listDir(imageDir),
    TE.map((fs) => fs.filter((f) => IMAGE_EXT.test(f))),
    TE.chain(nonEmpty(imageDir, "images")),
    TE.map((fs) =>
      fs.map((f) => ({
        name: `${spec.city}/${f}`,
        imagePath: join(imageDir, f),
        // Only the Test split is annotated (each city's 100 evaluation images).
        ...(spec.split === "Test"
          ? { labelPath: join(spec.root, spec.city, "Labels", "Test", f.replace(IMAGE_EXT, "_eval.png")) }
          : {}),
        labelCoding: "cross-city-13" as const,
      })),
    ),
  );
}

/** All samples of a dataset, in a deterministic (sorted or list-file) order. */
export function listDataset(spec: DatasetSpec): TE.TaskEither<DataError, SampleRef[]> {
  switch (spec.kind) {
    case "gta5":
      return listGta5(spec.root, spec.listFile);
    case "cityscapes":
      return listCityscapes(spec);
    case "synthia":
      return listSynthia(spec.root);
    case "crosscity":
      return listCrossCity(spec);
    default: {
      const never: never = spec;
      return never;
    }
  }
}
