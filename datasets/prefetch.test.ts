import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LABEL_ID_PALETTE, PROTOCOLS } from "./classes";
import { type SampleRef, listDataset } from "./layouts";
import { encodePng } from "./png";
import { type Draw, type LoadRequest, createPrefetchLoader, createPrefetchQueue } from "./prefetch";
import { type Sample, loadSample } from "./preprocess";
import { repeatedShuffle } from "./sampler";
import { makeTempDir, writeFileDeep, writeGradientImage } from "./test_tree";

let root = "";
let cleanup = async () => {};
let refs: SampleRef[] = [];
const N = 5;

beforeAll(async () => {
  ({ dir: root, cleanup } = await makeTempDir("prefetch-test"));
  for (let i = 1; i <= N; i++) {
    const name = `${String(i).padStart(5, "0")}.png`;
    await writeGradientImage(join(root, "images", name), 12 + i, 8);
    // label id 7 + i on every pixel, so each sample's label tells which file it came from
    if (i !== 4) {
      const samples = new Uint8Array((12 + i) * 8).fill(7 + i);
      await writeFileDeep(join(root, "labels", name), encodePng({ width: 12 + i, height: 8, colorType: "palette", bitDepth: 8, samples, palette: LABEL_ID_PALETTE }));
    }
  }
  const r = await listDataset({ kind: "gta5", root })();
  if (E.isLeft(r)) throw new Error("listing failed");
  refs = r.right;
});
afterAll(() => cleanup());

async function drain(it: AsyncIterableIterator<Draw>): Promise<Draw[]> {
  const out: Draw[] = [];
  for await (const d of it) out.push(d);
  return out;
}

const options = { size: { width: 10, height: 6 }, labels: "input-size" as const, protocol: PROTOCOLS.cityscapes19 };

describe("createPrefetchLoader", () => {
  test("worker threads give the draws in order, equal to main-thread loading; a bad file is a Left and the stream goes on", async () => {
    const order = repeatedShuffle(N, 12, 77);
    const draws = await drain(createPrefetchLoader({ refs, order, start: 3, count: 9, options }, { workers: 2, depth: 3 }));
    expect(draws.map((d) => d.position)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(draws.map((d) => d.index)).toEqual(Array.from(order.order.slice(3, 12)));
    for (const d of draws) {
      const expected = await loadSample(refs[d.index]!, options)();
      if (d.index === 3) {
        // 00004.png has no label
        expect(d.sample).toEqual(E.left({ kind: "missing-file", path: join(root, "labels", "00004.png") }));
        continue;
      }
      expect(E.isRight(d.sample) && E.isRight(expected)).toBe(true);
      const got = (d.sample as E.Right<Sample>).right;
      const want = (expected as E.Right<Sample>).right;
      expect(got.name).toBe(want.name);
      expect(Array.from(got.label!)).toEqual(Array.from(want.label!));
      expect(Buffer.from(got.image.buffer).equals(Buffer.from(want.image.buffer))).toBe(true);
    }
  });

  test("with augmentation the draws depend on the position, not on the worker count", async () => {
    const order = repeatedShuffle(N, 6, 5);
    const plan = { refs, order, start: 0, count: 6, options, augment: { policy: { mirror: true }, seed: 11 } };
    const a = await drain(createPrefetchLoader(plan, { workers: 2, depth: 4 }));
    const b = await drain(createPrefetchLoader(plan, { workers: 0, depth: 1 }));
    const images = (ds: Draw[]) => ds.map((d) => (E.isRight(d.sample) ? Array.from(d.sample.right.image.subarray(0, 10)) : null));
    expect(images(a)).toEqual(images(b));
  });
});

describe("createPrefetchQueue", () => {
  const order = repeatedShuffle(N, 20, 1);
  const fakeSample = (req: LoadRequest): Sample => ({
    name: req.ref.name,
    width: 1,
    height: 1,
    image: new Float32Array(3),
    labelWidth: 1,
    labelHeight: 1,
  });

  test("never has more than depth loads outstanding beyond the one awaited", async () => {
    let outstanding = 0;
    let most = 0;
    const load = async (req: LoadRequest) => {
      outstanding++;
      most = Math.max(most, outstanding);
      await new Promise((r) => setTimeout(r, 1));
      outstanding--;
      return E.right(fakeSample(req));
    };
    const it = createPrefetchQueue({ refs, order, start: 0, count: 15, options }, 3, load);
    // the consumer is slow: the queue must not run ahead of the bound meanwhile
    let seen = 0;
    for await (const _ of it) {
      seen++;
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(seen).toBe(15);
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThanOrEqual(3);
  });

  test("results finishing out of order are still handed out in position order", async () => {
    const load = async (req: LoadRequest) => {
      // later requests finish first
      await new Promise((r) => setTimeout(r, 20 - 2 * Number(req.ref.name.slice(0, 5))));
      return E.right(fakeSample(req));
    };
    const draws = await drain(createPrefetchQueue({ refs, order, start: 2, count: 8, options }, 5, load));
    expect(draws.map((d) => d.position)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(draws.map((d) => (E.isRight(d.sample) ? d.sample.right.name : ""))).toEqual(
      Array.from(order.order.slice(2, 10)).map((i) => refs[i]!.name),
    );
  });
});
