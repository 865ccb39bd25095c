// npm run import-weights -- <file.pth> [--rule init|model|advent-d|mobilenet|auto] [--out FILE.safetensors]
//                                      [--expect-shapes FILE.json] [--dry-run]
//
// Converts an official PyTorch checkpoint into a safetensors file with the same (PyTorch) keys,
// without Python. The output defaults to the input's name with .safetensors; --dry-run checks
// everything and writes nothing. Prints what was read, the SHA-256 check against the file name, the rule
// applied, and the first and last keys. Exit status: 0 done, 1 the checkpoint was refused,
// 2 bad arguments. The pipeline itself lives in checkpoint/import-weights.ts. torchvision's
// ImageNet mobilenet_v2 (`mobilenet_v2-b0353104.pth`) is recognised by its keys (rule mobilenet):
// the backbone of DeepLab-MobileNetV2, whose heads then start fresh in `npm run train`.

import { parseArgs } from "node:util";
import * as E from "fp-ts/lib/Either.js";
import { renderCheckpointError } from "../checkpoint/errors";
import { IMPORT_RULES, isImportRule } from "../checkpoint/import-rules";
import { importWeights, renderSummary, type ImportOptions } from "../checkpoint/import-weights";

const USAGE = `usage: npm run import-weights -- <file.pth> [--rule ${IMPORT_RULES.join("|")}] [--out FILE.safetensors] [--expect-shapes FILE.json] [--dry-run]`;

function parseOptions(argv: readonly string[]): E.Either<string, ImportOptions> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        rule: { type: "string", default: "auto" },
        out: { type: "string" },
        "expect-shapes": { type: "string" },
        "dry-run": { type: "boolean", default: false },
      },
    });
  } catch (e) {
    return E.left(e instanceof Error ? e.message : String(e));
  }
  const { positionals, values } = parsed;
  const input = positionals[0];
  if (input === undefined || positionals.length > 1) return E.left("expected exactly one input file");
  const rule = values.rule ?? "auto";
  if (!isImportRule(rule)) return E.left(`unknown rule ${rule}`);
  const out = values["dry-run"] ? undefined : (values.out ?? defaultOutput(input));
  return E.right({ input, rule, out, expectShapes: values["expect-shapes"] });
}

/** `weights/X-f81d91e8.pth` → `weights/X-f81d91e8.safetensors`: the hash suffix keeps naming the source. */
function defaultOutput(input: string): string {
  return `${input.replace(/\.(pth|pt|pkl|bin)$/, "")}.safetensors`;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (E.isLeft(options)) {
    console.error(`${options.left}\n${USAGE}`);
    return 2;
  }
  const result = await importWeights(options.right)();
  if (E.isLeft(result)) {
    console.error(renderCheckpointError(result.left));
    return 1;
  }
  console.log(renderSummary(result.right));
  return 0;
}

process.exitCode = await main();
