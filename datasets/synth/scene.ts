// A procedural street scene: geometry, labels and materials, drawn far to near.
//
// Geometry is a pinhole camera one unit above a flat ground, looking down a straight street. A
// world point (X lateral, Y up, Z depth), all in camera heights, lands at
//
//   x = vx + X * g / Z,    y = yh + (1 - Y) * g / Z,    g = H - yh
//
// (yh the horizon row, vx the vanishing point column); so the ground at depth 1 is the bottom
// row, everything at camera height lies on the horizon, and sizes shrink as 1/Z. Since x and y are
// both linear in 1/Z, a facade (a rectangle in a plane X = const) projects to a quadrilateral, and
// the road, sidewalks and markings are triangles and quads that converge to (vx, yh).

import type { Rng } from "../prng";
import { LABEL_ID } from "../classes";
import type { Domain, Part, RGB, Range } from "./domains";
import { type Point, type Shape, rect } from "./raster";

/** How a surface is shaded (render.ts); `grain` is the amplitude of the multiplicative texture. */
export type Material =
  | { readonly kind: "flat"; readonly rgb: RGB; readonly grain: number }
  | { readonly kind: "vgradient"; readonly top: RGB; readonly bottom: RGB; readonly y0: number; readonly y1: number; readonly grain: number }
  | {
      readonly kind: "grid";
      readonly rgb: RGB;
      readonly pane: RGB;
      readonly x0: number;
      readonly y0: number;
      readonly cellW: number;
      readonly cellH: number;
      readonly grain: number;
    }
  | { readonly kind: "stripes"; readonly rgb: RGB; readonly stripe: RGB; readonly x0: number; readonly period: number; readonly grain: number };

export interface Layer {
  readonly shape: Shape;
  /** Cityscapes label id. */
  readonly label: number;
  readonly material: number;
}

export interface Scene {
  readonly width: number;
  readonly height: number;
  readonly materials: readonly Material[];
  readonly layers: readonly Layer[];
}

/** How much texture each kind of surface shows, relative to the domain's grain. */
const GRAIN_SCALE: Partial<Record<Part, number>> = {
  road: 1.2,
  sidewalk: 1.0,
  terrain: 1.6,
  foliage: 2.2,
  trunk: 1.2,
  building: 0.9,
  wall: 1.0,
  skyTop: 0.15,
  skyHorizon: 0.15,
  glass: 0.3,
  carBody: 0.35,
  busBody: 0.35,
  truckBox: 0.35,
  marking: 0.6,
};

const draw = (rng: Rng, r: Range): number => rng.uniform(r[0], r[1]);
const count = (rng: Rng, r: Range): number => Math.floor(rng.uniform(r[0], r[1] + 1));
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

interface Builder {
  readonly rng: Rng;
  readonly domain: Domain;
  readonly materials: Material[];
  readonly layers: Layer[];
}

function material(b: Builder, m: Material): number {
  b.materials.push(m);
  return b.materials.length - 1;
}

/** An instance color: the palette entry with brightness and channel jitter (a car is not every car). */
function color(b: Builder, part: Part): RGB {
  const base = pick(b.rng, b.domain.palette[part]);
  const j = b.domain.optics.jitter;
  const k = 1 + j * b.rng.uniform(-1, 1);
  return [0, 1, 2].map((c) => base[c]! * k * (1 + (j / 3) * b.rng.uniform(-1, 1))) as unknown as RGB;
}

function flat(b: Builder, part: Part): number {
  return material(b, { kind: "flat", rgb: color(b, part), grain: b.domain.optics.grain * (GRAIN_SCALE[part] ?? 0.5) });
}

function add(b: Builder, shape: Shape, label: number, mat: number): void {
  b.layers.push({ shape, label, material: mat });
}

interface Camera {
  readonly vx: number;
  readonly yh: number;
  readonly g: number;
}

const project = (cam: Camera, X: number, Y: number, Z: number): Point => [cam.vx + (X * cam.g) / Z, cam.yh + ((1 - Y) * cam.g) / Z];

/** A rectangle facing the camera at depth Z: lateral [x0, x1], height [y0, y1], world units. */
function frontRect(cam: Camera, X0: number, X1: number, Y0: number, Y1: number, Z: number): Shape {
  const [a, top] = project(cam, X0, Y1, Z);
  const [c, bottom] = project(cam, X1, Y0, Z);
  return rect(a, top, c, bottom);
}

/** A rectangle in the plane X = const from depth Z0 to Z1 and height Y0 to Y1 (a facade, a wall). */
function sideQuad(cam: Camera, X: number, Z0: number, Z1: number, Y0: number, Y1: number): Shape {
  return { kind: "polygon", points: [project(cam, X, Y0, Z0), project(cam, X, Y0, Z1), project(cam, X, Y1, Z1), project(cam, X, Y1, Z0)] };
}

/** A strip of ground between lateral X0 and X1 from depth Z0 to Z1. */
function groundQuad(cam: Camera, X0: number, X1: number, Z0: number, Z1: number): Shape {
  return { kind: "polygon", points: [project(cam, X0, 0, Z0), project(cam, X1, 0, Z0), project(cam, X1, 0, Z1), project(cam, X0, 0, Z1)] };
}

const NEAR = 0.3;
const FAR = 400;

/** A standing object, drawn after the ground and facades in far-to-near order. */
interface Standing {
  readonly z: number;
  readonly draw: () => void;
}

function car(b: Builder, cam: Camera, X: number, Z: number, scale: number): Standing {
  return {
    z: Z,
    draw: () => {
      const w = 1.15 * scale;
      const h = 0.95 * scale;
      const body = flat(b, "carBody");
      const glass = flat(b, "glass");
      const tire = flat(b, "tire");
      const lamp = material(b, { kind: "flat", rgb: b.domain.palette.lamp[0]!, grain: 0 });
      const L = LABEL_ID.car;
      add(b, frontRect(cam, X - w / 2 + 0.04, X - w / 2 + 0.28, 0, 0.3, Z), L, tire);
      add(b, frontRect(cam, X + w / 2 - 0.28, X + w / 2 - 0.04, 0, 0.3, Z), L, tire);
      add(b, frontRect(cam, X - w / 2, X + w / 2, 0.16, 0.58 * h, Z), L, body);
      const cabin: Point[] = [
        project(cam, X - 0.46 * w, 0.58 * h, Z),
        project(cam, X + 0.46 * w, 0.58 * h, Z),
        project(cam, X + 0.36 * w, h, Z),
        project(cam, X - 0.36 * w, h, Z),
      ];
      add(b, { kind: "polygon", points: cabin }, L, body);
      const win: Point[] = [
        project(cam, X - 0.4 * w, 0.62 * h, Z),
        project(cam, X + 0.4 * w, 0.62 * h, Z),
        project(cam, X + 0.32 * w, 0.94 * h, Z),
        project(cam, X - 0.32 * w, 0.94 * h, Z),
      ];
      add(b, { kind: "polygon", points: win }, L, glass);
      add(b, frontRect(cam, X - w / 2 + 0.05, X - w / 2 + 0.2, 0.42 * h, 0.5 * h, Z), L, lamp);
      add(b, frontRect(cam, X + w / 2 - 0.2, X + w / 2 - 0.05, 0.42 * h, 0.5 * h, Z), L, lamp);
    },
  };
}

function bigVehicle(b: Builder, cam: Camera, X: number, Z: number, kind: "truck" | "bus"): Standing {
  return {
    z: Z,
    draw: () => {
      const w = kind === "bus" ? 1.55 : 1.5;
      const h = kind === "bus" ? 2.1 : 2.3;
      const L = kind === "bus" ? LABEL_ID.bus : LABEL_ID.truck;
      const body = flat(b, kind === "bus" ? "busBody" : "truckBox");
      const tire = flat(b, "tire");
      const glass = flat(b, "glass");
      add(b, frontRect(cam, X - w / 2 + 0.05, X - w / 2 + 0.35, 0, 0.35, Z), L, tire);
      add(b, frontRect(cam, X + w / 2 - 0.35, X + w / 2 - 0.05, 0, 0.35, Z), L, tire);
      add(b, frontRect(cam, X - w / 2, X + w / 2, 0.2, h, Z), L, body);
      if (kind === "bus") add(b, frontRect(cam, X - w / 2 + 0.08, X + w / 2 - 0.08, 1.2, 1.85, Z), L, glass);
      else add(b, frontRect(cam, X - w / 2 + 0.1, X + w / 2 - 0.1, 0.3, 0.5, Z), L, flat(b, "pole"));
    },
  };
}

function person(b: Builder, cam: Camera, X: number, Z: number, label: number, lift = 0): Standing {
  return {
    z: Z,
    draw: () => {
      const hp = b.rng.uniform(1.0, 1.15);
      const top = flat(b, "clothes");
      const legs = flat(b, "clothes");
      const skin = flat(b, "skin");
      const stride = b.rng.uniform(0, 0.08);
      add(b, frontRect(cam, X - 0.13 - stride, X - 0.02 - stride / 2, lift, lift + 0.47 * hp, Z), label, legs);
      add(b, frontRect(cam, X + 0.02 + stride / 2, X + 0.13 + stride, lift, lift + 0.47 * hp, Z), label, legs);
      add(b, frontRect(cam, X - 0.17, X + 0.17, lift + 0.45 * hp, lift + 0.83 * hp, Z), label, top);
      add(b, frontRect(cam, X - 0.22, X - 0.15, lift + 0.5 * hp, lift + 0.8 * hp, Z), label, top);
      add(b, frontRect(cam, X + 0.15, X + 0.22, lift + 0.5 * hp, lift + 0.8 * hp, Z), label, top);
      const [hx, hy] = project(cam, X, lift + 0.915 * hp, Z);
      const r = (0.085 * hp * cam.g) / Z;
      add(b, { kind: "ellipse", cx: hx, cy: hy, rx: r, ry: 1.15 * r }, label, skin);
    },
  };
}

/** A cyclist or motorcyclist seen from the side: the vehicle is labeled apart from the rider. */
function rider(b: Builder, cam: Camera, X: number, Z: number): Standing[] {
  const motor = b.rng.next() < 0.4;
  const vehicle: Standing = {
    z: Z + 0.01,
    draw: () => {
      const L = motor ? LABEL_ID.motorcycle : LABEL_ID.bicycle;
      const frame = flat(b, "bikeFrame");
      const tire = flat(b, "tire");
      const r = motor ? 0.3 : 0.33;
      for (const dx of [-0.5, 0.5]) {
        const [cx, cy] = project(cam, X + dx, r, Z);
        const rr = (r * cam.g) / Z;
        add(b, { kind: "ellipse", cx, cy, rx: rr, ry: rr }, L, tire);
      }
      if (motor) add(b, frontRect(cam, X - 0.45, X + 0.4, 0.3, 0.7, Z), L, frame);
      else {
        add(b, frontRect(cam, X - 0.45, X + 0.45, 0.55, 0.62, Z), L, frame);
        add(b, frontRect(cam, X - 0.05, X + 0.03, 0.3, 0.9, Z), L, frame);
      }
    },
  };
  return [vehicle, person(b, cam, X, Z, LABEL_ID.rider, 0.45)];
}

function tree(b: Builder, cam: Camera, X: number, Z: number): Standing {
  return {
    z: Z,
    draw: () => {
      const trunkH = b.rng.uniform(1.2, 1.9);
      const crown = b.rng.uniform(0.6, 1.15);
      const L = LABEL_ID.vegetation;
      add(b, frontRect(cam, X - 0.07, X + 0.07, 0, trunkH + crown * 0.5, Z), L, flat(b, "trunk"));
      const leaves = flat(b, "foliage");
      // a crown of three overlapping blobs, so it is not a perfect ellipse
      for (const [dx, dy, k] of [[0, 0, 1], [-0.45, -0.25, 0.7], [0.45, -0.2, 0.75]] as const) {
        const [cx, cy] = project(cam, X + dx * crown, trunkH + crown * 0.8 + dy * crown, Z);
        const r = (crown * k * cam.g) / Z;
        add(b, { kind: "ellipse", cx, cy, rx: r, ry: r * 0.9 }, L, leaves);
      }
    },
  };
}

function pole(b: Builder, cam: Camera, X: number, Z: number, side: number): Standing {
  return {
    z: Z,
    draw: () => {
      const h = b.rng.uniform(2.6, 3.6);
      add(b, frontRect(cam, X - 0.045, X + 0.045, 0, h, Z), LABEL_ID.pole, flat(b, "pole"));
      const what = b.rng.next();
      if (what < 0.35) {
        // a traffic light hanging from the top, towards the road
        const lx = X - side * 0.2;
        add(b, frontRect(cam, lx - 0.13, lx + 0.13, h - 0.75, h, Z), LABEL_ID.light, flat(b, "lightBox"));
        const lit = b.rng.int(3);
        for (let k = 0; k < 3; k++) {
          const [cx, cy] = project(cam, lx, h - 0.13 - 0.23 * k, Z);
          const r = (0.075 * cam.g) / Z;
          const m = k === lit ? material(b, { kind: "flat", rgb: b.domain.palette.lamp[k]!, grain: 0 }) : flat(b, "lightBox");
          add(b, { kind: "ellipse", cx, cy, rx: r, ry: r }, LABEL_ID.light, m);
        }
      } else if (what < 0.8) {
        const y = b.rng.uniform(1.7, h - 0.3);
        const plate = flat(b, "signPlate");
        const shape = b.rng.int(3);
        if (shape === 0) {
          const [cx, cy] = project(cam, X, y, Z);
          const r = (0.24 * cam.g) / Z;
          add(b, { kind: "ellipse", cx, cy, rx: r, ry: r }, LABEL_ID.sign, plate);
        } else if (shape === 1) {
          add(b, frontRect(cam, X - 0.25, X + 0.25, y - 0.2, y + 0.2, Z), LABEL_ID.sign, plate);
        } else {
          const pts: Point[] = [project(cam, X - 0.27, y - 0.2, Z), project(cam, X + 0.27, y - 0.2, Z), project(cam, X, y + 0.27, Z)];
          add(b, { kind: "polygon", points: pts }, LABEL_ID.sign, plate);
        }
      }
    },
  };
}

function clutter(b: Builder, cam: Camera, X: number, Z: number): Standing {
  return {
    z: Z,
    draw: () => {
      const h = b.rng.uniform(0.4, 0.9);
      // "static" (id 4): a void class, ignored in training and scoring, as clutter is in Cityscapes
      add(b, frontRect(cam, X - 0.2, X + 0.2, 0, h, Z), 4, flat(b, "clutter"));
    },
  };
}

/** Facades (with windows), gaps and low walls or fences along one side of the street. */
function facades(b: Builder, cam: Camera, side: number, Xf: number, zStart: number): void {
  const { rng, domain } = b;
  const L = domain.layout;
  let z = zStart;
  const quads: { z0: number; z1: number; draw: () => void }[] = [];
  while (z < 60) {
    if (rng.next() < L.gapProb) {
      z += rng.uniform(0.6, 2.5);
      continue;
    }
    const len = draw(rng, L.buildingLength) * (1 + z / 25);
    const h = draw(rng, L.buildingHeight);
    const z0 = z;
    const z1 = z + len;
    const zMid = (z0 + z1) / 2;
    const unit = cam.g / zMid;
    const mat = material(b, {
      kind: "grid",
      rgb: color(b, "building"),
      pane: color(b, "window"),
      x0: cam.vx + (Xf * cam.g) / z0,
      y0: cam.yh,
      cellW: Math.max(2, 0.7 * unit * rng.uniform(0.8, 1.3)),
      cellH: Math.max(2, 0.9 * unit * rng.uniform(0.8, 1.3)),
      grain: domain.optics.grain * (GRAIN_SCALE.building ?? 1),
    });
    quads.push({ z0, z1, draw: () => add(b, sideQuad(cam, Xf, z0, z1, 0, h), LABEL_ID.building, mat) });
    z = z1;
  }
  // far to near
  quads.sort((p, q) => q.z0 - p.z0);
  for (const q of quads) q.draw();
  if (rng.next() < L.wallProb) {
    const z0 = rng.uniform(zStart, zStart + 8);
    const h = rng.uniform(0.4, 0.8);
    add(b, sideQuad(cam, Xf - side * 0.05, z0, z0 + rng.uniform(2, 6), 0, h), LABEL_ID.wall, flat(b, "wall"));
  }
  if (rng.next() < L.fenceProb) {
    const z0 = rng.uniform(zStart, zStart + 10);
    const mat = material(b, {
      kind: "stripes",
      rgb: color(b, "fence"),
      stripe: color(b, "pole"),
      x0: rng.uniform(0, 10),
      period: Math.max(2, (0.35 * cam.g) / (z0 + 2)),
      grain: domain.optics.grain,
    });
    add(b, sideQuad(cam, Xf - side * 0.1, z0, z0 + rng.uniform(2, 7), 0, rng.uniform(0.6, 1.0)), LABEL_ID.fence, mat);
  }
}

function skyline(b: Builder, cam: Camera, width: number, height: number): void {
  const n = 4 + b.rng.int(6);
  const mat = flat(b, "skyline");
  for (let k = 0; k < n; k++) {
    const cx = cam.vx + b.rng.uniform(-0.3, 0.3) * width;
    const w = b.rng.uniform(0.03, 0.09) * width;
    const h = b.rng.uniform(0.03, 0.16) * height;
    add(b, rect(cx - w / 2, cam.yh - h, cx + w / 2, cam.yh + 0.02 * height), LABEL_ID.building, mat);
  }
}

/** Dashed center line and solid edge lines: painted road, still labeled road. */
function markings(b: Builder, cam: Camera, R: number, laneX: number): void {
  const paint = flat(b, "marking");
  for (let z = 1 + b.rng.uniform(0, 3); z < 80; z += 4.5) {
    add(b, groundQuad(cam, laneX - 0.05, laneX + 0.05, z, z + 2), LABEL_ID.road, paint);
  }
  for (const s of [-1, 1]) add(b, groundQuad(cam, s * (R - 0.2), s * (R - 0.13), NEAR, FAR), LABEL_ID.road, paint);
}

export function generateScene(rng: Rng, domain: Domain, width: number, height: number): Scene {
  const b: Builder = { rng, domain, materials: [], layers: [] };
  const L = domain.layout;
  const yh = draw(rng, L.horizon) * height;
  const cam: Camera = { vx: draw(rng, L.vanishX) * width, yh, g: height - yh };
  const R = draw(rng, L.roadHalf);
  const S = draw(rng, L.sidewalk);

  // sky, distant skyline
  const sky = material(b, {
    kind: "vgradient",
    top: color(b, "skyTop"),
    bottom: color(b, "skyHorizon"),
    y0: 0,
    y1: yh,
    grain: domain.optics.grain * (GRAIN_SCALE.skyTop ?? 0.2),
  });
  add(b, rect(0, 0, width, height), LABEL_ID.sky, sky);
  skyline(b, cam, width, height);

  // ground: sidewalk everywhere below the horizon, then verges, road, curbs, markings
  add(b, rect(0, yh, width, height), LABEL_ID.sidewalk, flat(b, "sidewalk"));
  const zStart: Record<number, number> = { [-1]: rng.uniform(NEAR, 1.2), [1]: rng.uniform(NEAR, 1.2) };
  for (const side of [-1, 1]) {
    if (rng.next() < L.terrainProb) {
      add(b, groundQuad(cam, side * (R + S), side * 60, NEAR, FAR), LABEL_ID.terrain, flat(b, "terrain"));
      zStart[side] = rng.uniform(3, 8);
    }
  }
  add(b, { kind: "polygon", points: [project(cam, -R, 0, NEAR), project(cam, R, 0, NEAR), [cam.vx, yh]] }, LABEL_ID.road, flat(b, "road"));
  const curb = flat(b, "curb");
  for (const side of [-1, 1]) add(b, groundQuad(cam, side * R, side * (R + 0.12), NEAR, FAR), LABEL_ID.sidewalk, curb);
  markings(b, cam, R, rng.next() < 0.5 ? 0 : rng.uniform(-0.3, 0.3));

  // facades on both sides (the two sides never overlap, so their order does not matter)
  for (const side of [-1, 1]) facades(b, cam, side, side * (R + S), zStart[side]!);

  // standing objects, drawn far to near
  const things: Standing[] = [];
  const sideOf = () => (rng.next() < 0.5 ? -1 : 1);
  const nCars = count(rng, L.cars);
  for (let k = 0; k < nCars; k++) {
    const parked = rng.next() < 0.35;
    const s = sideOf();
    const X = parked ? s * (R - 0.75) : s * R * rng.uniform(0.3, 0.6);
    const Z = rng.uniform(1.6, 35);
    const r = rng.next();
    if (!parked && r < L.busProb) things.push(bigVehicle(b, cam, X, Z + 2, "bus"));
    else if (!parked && r < L.busProb + L.truckProb) things.push(bigVehicle(b, cam, X, Z + 2, "truck"));
    else things.push(car(b, cam, X, Z, draw(rng, L.carScale)));
  }
  const nPersons = count(rng, L.persons);
  for (let k = 0; k < nPersons; k++) things.push(person(b, cam, sideOf() * (R + S * rng.uniform(0.2, 0.85)), rng.uniform(1.4, 22), LABEL_ID.person));
  const nRiders = count(rng, L.riders);
  for (let k = 0; k < nRiders; k++) things.push(...rider(b, cam, sideOf() * (R - 0.45), rng.uniform(2, 20)));
  const nPoles = count(rng, L.poles);
  for (let k = 0; k < nPoles; k++) {
    const s = sideOf();
    things.push(pole(b, cam, s * (R + 0.3), rng.uniform(1.5, 30), s));
  }
  const nTrees = count(rng, L.trees);
  for (let k = 0; k < nTrees; k++) things.push(tree(b, cam, sideOf() * (R + S * rng.uniform(0.4, 0.8)), rng.uniform(2, 28)));
  const nClutter = count(rng, L.clutter);
  for (let k = 0; k < nClutter; k++) things.push(clutter(b, cam, sideOf() * (R + S * rng.uniform(0.3, 0.9)), rng.uniform(1.5, 15)));
  things.sort((p, q) => q.z - p.z);
  for (const t of things) t.draw();

  // the ego vehicle's hood (label 1, a void class) at the bottom of most camera frames
  if (rng.next() < L.egoHoodProb) {
    const ry = rng.uniform(0.07, 0.13) * height;
    add(b, { kind: "ellipse", cx: width / 2, cy: height + ry * 0.25, rx: 0.8 * width, ry }, LABEL_ID.egoVehicle, flat(b, "hood"));
  }
  return { width, height, materials: b.materials, layers: b.layers };
}
