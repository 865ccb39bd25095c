// Checks on a label map against its image, made where the two are loaded (preprocess.ts).
//
// The official loaders resize the image and the label to the input size independently, so a
// label stored at another size than its image is stretched onto it without a word: its pixels
// then describe other pixels of the image. A label must have its image's stored size; one that
// does not is refused, naming the label file. The stored size is read from the image's header
// (sharp reads no pixels for it), before any resize.

import * as TE from "fp-ts/lib/TaskEither.js";
import * as E from "fp-ts/lib/Either.js";
import sharp from "sharp";
import { IGNORE } from "./classes";
import { type DataError, corruptFile, errorText } from "./errors";
import type { Size } from "./image";

/** Width and height as stored in the image file's header. */
export function storedImageSize(path: string): TE.TaskEither<DataError, Size> {
  return TE.tryCatch(
    async () => {
      const m = await sharp(path).metadata();
      if (m.width === undefined || m.height === undefined) throw new Error("no dimensions in the header");
      return { width: m.width, height: m.height };
    },
    (err) => corruptFile(path, `cannot read the image size: ${errorText(err)}`),
  );
}

export function checkLabelSize(labelPath: string, label: Size, imagePath: string, image: Size): E.Either<DataError, void> {
  if (label.width === image.width && label.height === image.height) return E.right(undefined);
  return E.left(
    corruptFile(
      labelPath,
      `the label is ${label.width}x${label.height} but its image ${imagePath} is ${image.width}x${image.height}; a label must have its image's size (resizing it would misplace every class boundary)`,
    ),
  );
}

/**
 * Whether no pixel of a mapped label is a class: such a label trains nothing. Every value from
 * `numClasses` up is ignored by the loss and the scorer (255, or a user table's ignore index).
 */
export function onlyIgnore(label: Uint8Array, numClasses = IGNORE): boolean {
  for (let i = 0; i < label.length; i++) if (label[i]! < numClasses) return false;
  return true;
}
