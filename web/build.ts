// The page's bundle: esbuild, one call. esbuild rather than Vite because the page is one entry
// point with no dev-server needs: esbuild bundles TypeScript directly, tree-shakes the generated
// kernel pool down to the kernels the three programs use, and is already installed (tsx and
// vitest run on it), so the build adds no configuration and no second toolchain.
//
// platform "browser" makes any `node:` import (or sharp, webgpu) a build error; buildPage also
// reports every input the bundle pulled in, so web.test.ts can name an offending file.

import * as E from "fp-ts/lib/Either.js";
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_ROOT = dirname(fileURLToPath(import.meta.url));
/** The ignored output folder the page is built into. */
export const WEB_OUT = join(WEB_ROOT, "..", "out", "web");

export interface BuiltPage {
  readonly dir: string;
  /** Source files in the bundle, relative to the repository root. */
  readonly inputs: readonly string[];
  /** Imports the bundle left to the runtime (must be none: a page has no `node:` modules). */
  readonly external: readonly string[];
  readonly bytes: number;
}

/** The page's entry point. */
export const PAGE_ENTRY = join(WEB_ROOT, "page", "main.ts");

/** Bundles `entry` (the page's) into `out` with index.html beside it; Left: esbuild's messages. */
export async function buildPage(out: string = WEB_OUT, entry: string = PAGE_ENTRY): Promise<E.Either<string, BuiltPage>> {
  mkdirSync(out, { recursive: true });
  try {
    const r = await build({
      entryPoints: [entry],
      outfile: join(out, "main.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      sourcemap: true,
      metafile: true,
      logLevel: "silent",
    });
    copyFileSync(join(WEB_ROOT, "page", "index.html"), join(out, "index.html"));
    const inputs = Object.keys(r.metafile.inputs);
    const output = Object.values(r.metafile.outputs).find((o) => o.entryPoint !== undefined);
    const external = Object.values(r.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
    return E.right({ dir: out, inputs, external, bytes: output?.bytes ?? 0 });
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    return E.left(
      errors !== undefined
        ? errors.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ""}${x.text}`).join("\n")
        : e instanceof Error
          ? e.message
          : String(e),
    );
  }
}
