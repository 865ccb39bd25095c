import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { temporaryPathFor, writeFileAtomic } from "./atomic-write";
import { scratchDir } from "./test-fixtures";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("writeFileAtomic", () => {
  it("writes all chunks in order", async () => {
    const path = join(scratchDir(), "out.bin");
    expect(E.isRight(await writeFileAtomic(path, [bytes("ab"), bytes(""), bytes("cd")])())).toBe(true);
    expect(readFileSync(path, "utf8")).toBe("abcd");
  });

  it("leaves the destination untouched and removes its temporary file when the data source throws mid-write", async () => {
    const dir = scratchDir();
    const path = join(dir, "checkpoint.safetensors");
    writeFileSync(path, "previous checkpoint");
    let produced = 0;
    function* source(): Generator<Uint8Array> {
      yield new Uint8Array(64 * 1024).fill(1);
      produced++;
      yield new Uint8Array(64 * 1024).fill(2);
      produced++;
      throw new Error("simulated crash while producing tensor bytes");
    }
    const r = await writeFileAtomic(path, source())();
    expect(produced).toBe(2); // the failure happened after real bytes reached the temporary file
    expect(E.isLeft(r) && r.left.detail).toMatch(/destination left unchanged: simulated crash/);
    expect(E.isLeft(r) && r.left.file).toBe(path);
    expect(readFileSync(path, "utf8")).toBe("previous checkpoint");
    expect(readdirSync(dir)).toEqual(["checkpoint.safetensors"]);
  });

  it("accepts async sources, and a failing one leaves no file where there was none", async () => {
    const dir = scratchDir();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield bytes("partial");
      throw new Error("disk full");
    }
    expect(E.isLeft(await writeFileAtomic(join(dir, "new.bin"), failing())())).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("reports an unwritable directory as an I/O error naming the destination", async () => {
    const r = await writeFileAtomic("/nonexistent-dir/x.bin", [bytes("x")])();
    expect(E.isLeft(r) && r.left.kind).toBe("io");
    expect(E.isLeft(r) && r.left.file).toBe("/nonexistent-dir/x.bin");
  });
});

describe("temporary files left by killed writers", () => {
  /** The pid of a process that has exited: a writer killed mid-write. */
  const deadPid = (): number => {
    const r = spawnSync(process.execPath, ["-e", ""]);
    return r.pid!;
  };

  it("are named after their target and writer, and a write removes those of its target whose writer is dead", async () => {
    const dir = scratchDir();
    const path = join(dir, "run_10.safetensors");
    const stale = `.run_10.safetensors.${deadPid()}.0123abcd.tmp`;
    const live = `.run_10.safetensors.${process.ppid}.89abcdef.tmp`;
    const otherTarget = `.run_20.safetensors.${deadPid()}.0123abcd.tmp`;
    for (const f of [stale, live, otherTarget]) writeFileSync(join(dir, f), new Uint8Array(1024));
    expect(temporaryPathFor(path)).toMatch(new RegExp(`/\\.run_10\\.safetensors\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));

    expect(E.isRight(await writeFileAtomic(path, [bytes("new")])())).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([live, otherTarget, "run_10.safetensors"].sort());
  });
});
