import * as E from "fp-ts/lib/Either.js";
import { compileProgram as newCompile } from "/work/wt-tune/codegen/compile";
import { compileProgram as oldCompile } from "/work/main/codegen/compile";
import { matmulProgram as newMM, convProgram as newConv } from "/work/wt-tune/bench/kernels";
import { matmulProgram as oldMM, convProgram as oldConv } from "/work/main/bench/kernels";
import { instantiate } from "/work/wt-tune/runtime/runner";
import { acquireNodeDevice } from "/work/wt-tune/runtime/node-gpu";
const which = process.argv[2] ?? "mm";
const dev = await acquireNodeDevice({ maxStorageBufferBindingSize: 1 << 26, maxBufferSize: 1 << 26, maxStorageBuffersPerShaderStage: 8, features: ["subgroups", "timestamp-query"] } as any)();
if (E.isLeft(dev)) throw new Error(JSON.stringify(dev.left));
const d = dev.right;
const shape = { x: [1, 256, 64, 64], w: [256, 256, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1] } as any;
const data = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
const progs = which === "mm" ? [oldCompile(oldMM(1024, 1024, 1024)), newCompile(newMM(1024, 1024, 1024))] : [oldCompile(oldConv(shape, which as any)), newCompile(newConv(shape, which as any))];
const insts = [];
for (const c of progs) { const i = await instantiate(d.device, (c as any).module, d.adapterClass); if (E.isLeft(i)) throw new Error(i.left.message); insts.push(i.right); for (const t of (c as any).module.tensors.filter((t: any) => t.role === "input")) i.right.write(t.name, data(t.bytes / 4)); i.right.step(1); await i.right.sync(); }
const best = [Infinity, Infinity];
for (let r = 0; r < 5; r++) for (const k of [0, 1]) { const t0 = performance.now(); insts[k]!.step(2); await insts[k]!.sync(); best[k] = Math.min(best[k]!, (performance.now() - t0) / 2); }
const outs = await Promise.all(insts.map((i) => i.readMany(i.module.phases[0]!.outputs)));
const same = outs[0]!.every((o, n) => Buffer.from((o as any).buffer).equals(Buffer.from((outs[1]![n] as any).buffer)));
console.log(which, "old", best[0]!.toFixed(1), "new", best[1]!.toFixed(1), "bitwise same:", same);
process.exit(0);
