// The two domains of the synthetic benchmark, as data.
//
// What is shared: the label space (Cityscapes label ids) and the *kind* of layout — a street seen
// from a car, sky above, road below converging to a vanishing point, sidewalks and facades on the
// sides, cars on the road, people on the sidewalks. Output-space adaptation (AdaptSegNet) relies on
// exactly this: the spatial structure of a good segmentation looks alike in both domains, so a
// discriminator on the softmax output can tell "source-like" from "target-like" predictions.
//
// What differs, the way a game differs from a camera:
//   - palette: the game is saturated and clean; the camera is muted, overcast, warmer. Crucially
//     some class colors cross over: the target's road is light and warm like the source's
//     sidewalk, and the target's sidewalk is dark like the source's road. A source-trained model
//     then paints the middle of a target street as sidewalk — a layout that never occurs in the
//     source, which is what the output-space discriminator can see and correct. The target sky is
//     overcast near-white, the vegetation darker and the buildings grayer.
//   - texture and optics: the camera adds surface grain, vignetting, a lighting gradient, exposure
//     changes, sensor noise and a slight blur; the game has almost none.
//   - layout statistics: lower horizon, narrower road, more and larger cars, fewer pedestrians,
//     an ego-vehicle hood (label 1, ignored) at the bottom of most camera frames.
//
// `shift` in [0, 1] interpolates every target number from the source value (0: no gap) to the
// values below (1: the full gap), so the trainer can measure how adaptation behaves as the gap grows.

export type RGB = readonly [number, number, number];
export type Range = readonly [number, number];

/** Surfaces that get a color; several parts can carry one label (windows are building). */
export const PARTS = [
  "skyTop",
  "skyHorizon",
  "road",
  "marking",
  "sidewalk",
  "curb",
  "terrain",
  "building",
  "window",
  "skyline",
  "wall",
  "fence",
  "pole",
  "lightBox",
  "lamp",
  "signPlate",
  "trunk",
  "foliage",
  "skin",
  "clothes",
  "carBody",
  "glass",
  "tire",
  "truckBox",
  "busBody",
  "bikeFrame",
  "hood",
  "clutter",
] as const;
export type Part = (typeof PARTS)[number];

export interface Optics {
  /** Multiplicative surface grain amplitude (fraction of the color). */
  readonly grain: number;
  /** Grain cell size as a fraction of the image height. */
  readonly grainCell: number;
  /** Standard deviation of additive per-pixel sensor noise, in 0-255 units. */
  readonly noiseSigma: number;
  /** Passes of a [1 2 1]/4 blur in each direction. */
  readonly blurPasses: number;
  /** Darkening at the corners: factor 1 - vignette * r^2, r = 1 at the corners. */
  readonly vignette: number;
  /** Peak-to-peak amplitude of a linear lighting ramp across the frame. */
  readonly lightRamp: number;
  /** Range of a global exposure gain. */
  readonly exposure: Range;
  /** Maximum per-channel gain deviation (a white-balance cast). */
  readonly colorCast: number;
  /** Per-instance color jitter, fraction of the color. */
  readonly jitter: number;
}

export interface LayoutStats {
  /** Horizon height as a fraction of the image height. */
  readonly horizon: Range;
  /** Vanishing point x as a fraction of the image width. */
  readonly vanishX: Range;
  /** Road half-width, in camera heights. */
  readonly roadHalf: Range;
  /** Sidewalk width, in camera heights. */
  readonly sidewalk: Range;
  /** Facade height, in camera heights. */
  readonly buildingHeight: Range;
  /** Facade length along the street, in camera heights. */
  readonly buildingLength: Range;
  /** Probability of a gap between two facades. */
  readonly gapProb: number;
  /** Probability that one side has a terrain verge instead of facades near the camera. */
  readonly terrainProb: number;
  readonly cars: Range;
  /** Car size multiplier (how large cars look for the camera). */
  readonly carScale: Range;
  readonly persons: Range;
  readonly riders: Range;
  readonly poles: Range;
  readonly trees: Range;
  readonly clutter: Range;
  readonly truckProb: number;
  readonly busProb: number;
  readonly wallProb: number;
  readonly fenceProb: number;
  readonly egoHoodProb: number;
}

export interface Domain {
  readonly name: "source" | "target";
  readonly palette: Readonly<Record<Part, readonly RGB[]>>;
  readonly optics: Optics;
  readonly layout: LayoutStats;
}

/** The game: saturated flat colors, clean light, almost no noise. */
export const GAME: Domain = {
  name: "source",
  palette: {
    skyTop: [[52, 120, 228]],
    skyHorizon: [[150, 200, 250]],
    road: [[78, 78, 88], [88, 86, 96]],
    marking: [[240, 240, 235]],
    sidewalk: [[186, 166, 150], [176, 158, 146]],
    curb: [[210, 205, 200]],
    terrain: [[128, 196, 64], [150, 200, 80]],
    building: [[178, 84, 62], [214, 188, 136], [112, 128, 170], [226, 222, 206]],
    window: [[70, 110, 170]],
    skyline: [[120, 140, 190]],
    wall: [[204, 190, 160]],
    fence: [[150, 108, 60]],
    pole: [[64, 64, 72]],
    lightBox: [[36, 36, 36]],
    lamp: [[250, 60, 40], [250, 210, 40], [60, 230, 90]],
    signPlate: [[30, 90, 215], [225, 40, 40], [245, 205, 20]],
    trunk: [[110, 72, 40]],
    foliage: [[40, 160, 50], [70, 176, 40]],
    skin: [[236, 186, 150], [170, 120, 90]],
    clothes: [[220, 40, 40], [40, 80, 210], [250, 200, 30], [30, 170, 90], [240, 240, 240], [30, 30, 30]],
    carBody: [[210, 30, 30], [30, 70, 210], [240, 240, 240], [25, 25, 28], [240, 200, 20], [40, 170, 80]],
    glass: [[40, 55, 80]],
    tire: [[20, 20, 20]],
    truckBox: [[230, 230, 230], [210, 120, 40]],
    busBody: [[240, 130, 20], [30, 110, 210]],
    bikeFrame: [[30, 30, 30], [200, 30, 30]],
    hood: [[30, 30, 34]],
    clutter: [[120, 90, 160]],
  },
  optics: {
    grain: 0.02,
    grainCell: 0.03,
    noiseSigma: 1.5,
    blurPasses: 0,
    vignette: 0,
    lightRamp: 0.04,
    exposure: [0.98, 1.02],
    colorCast: 0,
    jitter: 0.06,
  },
  layout: {
    horizon: [0.36, 0.46],
    vanishX: [0.4, 0.6],
    roadHalf: [1.8, 2.8],
    sidewalk: [0.9, 1.8],
    buildingHeight: [2.0, 6.0],
    buildingLength: [1.5, 4.0],
    gapProb: 0.15,
    terrainProb: 0.3,
    cars: [1, 5],
    carScale: [0.95, 1.05],
    persons: [2, 6],
    riders: [0, 1],
    poles: [2, 5],
    trees: [2, 5],
    clutter: [0, 2],
    truckProb: 0.25,
    busProb: 0.2,
    wallProb: 0.35,
    fenceProb: 0.35,
    egoHoodProb: 0,
  },
};

/** The camera: muted, overcast, textured, noisy, slightly blurred; road and sidewalk tones crossed over. */
export const CAMERA: Domain = {
  name: "target",
  palette: {
    skyTop: [[196, 204, 214]],
    skyHorizon: [[226, 228, 230]],
    road: [[164, 150, 138], [152, 142, 134]],
    marking: [[214, 214, 206]],
    sidewalk: [[92, 94, 104], [104, 104, 112]],
    curb: [[150, 150, 146]],
    terrain: [[118, 124, 72], [132, 128, 84]],
    building: [[128, 116, 106], [152, 150, 142], [108, 102, 98], [172, 166, 150]],
    window: [[48, 54, 60]],
    skyline: [[170, 174, 182]],
    wall: [[150, 144, 132]],
    fence: [[98, 98, 92]],
    pole: [[124, 124, 118]],
    lightBox: [[60, 62, 60]],
    lamp: [[200, 90, 70], [210, 180, 90], [110, 190, 130]],
    signPlate: [[70, 100, 150], [170, 70, 66], [190, 170, 70]],
    trunk: [[80, 66, 52]],
    foliage: [[66, 88, 52], [82, 98, 58]],
    skin: [[200, 160, 140], [140, 104, 84]],
    clothes: [[120, 50, 50], [56, 66, 100], [160, 140, 80], [60, 90, 70], [190, 186, 180], [46, 46, 48]],
    carBody: [[120, 40, 40], [50, 62, 96], [190, 192, 194], [40, 40, 44], [150, 140, 100], [70, 90, 76]],
    glass: [[60, 66, 72]],
    tire: [[30, 30, 32]],
    truckBox: [[186, 186, 180], [150, 110, 80]],
    busBody: [[176, 120, 70], [70, 100, 140]],
    bikeFrame: [[50, 50, 52], [120, 50, 50]],
    hood: [[52, 52, 58]],
    clutter: [[100, 90, 110]],
  },
  optics: {
    grain: 0.12,
    grainCell: 0.012,
    noiseSigma: 7,
    blurPasses: 1,
    vignette: 0.3,
    lightRamp: 0.25,
    exposure: [0.82, 1.12],
    colorCast: 0.06,
    jitter: 0.1,
  },
  layout: {
    horizon: [0.42, 0.52],
    vanishX: [0.42, 0.58],
    roadHalf: [1.5, 2.3],
    sidewalk: [0.8, 1.5],
    buildingHeight: [2.5, 7.0],
    buildingLength: [1.2, 3.0],
    gapProb: 0.08,
    terrainProb: 0.2,
    cars: [2, 7],
    carScale: [1.05, 1.2],
    persons: [1, 4],
    riders: [0, 2],
    poles: [2, 6],
    trees: [2, 6],
    clutter: [0, 3],
    truckProb: 0.15,
    busProb: 0.12,
    wallProb: 0.25,
    fenceProb: 0.25,
    egoHoodProb: 0.75,
  },
};

const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
const lerpRange = (a: Range, b: Range, t: number): Range => [lerp(a[0], b[0], t), lerp(a[1], b[1], t)];
const lerpRgb = (a: RGB, b: RGB, t: number): RGB => [lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)];

/** The target domain at gap `shift`: every number moves from the game's (0) to the camera's (1). */
export function targetDomain(shift: number): Domain {
  if (!(shift >= 0 && shift <= 1)) throw new Error(`targetDomain: shift must be in [0, 1], got ${shift}`);
  const palette = {} as Record<Part, readonly RGB[]>;
  for (const p of PARTS) {
    const a = GAME.palette[p];
    const b = CAMERA.palette[p];
    if (a.length !== b.length) throw new Error(`domains: palette ${p} has ${a.length} vs ${b.length} entries`);
    palette[p] = a.map((c, i) => lerpRgb(c, b[i]!, shift));
  }
  const o = GAME.optics;
  const q = CAMERA.optics;
  const l = GAME.layout;
  const m = CAMERA.layout;
  return {
    name: "target",
    palette,
    optics: {
      grain: lerp(o.grain, q.grain, shift),
      grainCell: lerp(o.grainCell, q.grainCell, shift),
      noiseSigma: lerp(o.noiseSigma, q.noiseSigma, shift),
      // a blur pass is all or nothing; it comes in past the middle of the gap
      blurPasses: shift >= 0.5 ? q.blurPasses : o.blurPasses,
      vignette: lerp(o.vignette, q.vignette, shift),
      lightRamp: lerp(o.lightRamp, q.lightRamp, shift),
      exposure: lerpRange(o.exposure, q.exposure, shift),
      colorCast: lerp(o.colorCast, q.colorCast, shift),
      jitter: lerp(o.jitter, q.jitter, shift),
    },
    layout: {
      horizon: lerpRange(l.horizon, m.horizon, shift),
      vanishX: lerpRange(l.vanishX, m.vanishX, shift),
      roadHalf: lerpRange(l.roadHalf, m.roadHalf, shift),
      sidewalk: lerpRange(l.sidewalk, m.sidewalk, shift),
      buildingHeight: lerpRange(l.buildingHeight, m.buildingHeight, shift),
      buildingLength: lerpRange(l.buildingLength, m.buildingLength, shift),
      gapProb: lerp(l.gapProb, m.gapProb, shift),
      terrainProb: lerp(l.terrainProb, m.terrainProb, shift),
      cars: lerpRange(l.cars, m.cars, shift),
      carScale: lerpRange(l.carScale, m.carScale, shift),
      persons: lerpRange(l.persons, m.persons, shift),
      riders: lerpRange(l.riders, m.riders, shift),
      poles: lerpRange(l.poles, m.poles, shift),
      trees: lerpRange(l.trees, m.trees, shift),
      clutter: lerpRange(l.clutter, m.clutter, shift),
      truckProb: lerp(l.truckProb, m.truckProb, shift),
      busProb: lerp(l.busProb, m.busProb, shift),
      wallProb: lerp(l.wallProb, m.wallProb, shift),
      fenceProb: lerp(l.fenceProb, m.fenceProb, shift),
      egoHoodProb: lerp(l.egoHoodProb, m.egoHoodProb, shift),
    },
  };
}
