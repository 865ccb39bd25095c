// Names of the pool's kernels, from the program scopes that first use them.
//
// Inside the compiler a kernel is identified by its content (codegen/pool.ts, kernelId). As a
// name in generated/ a content hash would change with every edit of the kernel's template, and
// every program that uses the kernel would change with it. So the pool names a kernel after its
// first use, in program order and dispatch order: template, gradient or not, the parameter it
// reads (else its scope), its op, its part and adapter class, e.g.
// `conv2d_grad_G_layer1_0_conv2_conv2dWeightGrad_cpu`. A template edit then rewrites that
// template's pool file only; the names stay. A name, once in the pool, is kept by later runs
// (also `codegen --only`), so unrelated edits do not rename kernels either.

import type { Dispatch, GeneratedModule, KernelVariant, ShaderSpec } from "../format/module";
import { identifierPart } from "../format/module-table";
import { kernelId } from "./pool";

/** The template of a pool kernel: its name up to the first underscore (templates have none). */
export const templateOf = (kernel: Pick<ShaderSpec, "name">): string => kernel.name.slice(0, kernel.name.indexOf("_"));


/** The name a kernel gets from the dispatch (and variant) that first uses it. */
export function nameFromUse(template: string, d: Dispatch, v: KernelVariant): string {
  const p = d.provenance;
  const where = p?.param ? identifierPart(p.param) : p?.scope ? identifierPart(p.scope) : "step";
  const op = p && p.op !== template ? p.op : "";
  return [template, p?.pass === "backward" ? "grad" : "", where, op, p?.part ?? "", v.adapter ?? ""].filter((s) => s !== "").join("_");
}

export class KernelNames {
  /** Content id (kernelId) -> name. */
  private readonly byContent = new Map<string, string>();
  private readonly taken = new Set<string>();

  /** `existing`: the kernels already in the pool (their names are kept). */
  constructor(existing: readonly ShaderSpec[] = []) {
    for (const k of existing) {
      const template = templateOf(k);
      this.byContent.set(kernelId(template, k.wgsl, k.access ?? []), k.name);
      this.taken.add(k.name);
    }
  }

  private fresh(base: string): string {
    let name = base;
    for (let i = 2; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** `m` with its kernels named (compiled kernels are named by content id, kernelId). */
  rename(m: GeneratedModule): GeneratedModule {
    for (const phase of m.phases) {
      for (const d of phase.dispatches) {
        for (const v of d.variants) {
          const content = m.shaders[v.shader]!.name;
          if (!this.byContent.has(content)) this.byContent.set(content, this.fresh(nameFromUse(templateOf({ name: content }), d, v)));
        }
      }
    }
    return { ...m, shaders: m.shaders.map((s) => ({ ...s, name: this.byContent.get(s.name) ?? s.name })) };
  }
}
