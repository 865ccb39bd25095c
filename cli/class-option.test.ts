// --classes on `npm run train` and `npm run eval`: parsed into the options, read and checked
// against the program's numClasses, every refusal naming the file (and the numbers).

import * as E from "fp-ts/lib/Either.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import type { GeneratedModule } from "../format/module";
import { renderTrainError } from "../train/errors";
import { classesFor } from "./class-option";
import { EVAL_USAGE, parseEvalOptions } from "./eval";
import { parseTrainOptions, TRAIN_USAGE } from "./options";

const dir = mkdtempSync(join(tmpdir(), "class-option-"));
const tableFile = (name: string, n: number): string => {
  const path = join(dir, name);
  const classes = Array.from({ length: n }, (_, k) => ({ name: `class${k}`, color: [k, k, k], labelIds: [k + 1] }));
  writeFileSync(path, JSON.stringify({ classes, ignoreIndex: 255 }));
  return path;
};
/** Only the fields protocolOf reads. */
const programWith = (numClasses: number) => ({ name: `toy-${numClasses}`, config: { numClasses } }) as unknown as GeneratedModule;

const message = (r: E.Either<{ kind: string; message: string }, unknown>): string =>
  E.isLeft(r) ? renderTrainError(r.left as Parameters<typeof renderTrainError>[0]) : "accepted";

describe("parsing", () => {
  test("npm run train takes --classes FILE and documents it", () => {
    const r = parseTrainOptions(["--classes", "mine.json"]);
    expect(E.isRight(r) && r.right.classesFile).toBe("mine.json");
    expect(TRAIN_USAGE).toContain("--classes FILE.json");
  });

  test("npm run eval takes --classes FILE and documents it", () => {
    const r = parseEvalOptions(["--restore-from", "w.safetensors", "--classes", "mine.json"]);
    expect(E.isRight(r) && r.right.classesFile).toBe("mine.json");
    expect(EVAL_USAGE).toContain("--classes FILE.json");
  });

  test("without --classes, no table file", () => {
    const r = parseTrainOptions([]);
    expect(E.isRight(r) && r.right.classesFile).toBeUndefined();
  });
});

describe("the classes a program runs with", () => {
  test("no --classes: the built-in protocol of 19, 16 or 13 classes, as before", async () => {
    for (const [n, p] of [[19, PROTOCOLS.cityscapes19], [16, PROTOCOLS.synthia16], [13, PROTOCOLS.common13]] as const) {
      const r = await classesFor(programWith(n), undefined);
      expect(E.isRight(r) && r.right).toBe(p);
    }
  });

  test("no --classes and no built-in protocol: refused, pointing at --classes", async () => {
    expect(message(await classesFor(programWith(7), undefined))).toBe(
      "no matching program: toy-7: no built-in evaluation protocol for 7 classes (19, 16 or 13); give the program's class table with --classes FILE.json",
    );
  });

  test("a user table of the program's class count is used, for any count", async () => {
    const path = tableFile("seven.json", 7);
    const r = await classesFor(programWith(7), path);
    expect(E.isRight(r) && r.right.names).toEqual(["class0", "class1", "class2", "class3", "class4", "class5", "class6"]);
    expect(E.isRight(r) && r.right.id).toBe(path);
  });

  test("a user table overrides the built-in protocol of a 19-class program", async () => {
    const r = await classesFor(programWith(19), tableFile("nineteen.json", 19));
    expect(E.isRight(r) && r.right.trainIds).toBeUndefined();
  });

  test("a class count other than the program's is refused, naming both numbers and the file", async () => {
    const path = tableFile("five.json", 5);
    expect(message(await classesFor(programWith(19), path))).toBe(
      `bad options: --classes ${path} lists 5 classes but program toy-19 has numClasses 19; give a table of 19 classes or a program compiled for 5`,
    );
  });

  test("a broken table is refused naming the file and the entry", async () => {
    const path = join(dir, "dup.json");
    writeFileSync(path, JSON.stringify({ classes: [{ name: "a", color: [0, 0, 0] }, { name: "a", color: [1, 1, 1] }] }));
    expect(message(await classesFor(programWith(2), path))).toBe(`bad options: --classes: class table ${path}: classes[1].name: "a" is already the name of classes[0]`);
  });

  test("a missing file is refused naming it", async () => {
    expect(message(await classesFor(programWith(2), join(dir, "absent.json")))).toMatch(/--classes: class table .*absent\.json: the file: cannot be read/);
  });
});
