import * as E from "fp-ts/lib/Either.js";
import sharp from "sharp";
import { describe, expect, test } from "vitest";
import { crc32 } from "../format/crc32";
import { type DecodedPng, decodePng, encodePng, firstChannel } from "./png";

function decodeOk(bytes: Uint8Array): DecodedPng {
  const r = decodePng(bytes, "mem.png");
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
}

function decodeErr(bytes: Uint8Array, path = "some/dir/broken.png") {
  const r = decodePng(bytes, path);
  if (E.isRight(r)) throw new Error("expected a decode error");
  return r.left;
}

/** Deterministic pseudo-random bytes (a small LCG) for test images. */
function bytesOf(n: number, seed: number, mod = 256): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 24) % mod;
  }
  return out;
}

describe("crc32", () => {
  test("matches the standard check value of '123456789'", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});

describe("encodePng / decodePng round trip", () => {
  test("8-bit gray keeps every value", () => {
    const samples = bytesOf(13 * 7, 1);
    const png = decodeOk(encodePng({ width: 13, height: 7, colorType: "gray", bitDepth: 8, samples }));
    expect(png.colorType).toBe("gray");
    expect(Array.from(png.samples)).toEqual(Array.from(samples));
  });

  test("8-bit palette keeps the indices and the palette", () => {
    const samples = bytesOf(9 * 5, 2, 34);
    const palette = bytesOf(34 * 3, 3);
    const png = decodeOk(encodePng({ width: 9, height: 5, colorType: "palette", bitDepth: 8, samples, palette }));
    expect(Array.from(png.samples)).toEqual(Array.from(samples));
    expect(Array.from(png.palette!)).toEqual(Array.from(palette));
  });

  test("8-bit RGB (Paeth-filtered) keeps every sample", () => {
    const samples = bytesOf(11 * 6 * 3, 4);
    const png = decodeOk(encodePng({ width: 11, height: 6, colorType: "rgb", bitDepth: 8, samples }));
    expect(Array.from(png.samples)).toEqual(Array.from(samples));
  });

  test("16-bit RGBA keeps 16-bit values; firstChannel returns R", () => {
    const samples = new Uint16Array(5 * 4 * 4);
    for (let i = 0; i < samples.length; i++) samples[i] = (i * 2654435761) % 65536;
    const png = decodeOk(encodePng({ width: 5, height: 4, colorType: "rgba", bitDepth: 16, samples }));
    expect(png.samples).toBeInstanceOf(Uint16Array);
    expect(Array.from(png.samples)).toEqual(Array.from(samples));
    expect(Array.from(firstChannel(png))).toEqual(Array.from({ length: 20 }, (_, i) => samples[4 * i]));
  });

  test("the same image encodes to the same bytes", () => {
    const samples = bytesOf(32 * 32 * 3, 5);
    const a = encodePng({ width: 32, height: 32, colorType: "rgb", bitDepth: 8, samples });
    const b = encodePng({ width: 32, height: 32, colorType: "rgb", bitDepth: 8, samples: samples.slice() });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });
});

describe("decodePng agrees with sharp (libpng)", () => {
  test("on a gray image sharp wrote", async () => {
    const raw = bytesOf(23 * 17, 6);
    const file = await sharp(raw, { raw: { width: 23, height: 17, channels: 1 } }).toColourspace("b-w").png({ compressionLevel: 6 }).toBuffer();
    const png = decodeOk(file);
    expect(png.colorType).toBe("gray");
    expect(Array.from(png.samples)).toEqual(Array.from(raw));
  });

  test("on a 4-bit palette image (sub-byte depth): indices map to sharp's RGB", async () => {
    // 8 colors, so libvips/libimagequant writes a palette PNG with fewer than 8 bits per index.
    const colors = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [255, 255, 0],
      [0, 255, 255],
      [255, 0, 255],
      [0, 0, 0],
      [255, 255, 255],
    ];
    const w = 19;
    const h = 9;
    const rgb = new Uint8Array(w * h * 3);
    const which = bytesOf(w * h, 7, colors.length);
    which.forEach((k, i) => rgb.set(colors[k]!, 3 * i));
    const file = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .png({ palette: true, colours: 8, dither: 0, effort: 1 })
      .toBuffer();
    const png = decodeOk(file);
    expect(png.colorType).toBe("palette");
    expect(png.bitDepth).toBeLessThan(8);
    const expanded = Array.from(png.samples).flatMap((k) => Array.from(png.palette!.subarray(3 * k, 3 * k + 3)));
    const ref = await sharp(file).removeAlpha().raw().toBuffer();
    expect(expanded).toEqual(Array.from(ref));
  });
});

describe("decodePng errors name the file", () => {
  const good = encodePng({ width: 4, height: 4, colorType: "gray", bitDepth: 8, samples: bytesOf(16, 8) });

  test("not a PNG", () => {
    const e = decodeErr(new TextEncoder().encode("GIF89a........"));
    expect(e).toMatchObject({ kind: "corrupt-file", path: "some/dir/broken.png" });
  });

  test("a flipped byte fails the CRC check", () => {
    const bad = good.slice();
    bad[40] = bad[40]! ^ 0xff; // inside the IDAT data
    const e = decodeErr(bad);
    expect(e.kind).toBe("corrupt-file");
    expect(JSON.stringify(e)).toMatch(/CRC mismatch/);
  });

  test("a truncated file", () => {
    const e = decodeErr(good.subarray(0, good.length - 20));
    expect(e).toMatchObject({ kind: "corrupt-file", path: "some/dir/broken.png" });
  });

  test("an interlaced file is unsupported, not misread", () => {
    const bad = Buffer.from(good);
    bad[8 + 8 + 12] = 1; // IHDR interlace byte
    bad.writeUInt32BE(crc32(bad, 12, 8 + 8 + 13), 8 + 8 + 13);
    expect(decodeErr(bad)).toMatchObject({ kind: "unsupported-format", path: "some/dir/broken.png" });
  });
});
