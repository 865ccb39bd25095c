// Finding the programs users export from examples/, through the TypeScript type checker.
//
// A program is any exported value whose type is the DSL's ProgramExport (or an array of
// them): its `kind` property has the literal type "dsl.program". The type checker decides,
// not the export's name, so programs can be organised however users like.

import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as E from "fp-ts/lib/Either.js";
import { Project, type Type } from "ts-morph";
import type { ProgramExport } from "../dsl/index";

export interface Discovered {
  /** Repository-relative path of the source file. */
  readonly file: string;
  readonly exportName: string;
}

function isProgramType(t: Type): boolean {
  const probe = t.isArray() ? t.getArrayElementType() : t;
  const kind = probe?.getProperty("kind");
  const decl = kind?.getDeclarations()[0];
  if (!kind || !decl) return false;
  return kind.getTypeAtLocation(decl).getLiteralValue() === "dsl.program";
}

/**
 * Exported program values of every `<folder>/**\/*.ts` file (tests excluded), sorted. `folder`
 * is relative to `root` (or absolute): examples/ for the repository's programs.
 */
export function discoverPrograms(root: string, folder = "examples"): Discovered[] {
  const project = new Project({ tsConfigFilePath: path.join(root, "tsconfig.json"), skipAddingFilesFromTsConfig: true });
  const dir = path.resolve(root, folder);
  project.addSourceFilesAtPaths([path.join(dir, "**/*.ts"), "!" + path.join(dir, "**/*.test.ts")]);
  const found: Discovered[] = [];
  for (const file of project.getSourceFiles()) {
    for (const [exportName, decls] of file.getExportedDeclarations()) {
      const decl = decls[0];
      if (decl && isProgramType(decl.getType())) {
        found.push({ file: path.relative(root, file.getFilePath()).split(path.sep).join("/"), exportName });
      }
    }
  }
  return found.sort((a, b) => (a.file + a.exportName < b.file + b.exportName ? -1 : 1));
}

/** Imports the discovered exports and flattens them to programs, checking names are unique. */
export async function loadPrograms(root: string, found: readonly Discovered[]): Promise<E.Either<string, { source: string; program: ProgramExport }[]>> {
  const out: { source: string; program: ProgramExport }[] = [];
  const names = new Map<string, string>();
  for (const d of found) {
    const mod = (await import(pathToFileURL(path.resolve(root, d.file)).href)) as Record<string, unknown>;
    const value = mod[d.exportName];
    const list = (Array.isArray(value) ? value : [value]) as ProgramExport[];
    for (const p of list) {
      const source = `${d.file}#${d.exportName}`;
      const clash = names.get(p.name);
      if (clash) return E.left(`program name "${p.name}" is exported twice: ${clash} and ${source}`);
      names.set(p.name, source);
      out.push({ source, program: p });
    }
  }
  return E.right(out);
}
