// Hard-edged rasterization into a label map and a material map (painter's algorithm: later
// shapes cover earlier ones). A pixel is inside a shape when its center is; no anti-aliasing, so
// every pixel has exactly one label, as in an annotated dataset. Appearance is computed afterwards
// from the material map (render.ts), which keeps geometry and appearance independent: the two
// domains can share a layout distribution and differ only in how things look.

export type Point = readonly [number, number];

export type Shape =
  | { readonly kind: "polygon"; readonly points: readonly Point[] }
  | { readonly kind: "ellipse"; readonly cx: number; readonly cy: number; readonly rx: number; readonly ry: number };

export interface Canvas {
  readonly width: number;
  readonly height: number;
  /** Cityscapes label id per pixel. */
  readonly label: Uint8Array;
  /** Index into the scene's material list per pixel. */
  readonly material: Uint16Array;
}

export function createCanvas(width: number, height: number): Canvas {
  return { width, height, label: new Uint8Array(width * height), material: new Uint16Array(width * height) };
}

export function rect(x0: number, y0: number, x1: number, y1: number): Shape {
  return { kind: "polygon", points: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]] };
}

function spanFill(c: Canvas, y: number, xa: number, xb: number, label: number, material: number): void {
  // pixel x is covered when its center x + 0.5 lies in [xa, xb)
  const from = Math.max(0, Math.ceil(xa - 0.5));
  const to = Math.min(c.width - 1, Math.ceil(xb - 0.5) - 1);
  const row = y * c.width;
  for (let x = from; x <= to; x++) {
    c.label[row + x] = label;
    c.material[row + x] = material;
  }
}

/** Even-odd scanline fill sampled at pixel centers. */
function fillPolygon(c: Canvas, pts: readonly Point[], label: number, material: number): void {
  let minY = Infinity;
  let maxY = -Infinity;
  for (const [, y] of pts) {
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  const y0 = Math.max(0, Math.ceil(minY - 0.5));
  const y1 = Math.min(c.height - 1, Math.floor(maxY - 0.5));
  const xs: number[] = [];
  for (let y = y0; y <= y1; y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let i = 0; i < pts.length; i++) {
      const [ax, ay] = pts[i]!;
      const [bx, by] = pts[(i + 1) % pts.length]!;
      // half-open in y so a vertex shared by two edges is counted once
      if ((ay <= yc && by > yc) || (by <= yc && ay > yc)) xs.push(ax + ((yc - ay) * (bx - ax)) / (by - ay));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) spanFill(c, y, xs[k]!, xs[k + 1]!, label, material);
  }
}

function fillEllipse(c: Canvas, cx: number, cy: number, rx: number, ry: number, label: number, material: number): void {
  if (rx <= 0 || ry <= 0) return;
  const y0 = Math.max(0, Math.ceil(cy - ry - 0.5));
  const y1 = Math.min(c.height - 1, Math.floor(cy + ry - 0.5));
  for (let y = y0; y <= y1; y++) {
    const t = (y + 0.5 - cy) / ry;
    if (t * t >= 1) continue;
    const half = rx * Math.sqrt(1 - t * t);
    spanFill(c, y, cx - half, cx + half, label, material);
  }
}

export function fillShape(c: Canvas, s: Shape, label: number, material: number): void {
  switch (s.kind) {
    case "polygon":
      fillPolygon(c, s.points, label, material);
      return;
    case "ellipse":
      fillEllipse(c, s.cx, s.cy, s.rx, s.ry, label, material);
      return;
    default: {
      const never: never = s;
      return never;
    }
  }
}
