// The tuning cache (its text, a corrupt one, keys) and tuneModules on lavapipe with a store in
// memory: it measures each candidate of the uses it lacks, saves them, and measures nothing on
// the next run.

import { readdirSync, readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import { compileProgram } from "../codegen/compile";
import { program } from "../codegen/testing/cases";
import { device, deviceFeatures } from "../codegen/testing/differential";
import {
  TUNE_CACHE_VERSION,
  adapterKey,
  emptyCache,
  loadCache,
  memoryStore,
  parseTuneCache,
  renderTuneCache,
  tunableUses,
  tuneModules,
  withEntries,
} from "./tune";

const entry = { rows: 32, ms: { "16": 2, "32": 1, "64": 1.5 } };

describe("the tuning cache text", () => {
  it("reads back what it writes", () => {
    const cache = withEntries(emptyCache(), "lavapipe|EPYC", new Map([["abc:1,2:4x1x1", entry]]));
    const back = parseTuneCache(renderTuneCache(cache));
    expect(back).toEqual(E.right(cache));
  });

  it.each([
    ["not JSON", "{\"format\": ", /not JSON/],
    ["another format", JSON.stringify({ format: "other", version: 1, adapters: {} }), /not a tuning cache/],
    ["another version", JSON.stringify({ format: "adaptsegnet-tune", version: TUNE_CACHE_VERSION + 1, adapters: {} }), /version 2, this program reads version 1/],
    ["a bad entry", JSON.stringify({ format: "adaptsegnet-tune", version: 1, adapters: { a: { u: { rows: -1, ms: {} } } } }), /adapter 'a', use 'u'/],
  ])("refuses %s", (_, text, why) => {
    const r = parseTuneCache(text);
    expect(E.isLeft(r) && r.left).toMatch(why);
  });

  it("a corrupt cache is read as empty, with a warning naming where it is", async () => {
    const warnings: string[] = [];
    const store = { ...memoryStore("{ truncated"), where: "/home/u/.cache/adaptsegnet-webgpu/tiles.json" };
    const cache = await loadCache(store, (m) => warnings.push(m));
    expect(cache).toEqual(emptyCache());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^tuning cache \/home\/u\/\.cache\/adaptsegnet-webgpu\/tiles\.json is not valid: not JSON/);
  });

  it("keys adapters by every field of their info and the host", () => {
    const info = { vendor: "mesa", architecture: "software", device: "llvmpipe", description: "LLVM 15" };
    expect(adapterKey(info, "AMD EPYC x2")).not.toBe(adapterKey(info, "Intel Xeon x2"));
    expect(adapterKey(info)).not.toBe(adapterKey({ ...info, description: "LLVM 16" }));
  });
});

describe("the portable runtime", () => {
  it("imports no Node built-in outside runtime/node-*.ts (the browser bundles the rest, tuning included)", () => {
    const dir = new URL(".", import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("node-"));
    expect(files).toContain("tune.ts");
    const offending = files.filter((f) => /from "node:|require\("node:/.test(readFileSync(new URL(f, dir), "utf8")));
    expect(offending).toEqual([]);
  });
});

describe("tuneModules", async () => {
  const subgroups = (await deviceFeatures()).has("subgroups");

  it.runIf(subgroups)("measures every candidate of the uses the cache lacks, saves them, and reuses them", async () => {
    const dev = await device();
    const a = d.input("a", [100, 36], "f32") as F32<2>;
    const b = d.input("b", [36, 40], "f32") as F32<2>;
    const module = compileProgram(program({ c: d.matmul(a, b) })).module;
    const uses = tunableUses([module], "cpu", new Set(dev.device.features as ReadonlySet<string>));
    expect(uses).toHaveLength(1);
    const store = memoryStore();
    const req = { device: dev.device, adapterClass: "cpu" as const, adapter: "test-adapter", modules: [module], store, warn: (m: string) => expect.fail(m), budget: { reps: 1, minRepMs: 1 } };
    const seen: string[] = [];
    const first = await tuneModules({ ...req, mode: "lazy", progress: (i, n, u) => seen.push(`${i}/${n} ${u.dispatch}`) });
    if (E.isLeft(first)) throw new Error(first.left.message);
    expect(seen).toEqual([`0/1 ${uses[0]!.dispatch}`]);
    const measured = first.right.tuned.get(uses[0]!.key)!;
    expect(Object.keys(measured.ms).sort()).toEqual(["16", "32"]);
    expect(Object.values(measured.ms).every((ms) => ms > 0)).toBe(true);
    expect(measured.rows).toBe(Number(Object.entries(measured.ms).sort((x, y) => x[1] - y[1])[0]![0]));
    expect(first.right.choices.get(uses[0]!.key)).toBe(measured.rows);
    // The saved text holds it; the next run (a restart: a new request on the same store) measures nothing.
    expect(parseTuneCache(store.text!)).toEqual(E.right(withEntries(emptyCache(), "test-adapter", first.right.tuned)));
    const second = await tuneModules({ ...req, mode: "lazy", progress: () => expect.fail("nothing to tune") });
    expect(E.isRight(second) && second.right.tuned.size).toBe(0);
    expect(E.isRight(second) && second.right.choices.get(uses[0]!.key)).toBe(measured.rows);
    // Another adapter has no entry: off gives no choices and measures nothing.
    const other = await tuneModules({ ...req, adapter: "other", mode: "off" });
    expect(E.isRight(other) && other.right.choices.size).toBe(0);
  });
});
