// Labels that train nothing. A label whose every pixel maps to the ignore value (255) adds
// exactly zero to the segmentation loss: its ids belong to no class of the protocol (a wrong
// --source-layout, trainIds given where label ids are expected, an empty annotation).
//
//   - One such file among many can be genuine: it is warned about once, naming it.
//   - A stream whose first N draws (N = min(16, dataset size)) are all such files is refused
//     before the first step: the run would train the segmentation head on nothing, with finite
//     losses and no other sign, for as long as it is left running. Refusing costs N label reads;
//     a warning would scroll past while the GPU burns hours. The check runs before the metrics
//     log is opened, so a refused run leaves no run behind in its directory.

import * as E from "fp-ts/lib/Either.js";
import type { ClassTable } from "../datasets/class-table.js";
import { mapLabels } from "../datasets/classes.js";
import { readRawLabel } from "../datasets/image.js";
import { onlyIgnore } from "../datasets/label-check.js";
import { labelLut, type SampleRef } from "../datasets/layouts.js";
import type { Sample } from "../datasets/preprocess.js";
import { trainError, type TrainError } from "./errors.js";

/** How many first draws of a stream are checked. */
export const FIRST_DRAWS = 16;

/**
 * Left when every label among the draws `indices` (dataset indices, in draw order) is ignore-only.
 * A label that cannot be read is left to the loader, which names it when it is drawn.
 */
export async function refuseIgnoreOnlyStream(role: string, refs: readonly SampleRef[], indices: readonly number[], protocol: ClassTable): Promise<E.Either<TrainError, void>> {
  const distinct = [...new Set(indices)];
  const files: string[] = [];
  for (const i of distinct) {
    const ref = refs[i];
    if (ref?.labelPath === undefined) return E.right(undefined);
    const raw = await readRawLabel(ref.labelPath)();
    if (E.isLeft(raw)) return E.right(undefined);
    if (!onlyIgnore(mapLabels(raw.right.data, labelLut(ref.labelCoding, protocol)), protocol.numClasses)) return E.right(undefined);
    files.push(ref.labelPath);
  }
  if (files.length === 0) return E.right(undefined);
  const shown = files.length > 3 ? `${files.slice(0, 3).join(", ")}, ...` : files.join(", ");
  return E.left(
    trainError(
      "data",
      `every pixel of the first ${indices.length} ${role} labels drawn maps to the ignore label ${protocol.ignoreIndex} (${shown}): their ids are no class of the ${protocol.numClasses}-class table ${protocol.id}, ` +
        `so the segmentation loss would be exactly zero. Check the label files and the layout option (--source-layout, --target-layout) for this dataset`,
    ),
  );
}

/** A warning, once per file, for each drawn sample whose label is ignore-only. */
export function ignoreOnlyWarnings(role: string, refs: readonly SampleRef[], table?: ClassTable): (sample: Sample) => string | undefined {
  // Without a table, the built-in protocols' ignore value 255 is the only non-class value.
  const numClasses = table?.numClasses ?? 255;
  const ignore = table?.ignoreIndex ?? 255;
  const files = new Map(refs.map((r) => [r.name, r.labelPath ?? r.name]));
  const warned = new Set<string>();
  return (sample) => {
    if (sample.label === undefined || !onlyIgnore(sample.label, numClasses) || warned.has(sample.name)) return undefined;
    warned.add(sample.name);
    return `warning: every pixel of the ${role} label ${files.get(sample.name) ?? sample.name} maps to the ignore label ${ignore}; this sample adds nothing to the segmentation loss`;
  };
}

