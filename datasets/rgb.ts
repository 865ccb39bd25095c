// Pixels without files: the image and label types, the official input transform and the
// mirror flips. Free of Node (image.ts decodes files with sharp), so the browser build shares it.

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** 8-bit RGB, row-major, channels interleaved (HWC). */
export interface RgbImage extends Size {
  readonly data: Uint8Array;
}

/** One label value per pixel, row-major. */
export interface LabelMap extends Size {
  readonly data: Uint8Array;
}

/** Raw label values as stored (16-bit for SYNTHIA), before any id mapping. */
export interface RawLabelMap extends Size {
  readonly data: Uint8Array | Uint16Array;
}

/** The official per-channel mean, in BGR order (docs §4.1), held as float32 as numpy does. */
export const IMG_MEAN_BGR: readonly [number, number, number] = [
  Math.fround(104.00698793),
  Math.fround(116.66876762),
  Math.fround(122.67891434),
];

/**
 * The official input transform: float32, RGB -> BGR, minus the mean, HWC -> CHW. Each value is the
 * float32 difference (a Float32Array store rounds the exact double difference once), as in numpy.
 */
export function toNetworkInput(img: RgbImage): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = img.data[3 * i + 2]! - IMG_MEAN_BGR[0];
    out[plane + i] = img.data[3 * i + 1]! - IMG_MEAN_BGR[1];
    out[2 * plane + i] = img.data[3 * i]! - IMG_MEAN_BGR[2];
  }
  return out;
}

export function flipRgb(img: RgbImage): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = 3 * (y * img.width + x);
      const d = 3 * (y * img.width + (img.width - 1 - x));
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { ...img, data: out };
}

export function flipLabel(label: LabelMap): LabelMap {
  const out = new Uint8Array(label.data.length);
  for (let y = 0; y < label.height; y++) {
    for (let x = 0; x < label.width; x++) out[y * label.width + label.width - 1 - x] = label.data[y * label.width + x]!;
  }
  return { ...label, data: out };
}
