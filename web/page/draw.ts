// Painting on the page: loss curves and class-map panels on 2D canvases.

import type { RgbImage } from "../../datasets/rgb";

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  /** Draw a marker at each point (sparse series such as mIoU). */
  readonly markers?: boolean;
}

/** Line chart of `series` with axes from 0 to the largest x and y; one panel per canvas. */
export function drawChart(canvas: HTMLCanvasElement, title: string, series: readonly Series[]): void {
  const g = canvas.getContext("2d");
  if (g === null) return;
  const w = canvas.width;
  const h = canvas.height;
  const pad = { l: 44, r: 10, t: 22, b: 24 };
  g.fillStyle = "#fff";
  g.fillRect(0, 0, w, h);
  g.fillStyle = "#222";
  g.font = "13px sans-serif";
  g.fillText(title, pad.l, 15);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return;
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-6, ...all.map((p) => p[1])) * 1.05;
  const x = (v: number) => pad.l + (v / xMax) * (w - pad.l - pad.r);
  const y = (v: number) => h - pad.b - (v / yMax) * (h - pad.t - pad.b);
  g.strokeStyle = "#999";
  g.beginPath();
  g.moveTo(pad.l, pad.t);
  g.lineTo(pad.l, h - pad.b);
  g.lineTo(w - pad.r, h - pad.b);
  g.stroke();
  g.fillStyle = "#555";
  g.font = "11px sans-serif";
  g.fillText(yMax.toPrecision(3), 2, pad.t + 8);
  g.fillText("0", pad.l - 12, h - pad.b);
  g.fillText(`iteration ${xMax}`, w - pad.r - 80, h - 6);
  series.forEach((s, k) => {
    g.strokeStyle = s.color;
    g.fillStyle = s.color;
    // Earlier series drawn wider, so a later one that coincides (same seed, same first steps) leaves it visible.
    g.lineWidth = 2 + 2 * (series.length - 1 - k);
    g.beginPath();
    s.points.forEach(([px, py], i) => (i === 0 ? g.moveTo(x(px), y(py)) : g.lineTo(x(px), y(py))));
    g.stroke();
    if (s.markers === true) for (const [px, py] of s.points) g.fillRect(x(px) - 3, y(py) - 3, 6, 6);
    g.fillText(s.label, w - pad.r - 150, pad.t + 14 * (k + 1));
  });
}

/** RGB image -> canvas ImageData at (x, y), scaled by an integer or fractional factor via a bitmap. */
export function putRgb(g: CanvasRenderingContext2D, img: RgbImage, x: number, y: number, width: number, height: number): void {
  const rgba = new Uint8ClampedArray(4 * img.width * img.height);
  for (let i = 0; i < img.width * img.height; i++) {
    rgba[4 * i] = img.data[3 * i]!;
    rgba[4 * i + 1] = img.data[3 * i + 1]!;
    rgba[4 * i + 2] = img.data[3 * i + 2]!;
    rgba[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas");
  tmp.width = img.width;
  tmp.height = img.height;
  tmp.getContext("2d")?.putImageData(new ImageData(rgba, img.width, img.height), 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, x, y, width, height);
}

/** A grid of panels under column titles: rows of images, each drawn at `cell` size. */
export function drawPanels(canvas: HTMLCanvasElement, titles: readonly string[], rows: readonly (readonly (RgbImage | undefined)[])[], cell: { width: number; height: number }): void {
  const gap = 4;
  const head = 18;
  canvas.width = titles.length * (cell.width + gap);
  canvas.height = head + rows.length * (cell.height + gap);
  const g = canvas.getContext("2d");
  if (g === null) return;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#222";
  g.font = "12px sans-serif";
  titles.forEach((t, i) => g.fillText(t, i * (cell.width + gap) + 2, 13));
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      if (img !== undefined) putRgb(g, img, c * (cell.width + gap), head + r * (cell.height + gap), cell.width, cell.height);
    }),
  );
}
