// From a rasterized scene to an 8-bit RGB image: shade each pixel from its material, then apply
// the domain's optics (lighting ramp, vignetting, exposure, white-balance cast, blur, sensor noise).
// Everything random comes from the `rng` passed in, so an image is a function of its seed.

import type { Rng } from "../prng";
import type { Optics, RGB } from "./domains";
import type { Canvas } from "./raster";
import type { Material } from "./scene";

/** Smooth value noise in [0, 1]: hashed lattice values, bilinearly interpolated (smoothstep). */
export function valueNoise(width: number, height: number, cell: number, salt: number): Float32Array {
  const gw = Math.ceil(width / cell) + 2;
  const gh = Math.ceil(height / cell) + 2;
  const lattice = new Float32Array(gw * gh);
  for (let i = 0; i < lattice.length; i++) {
    let h = Math.imul(i ^ salt, 0x9e3779b1) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x85ebca77) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae3d) >>> 0;
    lattice[i] = ((h ^ (h >>> 16)) >>> 0) / 4294967296;
  }
  const out = new Float32Array(width * height);
  const smooth = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < height; y++) {
    const fy = y / cell;
    const iy = Math.floor(fy);
    const ty = smooth(fy - iy);
    for (let x = 0; x < width; x++) {
      const fx = x / cell;
      const ix = Math.floor(fx);
      const tx = smooth(fx - ix);
      const a = lattice[iy * gw + ix]!;
      const b = lattice[iy * gw + ix + 1]!;
      const c = lattice[(iy + 1) * gw + ix]!;
      const d = lattice[(iy + 1) * gw + ix + 1]!;
      out[y * width + x] = (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
    }
  }
  return out;
}

/** Two octaves of value noise centred on 0, roughly in [-1, 1]. */
function grainField(width: number, height: number, cell: number, rng: Rng): Float32Array {
  const a = valueNoise(width, height, cell, rng.nextU32());
  const b = valueNoise(width, height, Math.max(1, cell / 3), rng.nextU32());
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = 2 * (0.65 * a[i]! + 0.35 * b[i]!) - 1;
  return out;
}

function shade(m: Material, x: number, y: number, out: Float32Array, at: number): number {
  switch (m.kind) {
    case "flat":
      out[at] = m.rgb[0];
      out[at + 1] = m.rgb[1];
      out[at + 2] = m.rgb[2];
      return m.grain;
    case "vgradient": {
      const t = Math.min(1, Math.max(0, (y - m.y0) / Math.max(1, m.y1 - m.y0)));
      for (let c = 0; c < 3; c++) out[at + c] = m.top[c]! + (m.bottom[c]! - m.top[c]!) * t;
      return m.grain;
    }
    case "grid": {
      // windows: the inner 55% x 60% of each cell is pane
      const u = (((x - m.x0) / m.cellW) % 1 + 1) % 1;
      const v = (((y - m.y0) / m.cellH) % 1 + 1) % 1;
      const pane = u > 0.22 && u < 0.77 && v > 0.2 && v < 0.8;
      const c: RGB = pane ? m.pane : m.rgb;
      out[at] = c[0];
      out[at + 1] = c[1];
      out[at + 2] = c[2];
      return m.grain;
    }
    case "stripes": {
      const u = (((x - m.x0) / m.period) % 1 + 1) % 1;
      const c: RGB = u < 0.3 ? m.stripe : m.rgb;
      out[at] = c[0];
      out[at + 1] = c[1];
      out[at + 2] = c[2];
      return m.grain;
    }
    default: {
      const never: never = m;
      return never;
    }
  }
}

/** One [1 2 1]/4 pass in x then in y, edges clamped. */
function blur121(img: Float32Array, width: number, height: number): Float32Array {
  const tmp = new Float32Array(img.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const l = Math.max(0, x - 1);
      const r = Math.min(width - 1, x + 1);
      for (let c = 0; c < 3; c++) {
        tmp[3 * (y * width + x) + c] = 0.25 * img[3 * (y * width + l) + c]! + 0.5 * img[3 * (y * width + x) + c]! + 0.25 * img[3 * (y * width + r) + c]!;
      }
    }
  }
  const out = new Float32Array(img.length);
  for (let y = 0; y < height; y++) {
    const u = Math.max(0, y - 1);
    const d = Math.min(height - 1, y + 1);
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        out[3 * (y * width + x) + c] = 0.25 * tmp[3 * (u * width + x) + c]! + 0.5 * tmp[3 * (y * width + x) + c]! + 0.25 * tmp[3 * (d * width + x) + c]!;
      }
    }
  }
  return out;
}

/** A 32-bit integer hash (murmur3's finalizer) of i mixed with a salt: cheap per-pixel randomness. */
function hash32(i: number, salt: number): number {
  let h = Math.imul(i ^ salt, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function renderImage(canvas: Canvas, materials: readonly Material[], optics: Optics, rng: Rng): Uint8Array {
  const { width, height } = canvas;
  const n = width * height;
  const grain = grainField(width, height, Math.max(1.5, optics.grainCell * height), rng);
  let img: Float32Array = new Float32Array(3 * n);
  // global light: a linear ramp in a random direction, exposure, a per-channel cast
  const angle = rng.uniform(0, 2 * Math.PI);
  const dx = Math.cos(angle) * Math.SQRT1_2;
  const dy = Math.sin(angle) * Math.SQRT1_2;
  const exposure = rng.uniform(optics.exposure[0], optics.exposure[1]);
  const castR = 1 + optics.colorCast * rng.uniform(-1, 1);
  const castG = 1 + optics.colorCast * rng.uniform(-1, 1);
  const castB = 1 + optics.colorCast * rng.uniform(-1, 1);
  const cx = width / 2;
  const cy = height / 2;
  for (let y = 0; y < height; y++) {
    const ny = (y + 0.5 - cy) / cy;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const amp = shade(materials[canvas.material[i]!]!, x + 0.5, y + 0.5, img, 3 * i);
      const nx = (x + 0.5 - cx) / cx;
      const ramp = 1 + optics.lightRamp * 0.5 * (nx * dx + ny * dy);
      const vignette = 1 - optics.vignette * 0.5 * (nx * nx + ny * ny);
      const k = (1 + amp * grain[i]!) * ramp * vignette * exposure;
      img[3 * i] = img[3 * i]! * k * castR;
      img[3 * i + 1] = img[3 * i + 1]! * k * castG;
      img[3 * i + 2] = img[3 * i + 2]! * k * castB;
    }
  }
  for (let p = 0; p < optics.blurPasses; p++) img = blur121(img, width, height);
  const out = new Uint8Array(3 * n);
  // Sensor noise: triangular (the sum of two uniforms, from the two halves of one hash) with
  // standard deviation sigma: var(u1 + u2 - 1) = 1/6.
  const s = optics.noiseSigma * Math.sqrt(6);
  const salt = rng.nextU32();
  for (let i = 0; i < 3 * n; i++) {
    const h = hash32(i, salt);
    const noise = s * ((h & 0xffff) / 65536 + (h >>> 16) / 65536 - 1);
    out[i] = Math.min(255, Math.max(0, Math.round(img[i]! + noise)));
  }
  return out;
}
