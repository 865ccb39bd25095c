// Every shader of every generated module (generated/, written by `npm run codegen`) passes
// Dawn's WGSL validation (Tint). createShaderModule + getCompilationInfo only parses and
// validates: no pipeline is created, so lavapipe's LLVM never runs and this stays fast.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { tsImport } from "tsx/esm/api";
import { describe, expect, it } from "vitest";
import type { GeneratedModule } from "../format/module";
import { renderCompilationMessage } from "../runtime/runner";
import { device } from "./testing/differential";

const generated = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "generated");

/**
 * The generated modules by name, loaded lazily: from generated/index.ts (the registry codegen
 * writes), or, before a full codegen run has written it, from each generated/<name>/module.ts.
 * Loaded through tsx's loader rather than vitest's transform pipeline, which takes about a
 * minute for the ~50 MB of generated TypeScript (tsx: a few seconds).
 */
async function generatedModules(): Promise<[string, () => Promise<GeneratedModule>][]> {
  const index = path.join(generated, "index.ts");
  if (fs.existsSync(index)) {
    const registry = (await tsImport(index, import.meta.url)) as { modules: Record<string, () => Promise<GeneratedModule>> };
    return Object.entries(registry.modules);
  }
  if (!fs.existsSync(generated)) return [];
  return fs
    .readdirSync(generated)
    .filter((name) => fs.existsSync(path.join(generated, name, "module.ts")))
    .sort()
    .map((name) => [name, async () => ((await tsImport(path.join(generated, name, "module.ts"), import.meta.url)) as { module: GeneratedModule }).module]);
}

/** Shaders already validated (modules share many: the same layers at the same sizes). */
const validated = new Set<string>();

const modules = await generatedModules();

/** The features a shader enables (`enable subgroups;`). */
const enables = (wgsl: string): string[] => [...wgsl.matchAll(/^\s*enable\s+([\w, ]+);/gm)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()));

describe("generated WGSL", () => {
  if (modules.length === 0) it.skip("no generated modules yet: run `npm run codegen` to write generated/", () => {});

  it.each(modules.map(([name, load]) => ({ name, load })))("every shader of $name passes Dawn's validation", async ({ load }) => {
    const module = await load();
    const { device: gpu } = await device();
    expect(module.shaders.length).toBeGreaterThan(0);
    const errors: string[] = [];
    for (const shader of module.shaders) {
      if (validated.has(shader.wgsl)) continue;
      validated.add(shader.wgsl);
      // A variant for a feature this device lacks cannot be validated here (it would never run here).
      if (enables(shader.wgsl).some((f) => !gpu.features.has(f as GPUFeatureName))) continue;
      gpu.pushErrorScope("validation");
      const compiled = gpu.createShaderModule({ label: shader.name, code: shader.wgsl });
      const [info, scope] = await Promise.all([compiled.getCompilationInfo(), gpu.popErrorScope()]);
      for (const m of info.messages.filter((m) => m.type === "error")) errors.push(renderCompilationMessage(shader.name, shader.wgsl, m));
      if (scope && info.messages.every((m) => m.type !== "error")) errors.push(`${shader.name}: ${scope.message}`);
    }
    expect(errors).toEqual([]);
  });
});
