// npm run bench:cold [-- --programs A,B,...] : cold start of generated programs, in a fresh
// process with an empty Mesa shader cache (MESA_SHADER_CACHE_DIR pointed at a new folder, so
// lavapipe compiles every pipeline with LLVM). One child process runs the programs in order in
// one device, as `npm run demo` does: instantiate, one step, wait. Prints, per program, the
// instantiate time, the first step, the pipelines it created and those it found made already.
//
// The parent only spawns: the cache directory must be set before Vulkan loads in the child.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);

async function child(names: readonly string[]): Promise<void> {
  const E = await import("fp-ts/lib/Either.js");
  const { modules } = await import("../generated/index");
  const { acquireNodeDevice } = await import("../runtime/node-gpu");
  const { instantiate, pipelineStats } = await import("../runtime/runner");
  const { initialValue } = await import("../format/init");
  const loaded = await Promise.all(names.map(async (n) => {
    const load = modules[n];
    if (load === undefined) throw new Error(`bench:cold: no generated program '${n}'`);
    return load();
  }));
  const needs = {
    maxBufferSize: Math.max(...loaded.map((m) => m.limits.maxBufferSize)),
    maxStorageBufferBindingSize: Math.max(...loaded.map((m) => m.limits.maxStorageBufferBindingSize)),
    maxStorageBuffersPerShaderStage: Math.max(...loaded.map((m) => m.limits.maxStorageBuffersPerShaderStage)),
  };
  const acquired = await acquireNodeDevice(needs)();
  if (E.isLeft(acquired)) throw new Error(acquired.left.message);
  const { device, adapterClass } = acquired.right;
  for (const module of loaded) {
    const before = pipelineStats(device);
    const t0 = performance.now();
    const made = await instantiate(device, module, adapterClass);
    if (E.isLeft(made)) throw new Error(made.left.message);
    const t1 = performance.now();
    const inst = made.right;
    for (const t of module.tensors) if (t.role === "param" || t.role === "state") inst.write(t.name, initialValue(t, 1));
    inst.step(1);
    await inst.sync();
    const t2 = performance.now();
    const after = pipelineStats(device);
    console.log(JSON.stringify({ program: module.name, instantiateMs: Math.round(t1 - t0), firstStepMs: Math.round(t2 - t1), totalMs: Math.round(t2 - t0), pipelinesCreated: after.created - before.created, pipelinesReused: after.reused - before.reused }));
    inst.destroy();
  }
}

function parent(argv: readonly string[]): number {
  const at = argv.indexOf("--programs");
  const names = at >= 0 ? (argv[at + 1] ?? "") : "multi-level-cpu-demo";
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "mesa-cold-"));
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", self, "--child", names], {
    stdio: "inherit",
    env: { ...process.env, MESA_SHADER_CACHE_DIR: cache },
  });
  fs.rmSync(cache, { recursive: true, force: true });
  console.log(`bench:cold: ${names} in a fresh process, empty shader cache: ${((Date.now() - started) / 1000).toFixed(1)} s wall (process start included)`);
  return r.status ?? 1;
}

const argv = process.argv.slice(2);
if (argv[0] === "--child") await child((argv[1] ?? "").split(","));
else process.exitCode = parent(argv);
