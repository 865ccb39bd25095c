// Helpers for tests that build tiny dataset trees in a temporary folder.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";

export async function makeTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeFileDeep(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

/** An RGB test image whose pixel (x, y) is (x * 10, y * 10, x + y), written as PNG or JPEG by sharp. */
export async function writeGradientImage(path: string, width: number, height: number): Promise<Uint8Array> {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgb.set([(x * 10) % 256, (y * 10) % 256, (x + y) % 256], 3 * (y * width + x));
  }
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  const bytes = path.endsWith(".jpg") ? await img.jpeg({ quality: 95 }).toBuffer() : await img.png().toBuffer();
  await writeFileDeep(path, bytes);
  return rgb;
}
