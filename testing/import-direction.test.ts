// One direction of imports: every top-level folder is a stage, and a file imports only from
// its own stage or the stages its rule below names. This test reads the static imports of
// every source file with the TypeScript parser and lists each `file -> import` that breaks a
// rule.
//
// Stages, lowest first:
//   format                    the leaf: the module schema and numerics every stage shares
//   dsl <- codegen            build time; `generated` (the artifacts) reads only format
//   dsl <- gradcheck          the finite-difference check of every VJP (test tooling)
//   dsl <- adapt              adaptation steps and evaluation programs for any network
//   runtime                   runs generated modules; never the DSL or the compiler
//   checkpoint, datasets,     libraries of the application, over format
//   evaluation, plots
//   train <- cli <- demo      the application
//   train <- web              the browser page (web/page/ is bundled: no Node module, see web.test.ts)
//   examples                  the programs (over dsl and codegen)
//   scripts, bench            entry points: anything
//
// Test code is exempt from the direction rule: `*.test.ts` files, the helper folders
// `testing/` (top level, and a stage's own, such as codegen/testing/) and `test-*` / `test_*`
// helper files. Tests of codegen execute the generated kernels on the runtime and compare with
// the DSL's interpreter, so they must reach across stages. What keeps that exemption honest is
// the second check: no production file imports test code.

import fs from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..");

/** "*": may import any stage. */
type Allowed = readonly string[] | "*";

/**
 * The stages each stage may import, besides itself and packages. The application libraries
 * get the smallest rule that holds today.
 */
const RULES: Readonly<Record<string, Allowed>> = {
  format: [],
  dsl: ["format"],
  codegen: ["format", "dsl"],
  gradcheck: ["format", "dsl"],
  adapt: ["format", "dsl"],
  generated: ["format"],
  runtime: ["format"],
  checkpoint: ["format"],
  datasets: ["format"],
  evaluation: ["format", "datasets"],
  plots: ["format", "datasets", "evaluation"],
  train: ["format", "runtime", "generated", "checkpoint", "datasets", "evaluation", "plots", "examples"],
  cli: ["format", "runtime", "generated", "checkpoint", "datasets", "evaluation", "plots", "examples", "train"],
  demo: ["format", "runtime", "generated", "checkpoint", "datasets", "evaluation", "plots", "examples", "train", "cli"],
  examples: ["format", "dsl", "adapt", "codegen"],
  // The page (web/page/, bundled for the browser) and its Node side: build, server, browser driver.
  web: ["format", "runtime", "generated", "checkpoint", "datasets", "evaluation", "train"],
  // Only test helpers live here, and test code may import anything (see the header).
  testing: "*",
  scripts: "*",
  bench: "*",
};

/** A specifier as written, and where it sits. */
interface ImportRef {
  readonly file: string;
  readonly specifier: string;
}

/**
 * Module specifiers of a file's static imports: `import ... from`, `export ... from`,
 * `import x = require(...)` and `import("...")` with a literal argument. Type-only imports
 * count: a type is as much a dependency on a stage's design as a value.
 */
function importSpecifiers(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      out.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg !== undefined && ts.isStringLiteralLike(arg)) out.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The top-level folder of a repository-relative path; "(root)" for a file at the top. */
function stageOf(relPath: string): string {
  const parts = relPath.split("/");
  return parts.length > 1 ? parts[0]! : "(root)";
}

/** Where a relative specifier points, repository-relative; undefined for a package. */
function resolveRelative(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
}

/** Test code: exempt from the direction rule, and never imported by production code. */
function isTestCode(relPath: string): boolean {
  const parts = relPath.split("/");
  const base = parts[parts.length - 1]!;
  return base.endsWith(".test.ts") || parts.slice(0, -1).includes("testing") || /^test[-_]/.test(base);
}

const isNodeBuiltin = (specifier: string): boolean => specifier.startsWith("node:") || builtinModules.includes(specifier);

/** `file -> import` for every relative import of a production file that its stage's rule forbids. */
function directionViolations(refs: readonly ImportRef[], rules: Readonly<Record<string, Allowed>>): string[] {
  const out: string[] = [];
  for (const { file, specifier } of refs) {
    const target = resolveRelative(file, specifier);
    if (target === undefined || isTestCode(file)) continue;
    const from = stageOf(file);
    const to = target.startsWith("..") ? "(outside the repository)" : stageOf(target);
    const allowed = rules[from];
    if (allowed === undefined) out.push(`${file} -> ${specifier} (no rule for the folder ${from}/)`);
    else if (to !== from && allowed !== "*" && !allowed.includes(to)) out.push(`${file} -> ${specifier}`);
  }
  return out;
}

/** `file -> import` for every production file that imports test code. */
function testCodeImports(refs: readonly ImportRef[]): string[] {
  return refs
    .filter(({ file, specifier }) => {
      const target = resolveRelative(file, specifier);
      return !isTestCode(file) && target !== undefined && isTestCode(`${target.replace(/\.(ts|js|mjs)$/, "")}.ts`);
    })
    .map(({ file, specifier }) => `${file} -> ${specifier}`);
}

/**
 * `file -> import` for every import of format/'s production files that is neither format/
 * itself nor a node built-in: no package either, so every stage can
 * take the schema and the shared numerics without pulling a dependency in.
 */
function formatLeafViolations(refs: readonly ImportRef[]): string[] {
  return refs
    .filter(({ file }) => stageOf(file) === "format" && !isTestCode(file))
    .filter(({ file, specifier }) => {
      const target = resolveRelative(file, specifier);
      return target === undefined ? !isNodeBuiltin(specifier) : stageOf(target) !== "format";
    })
    .map(({ file, specifier }) => `${file} -> ${specifier}`);
}

/** Every .ts file under the repository's top-level folders, repository-relative, sorted. */
function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile() && rel.endsWith(".ts") && !rel.endsWith(".d.ts") && dir !== "") out.push(rel);
    }
  };
  walk("");
  return out.sort();
}

const refsOf = (files: readonly string[]): ImportRef[] =>
  files.flatMap((file) => importSpecifiers(file, fs.readFileSync(path.join(ROOT, file), "utf8")).map((specifier) => ({ file, specifier })));

const listed = (lines: readonly string[]) => (lines.length === 0 ? "" : `\n  ${lines.join("\n  ")}\n`);

describe("the import direction of this repository", () => {
  const files = sourceFiles(ROOT);
  const refs = refsOf(files);

  it("reads a non-trivial tree (the scan is not vacuous)", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(refs.length).toBeGreaterThan(500);
  });

  it("every production file imports only its own stage and the stages below it", () => {
    // No exemption list: the last known violations (plots -> train) are gone, and a new one
    // is fixed where it is made rather than recorded.
    const found = directionViolations(refs, RULES);
    expect(listed(found), `imports against the direction (file -> import):${listed(found)}`).toBe("");
  });

  it("format/ imports nothing but format/ and node built-ins", () => {
    const found = formatLeafViolations(refs);
    expect(listed(found), `format/ must stay the leaf (file -> import):${listed(found)}`).toBe("");
  });

  it("web/page/ (the browser bundle's source) imports no Node built-in and no Node-only package", () => {
    const found = refs
      .filter(({ file }) => file.startsWith("web/page/"))
      .filter(({ specifier }) => isNodeBuiltin(specifier) || /^(sharp|webgpu|playwright-core|esbuild)(\/|$)/.test(specifier))
      .map(({ file, specifier }) => `${file} -> ${specifier}`);
    expect(listed(found), `the page runs in a browser (file -> import):${listed(found)}`).toBe("");
  });

  it("no production file imports test code", () => {
    const found = testCodeImports(refs);
    expect(listed(found), `production code importing test helpers (file -> import):${listed(found)}`).toBe("");
  });
});

describe("the checker itself", () => {
  it("reads imports, re-exports, require imports and literal dynamic imports, types included", () => {
    const text = [
      `import type { A } from "./a";`,
      `import * as b from "../b/b.js";`,
      `export { c } from "./c";`,
      `export * from "./d";`,
      `import e = require("./e");`,
      `const f = await import("../f/f");`,
      `const g = await import(name);`,
      `import "./h";`,
    ].join("\n");
    expect(importSpecifiers("x/y.ts", text)).toEqual(["./a", "../b/b.js", "./c", "./d", "./e", "../f/f", "./h"]);
  });

  it("flags an upward import, ignores packages and imports within a stage", () => {
    const refs = [
      { file: "runtime/runner.ts", specifier: "../dsl/ir.js" },
      { file: "runtime/runner.ts", specifier: "./device.js" },
      { file: "runtime/runner.ts", specifier: "fp-ts/lib/Either.js" },
      { file: "codegen/emit.ts", specifier: "../format/module" },
      { file: "plots/chart.ts", specifier: "../train/errors.js" },
      { file: "train/trainer.ts", specifier: "../plots/chart.js" },
    ];
    expect(directionViolations(refs, RULES)).toEqual(["runtime/runner.ts -> ../dsl/ir.js", "plots/chart.ts -> ../train/errors.js"]);
  });

  it("exempts test code from the direction but not production code from importing it", () => {
    const refs = [
      { file: "codegen/differential.conv.test.ts", specifier: "../runtime/runner" },
      { file: "codegen/testing/differential.ts", specifier: "../../runtime/runner" },
      { file: "codegen/emit.ts", specifier: "./testing/cases" },
      { file: "train/trainer.ts", specifier: "./test-programs.js" },
    ];
    expect(directionViolations(refs, RULES)).toEqual([]);
    expect(testCodeImports(refs)).toEqual(["codegen/emit.ts -> ./testing/cases", "train/trainer.ts -> ./test-programs.js"]);
  });

  it("names a folder without a rule and an import leaving the repository", () => {
    const refs = [
      { file: "newstage/a.ts", specifier: "../format/module" },
      { file: "dsl/a.ts", specifier: "../../elsewhere/b" },
    ];
    expect(directionViolations(refs, RULES)).toEqual(["newstage/a.ts -> ../format/module (no rule for the folder newstage/)", "dsl/a.ts -> ../../elsewhere/b"]);
  });

  it("keeps format/ a leaf: packages and other stages are flagged, node built-ins and tests are not", () => {
    const refs = [
      { file: "format/a.ts", specifier: "node:zlib" },
      { file: "format/a.ts", specifier: "fs" },
      { file: "format/a.ts", specifier: "./module.js" },
      { file: "format/a.ts", specifier: "fp-ts/lib/Either.js" },
      { file: "format/a.ts", specifier: "../dsl/ir" },
      { file: "format/a.test.ts", specifier: "vitest" },
    ];
    expect(formatLeafViolations(refs)).toEqual(["format/a.ts -> fp-ts/lib/Either.js", "format/a.ts -> ../dsl/ir"]);
  });
});
