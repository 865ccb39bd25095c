import * as E from "fp-ts/lib/Either.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type ClassTable, classPalette, parseClassTable, renderClassTableError } from "./class-table";
import { readClassTable } from "./class-table-file";

const ROAD = { name: "road", color: [128, 64, 128], labelIds: [7] };
const CAR = { name: "car", color: [0, 0, 142], labelIds: [26, 27] };

function ok(json: unknown): ClassTable {
  const r = parseClassTable(json, "mine.json");
  if (E.isLeft(r)) throw new Error(renderClassTableError(r.left));
  return r.right;
}

/** The rendered refusal, which must name the file and the entry. */
function refusal(json: unknown): string {
  const r = parseClassTable(json, "mine.json");
  if (E.isRight(r)) throw new Error("accepted");
  return renderClassTableError(r.left);
}

describe("a valid table", () => {
  test("classes in order, label ids mapped to their class, every other value to the ignore index", () => {
    const t = ok({ classes: [ROAD, CAR] });
    expect(t.names).toEqual(["road", "car"]);
    expect(t.numClasses).toBe(2);
    expect(t.ignoreIndex).toBe(255);
    expect(t.id).toBe("mine.json");
    const expected = new Array<number>(256).fill(255);
    expected[7] = 0;
    expected[26] = 1;
    expected[27] = 1;
    expect(Array.from(t.labelLut)).toEqual(expected);
    expect(t.trainIds).toBeUndefined();
  });

  test("a custom ignore index past the classes fills the unmapped values", () => {
    const t = ok({ classes: [ROAD, CAR], ignoreIndex: 2 });
    expect(t.labelLut[0]).toBe(2);
    expect(t.labelLut[7]).toBe(0);
  });

  test("labelIds may be left out: the class is never labelled", () => {
    const t = ok({ classes: [{ name: "road", color: [1, 2, 3] }] });
    expect(t.labelLut.every((v) => v === 255)).toBe(true);
  });

  test("the palette colors class k with its color, zero-padded", () => {
    const pal = classPalette(ok({ classes: [ROAD, CAR] }));
    expect(Array.from(pal.subarray(0, 6))).toEqual([128, 64, 128, 0, 0, 142]);
    expect(Array.from(pal.subarray(6, 9))).toEqual([0, 0, 0]);
    expect(Array.from(pal.subarray(255 * 3))).toEqual([0, 0, 0]);
  });
});

describe("refusals name the file and the entry", () => {
  test("not an object", () => {
    expect(refusal([ROAD])).toMatch(/^class table mine\.json: the file: must be a JSON object/);
  });

  test("an empty table", () => {
    expect(refusal({ classes: [] })).toBe("class table mine.json: classes: is empty: a table needs at least one class");
  });

  test("more than 255 classes", () => {
    const classes = Array.from({ length: 256 }, (_, k) => ({ name: `c${k}`, color: [0, 0, 0] }));
    expect(refusal({ classes })).toMatch(/classes: has 256 classes; at most 255/);
  });

  test("duplicate names", () => {
    expect(refusal({ classes: [ROAD, CAR, { ...ROAD, labelIds: [1] }] })).toBe('class table mine.json: classes[2].name: "road" is already the name of classes[0]');
  });

  test("a label id mapped to two classes", () => {
    expect(refusal({ classes: [ROAD, { ...CAR, labelIds: [26, 7] }] })).toBe('class table mine.json: classes[1].labelIds: label value 7 is mapped by classes[0] ("road")');
  });

  test("a label id listed twice in one class", () => {
    expect(refusal({ classes: [{ ...ROAD, labelIds: [7, 7] }] })).toMatch(/classes\[0\]\.labelIds: label value 7 is mapped by this class already/);
  });

  test.each([[256], [-1], [1.5], ["7"]])("a label id outside 0..255: %j", (id) => {
    expect(refusal({ classes: [ROAD, { ...CAR, labelIds: [26, id] }] })).toBe(`class table mine.json: classes[1].labelIds: label value ${JSON.stringify(id)} is not an integer in 0..255`);
  });

  test.each([[[1, 2]], [[1, 2, 3, 4]], [[0, 0, 256]], [[0, -1, 0]], [[0, 0.5, 0]], ["#ff0000"]])("a color that is not 3 bytes: %j", (color) => {
    expect(refusal({ classes: [{ ...ROAD, color }] })).toMatch(/^class table mine\.json: classes\[0\]\.color: must be \[r, g, b\] with integers 0\.\.255/);
  });

  test("an ignore index equal to a class index", () => {
    expect(refusal({ classes: [ROAD, CAR], ignoreIndex: 1 })).toBe(
      'class table mine.json: ignoreIndex: 1 is the index of classes[1] ("car"); with 2 classes it must be 2..255',
    );
  });

  test("an ignore index that is not a byte", () => {
    expect(refusal({ classes: [ROAD], ignoreIndex: 300 })).toMatch(/ignoreIndex: must be an integer in 0\.\.255, got 300/);
  });

  test("a class without a name", () => {
    expect(refusal({ classes: [{ color: [0, 0, 0] }] })).toMatch(/classes\[0\]\.name: must be a non-empty string/);
  });

  test("a misspelt key in a class", () => {
    expect(refusal({ classes: [{ name: "road", color: [0, 0, 0], labelId: [7] }] })).toMatch(/classes\[0\]: unknown key "labelId"/);
  });

  test("an unknown top-level key", () => {
    expect(refusal({ classes: [ROAD], ignore: 255 })).toMatch(/mine\.json: ignore: unknown key/);
  });
});

describe("reading the file", () => {
  const dir = mkdtempSync(join(tmpdir(), "class-table-"));

  test("a valid file", async () => {
    const path = join(dir, "ok.json");
    writeFileSync(path, JSON.stringify({ classes: [ROAD, CAR] }));
    const r = await readClassTable(path)();
    expect(E.isRight(r) && r.right.names).toEqual(["road", "car"]);
  });

  test("a missing file and a file that is not JSON are refused naming the file", async () => {
    const missing = await readClassTable(join(dir, "none.json"))();
    expect(E.isLeft(missing) && renderClassTableError(missing.left)).toMatch(/none\.json: the file: cannot be read/);
    const path = join(dir, "bad.json");
    writeFileSync(path, "{ classes: ");
    const bad = await readClassTable(path)();
    expect(E.isLeft(bad) && renderClassTableError(bad.left)).toMatch(/bad\.json: the file: is not JSON/);
  });
});
