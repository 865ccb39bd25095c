// How a label file codes its classes, and the tables from its values to a protocol's class
// indices. Free of Node (layouts.ts lists files), so the browser build shares it.

import type { ClassTable } from "./class-table";
import { CROSS_CITY_TO_TRAIN_ID, LABEL_ID_TO_TRAIN_ID, SYNTHIA_ID_TO_TRAIN_ID, composeLuts, trainIdToProtocolLut } from "./classes";

/** How a label file codes its classes. */
export type LabelCoding = "cityscapes-label-id" | "synthia-id" | "cross-city-13";

/** The native label value -> trainId table of a label coding. */
export function codingToTrainId(coding: LabelCoding): Uint8Array {
  switch (coding) {
    case "cityscapes-label-id":
      return LABEL_ID_TO_TRAIN_ID;
    case "synthia-id":
      return SYNTHIA_ID_TO_TRAIN_ID;
    case "cross-city-13":
      return CROSS_CITY_TO_TRAIN_ID;
    default: {
      const never: never = coding;
      return never;
    }
  }
}

/**
 * Native label value -> class index of `table` (its ignore value for ignored and out-of-table
 * classes). A built-in protocol reads each dataset's coding through the trainId pivot; a user's
 * table names its raw label values itself, so its labelLut applies whatever the layout.
 */
export function labelLut(coding: LabelCoding, table: ClassTable): Uint8Array {
  return table.trainIds !== undefined ? composeLuts(codingToTrainId(coding), trainIdToProtocolLut({ trainIds: table.trainIds })) : table.labelLut;
}
