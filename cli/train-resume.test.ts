// The same guarantee through the command line: `npm run train` SIGKILLed at a random moment after
// its first snapshot, then `--resume`d, ends with the tensors of an uninterrupted run, bit for bit.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import { emitStandalone } from "../codegen/emit";
import type { Tensor } from "../checkpoint/tensor";
import { loadCheckpoint } from "../train/checkpoint";
import { renderTrainError } from "../train/errors";
import { scratch, tinyData, tinyTrainProgram } from "../train/test-programs";
import { startScript } from "../testing/scripts";

const STOP = 600;

/** `npm run train -- ...args`, started: the test kills it (node itself, so SIGKILL reaches the trainer). */
const trainCli = (args: readonly string[]) => startScript(join("scripts", "train.ts"), args);

async function finalGroups(dir: string) {
  const c = await loadCheckpoint(join(dir, `tiny-train_${STOP}.safetensors`))();
  if (E.isLeft(c)) throw new Error(renderTrainError(c.left));
  return c.right;
}

const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe("npm run train: SIGKILL and --resume", () => {
  it("a killed and resumed run ends bit for bit where an uninterrupted run ends", async () => {
    const work = scratch("cli-resume-");
    const moduleDir = join(work, "tiny-train");
    mkdirSync(moduleDir);
    const moduleFile = join(moduleDir, "module.ts");
    writeFileSync(moduleFile, emitStandalone(compileProgram(tinyTrainProgram("tiny-train")), "train/test-programs.ts"));
    const data = await tinyData(join(work, "data"));
    const args = (dir: string) => [
      "--module", moduleFile,
      "--data-dir", join(data.dir, "gta5"),
      "--data-dir-target", join(data.dir, "cityscapes"),
      "--num-steps-stop", String(STOP),
      "--save-pred-every", "25",
      "--log-every", "1",
      "--random-seed", "5",
      "--snapshot-dir", dir,
    ];

    const straightDir = join(work, "straight");
    const straight = trainCli(args(straightDir));
    const s = await straight.done;
    expect(s.code, straight.output()).toBe(0);

    const killedDir = join(work, "killed");
    const killed = trainCli(args(killedDir));
    // Wait for the first snapshot, then a random moment, then SIGKILL: no chance to clean up.
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (existsSync(join(killedDir, "tiny-train_25.safetensors"))) {
          clearInterval(poll);
          setTimeout(() => {
            killed.child.kill("SIGKILL");
            resolve();
          }, Math.random() * 400);
        }
      }, 5);
      void killed.done.then(() => {
        clearInterval(poll);
        reject(new Error(`the run ended before it could be killed:\n${killed.output()}`));
      });
    });
    const k = await killed.done;
    expect(k.signal).toBe("SIGKILL");
    expect(existsSync(join(killedDir, `tiny-train_${STOP}.safetensors`))).toBe(false);

    const resumed = trainCli([...args(killedDir), "--resume"]);
    const r = await resumed.done;
    expect(r.code, resumed.output()).toBe(0);
    const at = /resumed from \S+ at iteration (\d+)/.exec(resumed.output());
    expect(at, resumed.output()).not.toBeNull();
    expect(Number(at![1])).toBeLessThan(STOP);

    const a = await finalGroups(straightDir);
    const b = await finalGroups(killedDir);
    expect(b.iteration).toBe(a.iteration);
    expect(b.sampler).toEqual(a.sampler);
    let compared = 0;
    for (const [model, dict] of Object.entries(a.groups)) {
      for (const [key, t] of dict) {
        expect(bytes(b.groups[model]!.get(key)!).equals(bytes(t)), `${model}.${key}`).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10);
  });
});
