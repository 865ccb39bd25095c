// A label set as data: the classes a model predicts (names and colors, in class-index order), the
// value that marks "no class" in a mapped label map, and how a label file's raw values map to
// class indices (a 256-entry table, one array read per pixel). The Cityscapes, GTA5, SYNTHIA and
// Cross-City label sets and the 19/16/13-class protocols are instances (classes.ts); a user's
// dataset brings its own as a JSON file (`--classes FILE.json`), read by `parseClassTable`:
//
//   {
//     "classes": [                                   // class index = position, 1..255 entries
//       { "name": "road", "color": [128, 64, 128], "labelIds": [7] },
//       { "name": "car",  "color": [0, 0, 142],    "labelIds": [26, 27] },
//       ...
//     ],
//     "ignoreIndex": 255                             // optional, default 255
//   }
//
//   name      a non-empty string, unique in the table (it heads the class's row in reports)
//   color     [r, g, b], integers 0..255 (the class's color in colorized predictions)
//   labelIds  the raw label values (0..255) of this class; optional (a class nothing is labelled
//             as, which is scored as absent); a value may belong to one class only
//   ignoreIndex  what every raw value of no class maps to; it must not be a class index
//
// Any raw value listed by no class is ignored in training and scoring. 16-bit label values above
// 255 are ignored too (classes.ts, mapLabels), so raw ids are bytes.

import * as E from "fp-ts/lib/Either.js";

export type Rgb = readonly [number, number, number];

export interface TableClass {
  readonly name: string;
  readonly color: Rgb;
}

export interface ClassTable {
  /** A built-in label set's id (cityscapes19, synthia16, ...) or the path of the user's file; reports name it. */
  readonly id: string;
  /** In class-index order. */
  readonly classes: readonly TableClass[];
  /** `classes.length`, kept beside it because every scorer and loss is sized by it. */
  readonly numClasses: number;
  /** The classes' names, in class-index order. */
  readonly names: readonly string[];
  /** The mapped value of "no class": never a class index, so the loss and the scorer skip it. */
  readonly ignoreIndex: number;
  /** Raw label value -> class index; `ignoreIndex` for every value of no class. */
  readonly labelLut: Uint8Array;
  /**
   * Built-in protocols only: class k is Cityscapes trainId `trainIds[k]`, the pivot through which
   * GTA5, SYNTHIA and Cross-City labels reach the protocol (classes.ts). Absent in a user table,
   * whose labels are read with `labelLut` whatever the dataset layout.
   */
  readonly trainIds?: readonly number[];
}

/** A 256-entry lookup table from (raw, class) pairs; every other raw value -> `fill`. */
export function lutFromPairs(pairs: Iterable<readonly [number, number]>, fill: number): Uint8Array {
  const lut = new Uint8Array(256).fill(fill);
  for (const [from, to] of pairs) lut[from] = to;
  return lut;
}

/** A table from its classes and raw-value pairs; the derived fields are filled in here, once. */
export function classTable(
  id: string,
  classes: readonly TableClass[],
  pairs: Iterable<readonly [number, number]>,
  ignoreIndex: number,
  trainIds?: readonly number[],
): ClassTable {
  return {
    id,
    classes,
    numClasses: classes.length,
    names: classes.map((c) => c.name),
    ignoreIndex,
    labelLut: lutFromPairs(pairs, ignoreIndex),
    ...(trainIds !== undefined ? { trainIds } : {}),
  };
}

/**
 * Class index -> color, 256 entries of [r, g, b], zero-padded: the ignore value and every index
 * past the classes are black, as the official evaluation script's padded palette makes them.
 */
export function classPalette(table: ClassTable): Uint8Array {
  const pal = new Uint8Array(256 * 3);
  table.classes.forEach((c, k) => pal.set(c.color, k * 3));
  return pal;
}

// ---------------------------------------------------------------------------------------------
// The user's JSON file.

export interface ClassTableError {
  /** The file the table came from. */
  readonly source: string;
  /** The entry at fault (`classes[3].color`, `ignoreIndex`), or the whole file. */
  readonly entry: string;
  readonly reason: string;
}

export function renderClassTableError(e: ClassTableError): string {
  return `class table ${e.source}: ${e.entry}: ${e.reason}`;
}

const isByte = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The most classes a table may have: class indices are bytes and one byte value must stay free to mean "ignore". */
export const MAX_CLASSES = 255;

interface ParsedClass {
  readonly name: string;
  readonly color: Rgb;
  readonly labelIds: readonly number[];
}

function parseClass(raw: unknown, at: string): E.Either<Omit<ClassTableError, "source">, ParsedClass> {
  const fail = (entry: string, reason: string) => E.left({ entry, reason });
  if (!isRecord(raw)) return fail(at, `must be an object {"name", "color", "labelIds"}, got ${JSON.stringify(raw)}`);
  const unknown = Object.keys(raw).filter((k) => k !== "name" && k !== "color" && k !== "labelIds");
  // A misspelt key ("labelId") would silently leave the class unlabelled.
  if (unknown.length > 0) return fail(at, `unknown key ${JSON.stringify(unknown[0])} (known: name, color, labelIds)`);
  const { name, color, labelIds = [] } = raw;
  if (typeof name !== "string" || name.trim() === "") return fail(`${at}.name`, `must be a non-empty string, got ${JSON.stringify(name)}`);
  // Colors are written into 8-bit PNGs: exactly three channels, each a byte.
  if (!Array.isArray(color) || color.length !== 3 || !color.every(isByte)) {
    return fail(`${at}.color`, `must be [r, g, b] with integers 0..255, got ${JSON.stringify(color)}`);
  }
  if (!Array.isArray(labelIds)) return fail(`${at}.labelIds`, `must be an array of label values 0..255, got ${JSON.stringify(labelIds)}`);
  // The lookup table has 256 entries: a raw value past 255 could never be read from it.
  const bad = labelIds.find((v) => !isByte(v));
  if (bad !== undefined) return fail(`${at}.labelIds`, `label value ${JSON.stringify(bad)} is not an integer in 0..255`);
  return E.right({ name, color: [color[0]!, color[1]!, color[2]!] as const, labelIds: labelIds as number[] });
}

/** The first rule the parsed classes break together (names, label ids, ignore index), or none. */
function crossCheck(classes: readonly ParsedClass[], ignoreIndex: number): Omit<ClassTableError, "source"> | undefined {
  const byName = new Map<string, number>();
  const byId = new Map<number, number>();
  for (const [k, c] of classes.entries()) {
    // Reports are keyed by class name: two rows with one name could not be told apart.
    const other = byName.get(c.name);
    if (other !== undefined) return { entry: `classes[${k}].name`, reason: `"${c.name}" is already the name of classes[${other}]` };
    byName.set(c.name, k);
    for (const id of c.labelIds) {
      // A pixel has one class: a raw value in two classes would make the table order decide.
      const owner = byId.get(id);
      if (owner !== undefined) {
        const whose = owner === k ? "this class already" : `classes[${owner}] ("${classes[owner]!.name}")`;
        return { entry: `classes[${k}].labelIds`, reason: `label value ${id} is mapped by ${whose}` };
      }
      byId.set(id, k);
    }
  }
  // Mapped labels hold class indices; an ignore value equal to one would erase that class.
  if (ignoreIndex < classes.length) {
    return { entry: "ignoreIndex", reason: `${ignoreIndex} is the index of classes[${ignoreIndex}] ("${classes[ignoreIndex]!.name}"); with ${classes.length} classes it must be ${classes.length}..255` };
  }
  return undefined;
}

/** A user's class table (the schema at the top of this file), or the first entry at fault. */
export function parseClassTable(json: unknown, source: string): E.Either<ClassTableError, ClassTable> {
  const fail = (entry: string, reason: string): E.Either<ClassTableError, ClassTable> => E.left({ source, entry, reason });
  if (!isRecord(json)) return fail("the file", `must be a JSON object {"classes": [...], "ignoreIndex": 255}`);
  const unknown = Object.keys(json).filter((k) => k !== "classes" && k !== "ignoreIndex");
  if (unknown.length > 0) return fail(unknown[0]!, "unknown key (known: classes, ignoreIndex)");
  const { classes, ignoreIndex = 255 } = json;
  if (!Array.isArray(classes)) return fail("classes", `must be an array of classes, got ${JSON.stringify(classes)}`);
  // A model with no output classes has nothing to train or score.
  if (classes.length === 0) return fail("classes", "is empty: a table needs at least one class");
  if (classes.length > MAX_CLASSES) return fail("classes", `has ${classes.length} classes; at most ${MAX_CLASSES} fit in 8-bit label maps beside the ignore value`);
  if (!isByte(ignoreIndex)) return fail("ignoreIndex", `must be an integer in 0..255, got ${JSON.stringify(ignoreIndex)}`);
  const parsed: ParsedClass[] = [];
  for (const [k, raw] of classes.entries()) {
    const c = parseClass(raw, `classes[${k}]`);
    if (E.isLeft(c)) return E.left({ source, ...c.left });
    parsed.push(c.right);
  }
  const broken = crossCheck(parsed, ignoreIndex);
  if (broken !== undefined) return E.left({ source, ...broken });
  return E.right(
    classTable(
      source,
      parsed.map(({ name, color }) => ({ name, color })),
      parsed.flatMap((c, k) => c.labelIds.map((id) => [id, k] as const)),
      ignoreIndex,
    ),
  );
}
