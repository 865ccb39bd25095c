// The Node side of tuning: where the cache file lives, ADAPTSEG_TUNE, and the file store: it
// survives a restart (a new store on the same path), leaves no temporary file, and a corrupt
// file is ignored with a warning naming it, then rewritten by the next tune.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import { compileProgram } from "../codegen/compile";
import { program } from "../codegen/testing/cases";
import { device, deviceFeatures } from "../codegen/testing/differential";
import { fileStore, nodeTune, tuneCachePath, tuneModeFrom } from "./node-tune";
import { parseTuneCache } from "./tune";

describe("the cache file and ADAPTSEG_TUNE", () => {
  it("lives under XDG_CACHE_HOME, else ~/.cache", () => {
    expect(tuneCachePath({ XDG_CACHE_HOME: "/x/cache" })).toBe("/x/cache/adaptsegnet-webgpu/tiles.json");
    expect(tuneCachePath({})).toMatch(/\/\.cache\/adaptsegnet-webgpu\/tiles\.json$/);
  });

  it.each([
    [undefined, "lazy"],
    ["off", "off"],
    ["OFF", "off"],
    ["force", "force"],
    ["lazy", "lazy"],
  ])("ADAPTSEG_TUNE=%s is %s", (value, mode) => {
    expect(tuneModeFrom(value === undefined ? {} : { ADAPTSEG_TUNE: value })).toEqual(E.right(mode));
  });

  it("refuses an unknown ADAPTSEG_TUNE, naming it", () => {
    expect(tuneModeFrom({ ADAPTSEG_TUNE: "sometimes" })).toEqual(E.left("ADAPTSEG_TUNE=sometimes: expected off, lazy or force"));
  });

  it("a file store reads nothing before the first save, then what was saved, after a restart too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tune-store-"));
    const path = join(dir, "sub", "tiles.json");
    expect(await fileStore(path).load()).toBeUndefined();
    await fileStore(path).save("one");
    await fileStore(path).save("two");
    expect(await fileStore(path).load()).toBe("two");
    expect(readdirSync(join(dir, "sub"))).toEqual(["tiles.json"]);
  });
});

describe("nodeTune with a cache file", async () => {
  const subgroups = (await deviceFeatures()).has("subgroups");

  it.runIf(subgroups)("ignores a corrupt file with a warning naming it, tunes, and rewrites it", async () => {
    const acquired = await device();
    const path = join(mkdtempSync(join(tmpdir(), "tune-file-")), "tiles.json");
    writeFileSync(path, "{ not json");
    const a = d.input("a", [72, 16], "f32") as F32<2>;
    const b = d.input("b", [16, 32], "f32") as F32<2>;
    const module = compileProgram(program({ c: d.matmul(a, b) })).module;
    const lines: string[] = [];
    const r = await nodeTune(acquired, [module], { mode: "lazy", store: fileStore(path), log: (l) => lines.push(l) });
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(lines[0]).toBe(`warning: tuning cache ${path} is not valid: not JSON (${errorOf("{ not json")}); ignoring it (the next tune rewrites it)`);
    expect(lines.some((l) => /^tune: measuring the tile candidates of 1 kernel use\(s\) on .*ADAPTSEG_TUNE=off skips/.test(l))).toBe(true);
    expect(r.right.tuned.size).toBe(1);
    expect(E.isRight(parseTuneCache(readFileSync(path, "utf8")))).toBe(true);
    // A restart reads the file: nothing left to tune, no warning.
    const again: string[] = [];
    const r2 = await nodeTune(acquired, [module], { mode: "lazy", store: fileStore(path), log: (l) => again.push(l) });
    expect(E.isRight(r2) && r2.right.tuned.size).toBe(0);
    expect(E.isRight(r2) && [...r2.right.choices.values()]).toEqual([...r.right.choices.values()]);
    expect(again).toEqual([]);
  });
});

function errorOf(text: string): string {
  try {
    JSON.parse(text);
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}
