import { copyFileSync, existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError } from "./errors";
import { importWeights, renderSummary } from "./import-weights";
import { readSafetensors } from "./safetensors";
import { fixture, manifest, scratchDir, values } from "./test-fixtures";

describe("import-weights pipeline", () => {
  it("converts the init file to safetensors with stripped keys, recording its source", async () => {
    const out = join(scratchDir(), "init.safetensors");
    const r = await importWeights({ input: fixture(manifest.init.file), rule: "auto", out, expectShapes: undefined })();
    if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
    const summary = renderSummary(r.right);
    expect(summary).toMatch(/legacy format/);
    expect(summary).toMatch(/matches the prefix/);
    expect(summary).toMatch(/first\s+conv1\.weight F32 \[4,3,3,3\]/);
    expect(summary).toMatch(/last\s+layer3\.22\.bn3\.running_var F32 \[8\]/);

    const back = await readSafetensors(out)();
    if (E.isLeft(back)) throw new Error(renderCheckpointError(back.left));
    expect(back.right.tensors.size).toBe(7);
    expect(values(back.right.tensors.get("conv1.weight")!)).toEqual(manifest.init.tensors["Scale.conv1.weight"]!.values);
    expect(back.right.metadata).toMatchObject({ source: manifest.init.file, source_sha256: manifest.init.sha256, import_rule: "init" });
  });

  it("fails on a wrong shape in the expected table, naming the tensor, and writes nothing", async () => {
    const dir = scratchDir();
    const table = join(dir, "shapes.json");
    writeFileSync(table, JSON.stringify({ "conv1.weight": [4, 3, 3, 3], "bn1.weight": [64], "layer6.conv2d_list.0.bias": [19] }));
    const out = join(dir, "init.safetensors");
    const r = await importWeights({ input: fixture(manifest.init.file), rule: "init", out, expectShapes: table })();
    expect(E.isLeft(r)).toBe(true);
    if (E.isRight(r)) return;
    expect(r.left.tensor).toBe("bn1.weight");
    expect(renderCheckpointError(r.left)).toContain("tensor bn1.weight has shape [4], expected [64]");
    expect(existsSync(out)).toBe(false);
  });

  it("with a matching table, writes only the table's keys and reports the rest", async () => {
    const dir = scratchDir();
    const table = join(dir, "shapes.json");
    writeFileSync(table, JSON.stringify({ "conv1.weight": [4, 3, 3, 3], "layer6.conv2d_list.0.bias": [19] }));
    const out = join(dir, "init.safetensors");
    const r = await importWeights({ input: fixture(manifest.init.file), rule: "init", out, expectShapes: table })();
    if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
    expect(r.right.report?.missing).toEqual(["layer6.conv2d_list.0.bias"]);
    expect(renderSummary(r.right)).toMatch(/not loaded\s+6 keys: bn1\.weight/);
    const back = await readSafetensors(out)();
    expect(E.isRight(back) && [...back.right.tensors.keys()]).toEqual(["conv1.weight"]);
  });

  it("refuses the malicious checkpoint and writes nothing", async () => {
    const out = join(scratchDir(), "evil.safetensors");
    const r = await importWeights({ input: fixture("malicious_posix_system.pth"), rule: "auto", out, expectShapes: undefined })();
    expect(E.isLeft(r) && r.left.kind).toBe("unsafe");
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ["the same path", (p: string) => p],
    ["another spelling of the path", (p: string) => join(p, "..", ".", p.split("/").pop()!)],
    ["a symlink to it", (p: string) => {
      const link = join(scratchDir(), "link.safetensors");
      symlinkSync(p, link);
      return link;
    }],
  ])("refuses --out naming the input file (%s), leaving the input as it was", async (_, outFor) => {
    const input = join(scratchDir(), manifest.init.file);
    copyFileSync(fixture(manifest.init.file), input);
    const before = readFileSync(input);
    const r = await importWeights({ input, rule: "auto", out: outFor(input), expectShapes: undefined })();
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toMatch(/--out .* is the input file itself; the import would overwrite its source/);
    expect(readFileSync(input).equals(before)).toBe(true);
  });
});
