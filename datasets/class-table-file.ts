// A class table from a JSON file (Node); the table's rules are class-table.ts, which the browser
// build shares.

import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { readFile } from "node:fs/promises";
import { type ClassTable, type ClassTableError, parseClassTable } from "./class-table";

/** Read and check a class table file; a missing file or bad JSON is refused naming the file. */
export function readClassTable(path: string): TE.TaskEither<ClassTableError, ClassTable> {
  return async () => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      return E.left({ source: path, entry: "the file", reason: `cannot be read: ${err instanceof Error ? err.message : String(err)}` });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return E.left({ source: path, entry: "the file", reason: `is not JSON: ${err instanceof Error ? err.message : String(err)}` });
    }
    return parseClassTable(json, path);
  };
}
