// The label spaces of the four datasets and the three evaluation protocols.
//
// Pivot: every dataset's native label value is first mapped to a Cityscapes *trainId* (0..18, 255
// = ignore), then to the compact class index of a protocol (19, 16 or 13 classes). Both steps are
// 256-entry lookup tables, so mapping a label image is one array read per pixel. Every label set
// here is a ClassTable (class-table.ts): the datasets' tables map their raw values to trainIds,
// the protocols' tables map Cityscapes label ids to their class indices and name their trainIds.
// A user's table (--classes FILE.json) maps its dataset's raw values to its classes in one step.
//
// Sources: the Cityscapes ids, trainIds and colors are the table in docs §4.4 (the official
// `info.json` / evaluation palette). The SYNTHIA id -> trainId table is the mapping used by
// ADVENT/BDL for SYNTHIA-RAND-CITYSCAPES; the 13-class protocol (16 minus wall, fence, pole) is the
// one of Chen et al.'s Cross-City paper, which NTHU Cross-City labels use natively.

import { type ClassTable, type TableClass, classPalette, classTable, lutFromPairs } from "./class-table";

export const IGNORE = 255;

export interface CityscapesClass {
  readonly trainId: number;
  readonly name: string;
  readonly labelId: number;
  readonly color: readonly [number, number, number];
}

/** The 19 Cityscapes training classes in trainId order (docs §4.4). */
export const CITYSCAPES_CLASSES: readonly CityscapesClass[] = [
  { trainId: 0, name: "road", labelId: 7, color: [128, 64, 128] },
  { trainId: 1, name: "sidewalk", labelId: 8, color: [244, 35, 232] },
  { trainId: 2, name: "building", labelId: 11, color: [70, 70, 70] },
  { trainId: 3, name: "wall", labelId: 12, color: [102, 102, 156] },
  { trainId: 4, name: "fence", labelId: 13, color: [190, 153, 153] },
  { trainId: 5, name: "pole", labelId: 17, color: [153, 153, 153] },
  { trainId: 6, name: "light", labelId: 19, color: [250, 170, 30] },
  { trainId: 7, name: "sign", labelId: 20, color: [220, 220, 0] },
  { trainId: 8, name: "vegetation", labelId: 21, color: [107, 142, 35] },
  { trainId: 9, name: "terrain", labelId: 22, color: [152, 251, 152] },
  { trainId: 10, name: "sky", labelId: 23, color: [70, 130, 180] },
  { trainId: 11, name: "person", labelId: 24, color: [220, 20, 60] },
  { trainId: 12, name: "rider", labelId: 25, color: [255, 0, 0] },
  { trainId: 13, name: "car", labelId: 26, color: [0, 0, 142] },
  { trainId: 14, name: "truck", labelId: 27, color: [0, 0, 70] },
  { trainId: 15, name: "bus", labelId: 28, color: [0, 60, 100] },
  { trainId: 16, name: "train", labelId: 31, color: [0, 80, 100] },
  { trainId: 17, name: "motorcycle", labelId: 32, color: [0, 0, 230] },
  { trainId: 18, name: "bicycle", labelId: 33, color: [119, 11, 32] },
];

/** Cityscapes label ids by name, for code that writes labels (the synthetic generator). */
export const LABEL_ID = {
  unlabeled: 0,
  egoVehicle: 1,
  road: 7,
  sidewalk: 8,
  building: 11,
  wall: 12,
  fence: 13,
  pole: 17,
  light: 19,
  sign: 20,
  vegetation: 21,
  terrain: 22,
  sky: 23,
  person: 24,
  rider: 25,
  car: 26,
  truck: 27,
  bus: 28,
  train: 31,
  motorcycle: 32,
  bicycle: 33,
} as const;

/** The Cityscapes training classes as table entries, in trainId order. */
const TRAIN_ID_CLASSES: readonly TableClass[] = CITYSCAPES_CLASSES.map(({ name, color }) => ({ name, color }));

// The datasets' own label sets: their raw label values -> Cityscapes trainId, the pivot. Their
// classes are the 19 trainIds; a dataset that annotates fewer leaves the others unlabelled.

/** Cityscapes (and GTA5, which uses its label ids): label id -> trainId; void ids -> 255. */
export const CITYSCAPES_LABELS: ClassTable = classTable(
  "cityscapes-label-ids",
  TRAIN_ID_CLASSES,
  CITYSCAPES_CLASSES.map((c) => [c.labelId, c.trainId]),
  IGNORE,
);

/** SYNTHIA-RAND-CITYSCAPES class id -> trainId (the 16 classes it shares with Cityscapes). */
export const SYNTHIA_LABELS: ClassTable = classTable(
  "synthia-ids",
  TRAIN_ID_CLASSES,
  [
    [3, 0], // road
    [4, 1], // sidewalk
    [2, 2], // building
    [21, 3], // wall
    [5, 4], // fence
    [7, 5], // pole
    [15, 6], // traffic light
    [9, 7], // traffic sign
    [6, 8], // vegetation
    [1, 10], // sky
    [10, 11], // pedestrian
    [17, 12], // rider
    [8, 13], // car
    [19, 15], // bus
    [12, 17], // motorcycle
    [11, 18], // bicycle
  ],
  IGNORE,
);

/** Cityscapes / GTA5 label id -> trainId; every other id (void classes, license plate...) -> 255. */
export const LABEL_ID_TO_TRAIN_ID: Uint8Array = CITYSCAPES_LABELS.labelLut;

/** SYNTHIA-RAND-CITYSCAPES class id -> Cityscapes trainId. */
export const SYNTHIA_ID_TO_TRAIN_ID: Uint8Array = SYNTHIA_LABELS.labelLut;

export type ProtocolId = "cityscapes19" | "synthia16" | "common13";

/**
 * An evaluation protocol: a class table over some of the Cityscapes trainIds (class k is trainId
 * `trainIds[k]`), whose own labelLut reads Cityscapes label ids. Labels of the other datasets
 * reach it through their trainId table (layouts.ts, labelLut).
 */
export type Protocol = ClassTable & { readonly id: ProtocolId; readonly trainIds: readonly number[] };

function protocolOf(id: ProtocolId, trainIds: readonly number[]): Protocol {
  const classes = trainIds.map((t) => TRAIN_ID_CLASSES[t]!);
  const pairs = trainIds.map((t, k) => [CITYSCAPES_CLASSES[t]!.labelId, k] as const);
  return { ...classTable(id, classes, pairs, IGNORE, trainIds), id, trainIds };
}

export const PROTOCOLS: Readonly<Record<ProtocolId, Protocol>> = {
  cityscapes19: protocolOf("cityscapes19", CITYSCAPES_CLASSES.map((c) => c.trainId)),
  // The classes SYNTHIA annotates that Cityscapes trains on: all but terrain, truck, train.
  synthia16: protocolOf("synthia16", [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]),
  // synthia16 without wall, fence, pole: the Cross-City class list (road 0 ... bicycle 12).
  common13: protocolOf("common13", [0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]),
};

/** The `--protocol 19|16|13` spelling of a protocol. */
export function protocolByClassCount(n: number): Protocol | undefined {
  switch (n) {
    case 19:
      return PROTOCOLS.cityscapes19;
    case 16:
      return PROTOCOLS.synthia16;
    case 13:
      return PROTOCOLS.common13;
    default:
      return undefined;
  }
}

/** trainId -> class index of the protocol; trainIds outside it -> 255 (ignored in training and scoring). */
export function trainIdToProtocolLut(p: { readonly trainIds: readonly number[] }): Uint8Array {
  return lutFromPairs(p.trainIds.map((t, k) => [t, k]), IGNORE);
}

/** Class index of the protocol -> trainId (for the official trainId prediction PNGs). */
export function protocolToTrainIdLut(p: { readonly trainIds: readonly number[] }): Uint8Array {
  return lutFromPairs(p.trainIds.map((t, k) => [k, t]), IGNORE);
}

/** Compose two label lookups: first `a`, then `b` (255 stays 255). */
export function composeLuts(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(256);
  for (let v = 0; v < 256; v++) out[v] = a[v] === IGNORE ? IGNORE : b[a[v]!]!;
  return out;
}

/**
 * NTHU Cross-City labels hold common13 class indices already (road 0 ... bicycle 12): their label
 * set maps value k to the trainId of common13's class k.
 */
export const CROSS_CITY_LABELS: ClassTable = classTable(
  "cross-city-13",
  TRAIN_ID_CLASSES,
  PROTOCOLS.common13.trainIds.map((t, k) => [k, t]),
  IGNORE,
);

/** Cross-City label value -> trainId. */
export const CROSS_CITY_TO_TRAIN_ID: Uint8Array = CROSS_CITY_LABELS.labelLut;

/**
 * Map raw label values through a 256-entry table. 16-bit values above 255 (never a class in any
 * supported dataset) become 255.
 */
export function mapLabels(raw: Uint8Array | Uint16Array, lut: Uint8Array): Uint8Array {
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    out[i] = v < 256 ? lut[v]! : IGNORE;
  }
  return out;
}

/**
 * The Cityscapes color palette indexed by trainId, zero-padded to 256 entries (so 255 is black),
 * as the official evaluation script builds it: the palette of the 19-class table.
 */
export const TRAIN_ID_PALETTE: Uint8Array = classPalette(PROTOCOLS.cityscapes19);

/** The same colors indexed by Cityscapes label id (black for the void ids), for GTA5-style label PNGs. */
export const LABEL_ID_PALETTE: Uint8Array = (() => {
  const pal = new Uint8Array(256 * 3);
  for (const c of CITYSCAPES_CLASSES) pal.set(c.color, c.labelId * 3);
  return pal;
})();
