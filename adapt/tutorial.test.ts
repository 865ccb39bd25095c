// docs/your-model.md cannot rot: its `file=programs.ts` code blocks, extracted from the markdown
// (not a copy), are compiled by `codegen --from --out` into self-contained modules, trained for two
// iterations on a tiny synthetic benchmark by `npm run train -- --module`, and the snapshot is
// evaluated by `npm run eval -- --module`.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../train/programs";
import { tinyData } from "../train/test-programs";
import { runScript as run } from "../testing/scripts";

const DOC = join(REPO_ROOT, "docs", "your-model.md");

/** The bodies of the ```ts file=NAME blocks of a markdown text, in order. */
export function codeBlocks(markdown: string, file: string): string[] {
  const blocks: string[] = [];
  const fence = new RegExp("^```ts file=" + file.replace(/\./g, "\\.") + "\\s*\\n([\\s\\S]*?)^```\\s*$", "gm");
  for (const m of markdown.matchAll(fence)) blocks.push(m[1]!);
  return blocks;
}

// The tutorial's file sits two folders below the repository root (examples/my-model/), so its
// relative imports resolve from .tmp/<dir>/ too; .tmp/ is ignored by git.
const work = join(REPO_ROOT, ".tmp", `tutorial-${process.pid}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("docs/your-model.md", () => {
  it("extracts the tutorial's program file from the markdown", () => {
    const blocks = codeBlocks(readFileSync(DOC, "utf8"), "programs.ts");
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks.join("\n")).toContain("buildAdaptationStep");
  });

  it("compiles, trains two iterations and evaluates the tutorial's network", async () => {
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, "programs.ts"), codeBlocks(readFileSync(DOC, "utf8"), "programs.ts").join("\n"));
    const out = join(work, "out");
    const codegen = await run("codegen/main.ts", ["--from", relative(REPO_ROOT, work), "--out", out]);
    expect(codegen.out).toContain("3 programs written");
    expect(codegen.code).toBe(0);

    const data = await tinyData(join(work, "data"));
    const runDir = join(work, "run");
    const train = await run("scripts/train.ts", [
      "--module", join(out, "my-model-adapt", "module.ts"),
      "--data-dir", join(data.dir, "gta5"), "--data-dir-target", join(data.dir, "cityscapes"),
      "--num-steps-stop", "2", "--save-pred-every", "2", "--snapshot-dir", runDir,
    ]);
    expect(train.code, train.out).toBe(0);
    const snapshot = readdirSync(runDir).find((f) => /^my-model-adapt_2\.safetensors$/.test(f));
    expect(snapshot, readdirSync(runDir).join(", ")).toBeDefined();

    const evaluation = await run("scripts/eval.ts", [
      "--module", join(out, "my-model-eval", "module.ts"),
      "--restore-from", join(runDir, snapshot!), "--data-dir", join(data.dir, "cityscapes"), "--save", join(work, "eval"),
    ]);
    expect(evaluation.code, evaluation.out).toBe(0);
    expect(evaluation.out).toMatch(/mIoU/);
    expect(existsSync(join(work, "eval", "scores.json"))).toBe(true);
  }, 240_000);
});
