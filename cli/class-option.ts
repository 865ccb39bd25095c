// `--classes FILE.json` of `npm run train` and `npm run eval`: the user's class table
// (datasets/class-table.ts), read and checked before a device is acquired, so a broken entry is
// refused naming the file and the entry, and a table whose class count is not the program's
// numClasses is refused naming both numbers (train/trainer.ts, protocolOf).

import * as E from "fp-ts/lib/Either.js";
import { type ClassTable, renderClassTableError } from "../datasets/class-table.js";
import { readClassTable } from "../datasets/class-table-file.js";
import type { GeneratedModule } from "../format/module.js";
import { trainError, type TrainError } from "../train/errors.js";
import { protocolOf } from "../train/trainer.js";

/** The table of `--classes FILE`, or undefined when the option is absent (the built-in protocols). */
export async function readClassesOption(file: string | undefined): Promise<E.Either<TrainError, ClassTable | undefined>> {
  if (file === undefined) return E.right(undefined);
  const t = await readClassTable(file)();
  // A bad table is a bad option: the run cannot start as asked (exit status 2).
  return E.isLeft(t) ? E.left(trainError("options", `--classes: ${renderClassTableError(t.left)}`)) : t;
}

/** The classes `module` is run with: the --classes table if given (checked against it), else its built-in protocol. */
export async function classesFor(module: GeneratedModule, file: string | undefined): Promise<E.Either<TrainError, ClassTable>> {
  const table = await readClassesOption(file);
  return E.isLeft(table) ? table : protocolOf(module, table.right);
}
