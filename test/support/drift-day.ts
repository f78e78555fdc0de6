/**
 * The drift tests' model and data: a model of six numeric
 * features and a region, and seeded days of customers drawn like a reference or shifted.
 */
import { buildModel } from '../../scripts/onnx-builder.js';
import { seededRandom } from '../../src/random.js';

export const REGIONS = ['north', 'south', 'east', 'west'];
export const FEATURES = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];

/**
 * f1…f6 (float [N,6]) and region (string [N,1], one-hot as skl2onnx writes it) → probability
 * [N,1]. With `unknownRegion: 'error'` (skl2onnx's handle_unknown="error", zeros: 0) a region
 * the encoder does not know fails its row.
 */
export const driftModel = (bias = -0.2, unknownRegion: 'zeros' | 'error' = 'zeros') =>
  buildModel({
    inputs: [
      { name: 'num', elem: 'float', shape: ['N', 6] },
      { name: 'region', elem: 'string', shape: ['N', 1] },
    ],
    outputs: [{ name: 'probability', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'OneHotEncoder', domain: 'ai.onnx.ml', inputs: ['region'], outputs: ['region_1h3'], attrs: { cats_strings: REGIONS, zeros: unknownRegion === 'zeros' ? 1 : 0 } },
      { op: 'Flatten', inputs: ['region_1h3'], outputs: ['region_1h'], attrs: { axis: 1 } },
      { op: 'Concat', inputs: ['num', 'region_1h'], outputs: ['x'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['z0'] },
      { op: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
      { op: 'Sigmoid', inputs: ['z'], outputs: ['probability'] },
    ],
    floats: { W: { dims: [10, 1], values: [0.8, 0.8, 0.3, 0.2, 0.2, 0.2, 0.4, -0.7, 0.15, 0.9] }, B: { dims: [1], values: [bias] } },
  });

/** A seeded generator of N(0, 1) values and uniform shares: the same data on every machine. */
function generator(seed: number) {
  const uniform = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

export interface Shift {
  /** Added to f1 and f2. */
  shift?: number;
  /** f3 is multiplied by it. */
  scale?: number;
  /** Share of f4 left empty (missing). */
  missing?: number;
  /** Share of regions that are "central", a region the reference never had. */
  unseen?: number;
}

/** `rows` customers as CSV: f1…f6 ~ N(0, 1), region 40/30/20/10 %, changed as `shift` says. */
export function day(rows: number, seed: number, shift: Shift = {}): string {
  const { uniform, normal } = generator(seed);
  const lines = [`id,${FEATURES.join(',')},region`];
  for (let i = 0; i < rows; i++) {
    const f = FEATURES.map(() => normal());
    f[0]! += shift.shift ?? 0;
    f[1]! += shift.shift ?? 0;
    f[2]! *= shift.scale ?? 1;
    const u = uniform();
    const region = uniform() < (shift.unseen ?? 0) ? 'central' : u < 0.4 ? 'north' : u < 0.7 ? 'south' : u < 0.9 ? 'east' : 'west';
    const cells = f.map((x) => x.toFixed(4));
    if (uniform() < (shift.missing ?? 0)) cells[3] = '';
    lines.push(`c${seed}-${i},${cells.join(',')},${region}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface SegmentShift {
  /** The region whose rows have f1 and f2 moved by `shift`; the other regions are drawn as the reference. */
  region?: string;
  shift?: number;
  /** Stores s00 … s(stores − 1), store k drawn about 1/(k + 1) as often as s00. @defaultValue 60 */
  stores?: number;
  /** Share of rows whose store is one the reference never had ("s-new"). */
  newStore?: number;
  /** Share of rows with no store (an empty key). */
  noStore?: number;
}

/**
 * `rows` customers as CSV for segmented drift: a store key, f1…f6 ~ N(0, 1), and the four
 * regions a quarter each, so every region holds enough rows for its statistics to tell.
 */
export function segmentDay(rows: number, seed: number, opts: SegmentShift = {}): string {
  const { uniform, normal } = generator(seed);
  const stores = opts.stores ?? 60;
  // Harmonic weights: a long tail of small stores, with distinct expected frequencies.
  const weights = Array.from({ length: stores }, (_, k) => 1 / (k + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const pickStore = () => {
    let u = uniform() * total;
    for (let k = 0; k < stores; k++) if ((u -= weights[k]!) < 0) return `s${String(k).padStart(2, '0')}`;
    return `s${String(stores - 1).padStart(2, '0')}`;
  };
  const lines = [`id,store,${FEATURES.join(',')},region`];
  for (let i = 0; i < rows; i++) {
    const region = REGIONS[Math.floor(uniform() * 4)]!;
    const f = FEATURES.map(() => normal());
    if (region === opts.region) {
      f[0]! += opts.shift ?? 0;
      f[1]! += opts.shift ?? 0;
    }
    const u = uniform();
    const store = u < (opts.noStore ?? 0) ? '' : u < (opts.noStore ?? 0) + (opts.newStore ?? 0) ? 's-new' : pickStore();
    lines.push(`c${seed}-${i},${store},${f.map((x) => x.toFixed(4)).join(',')},${region}`);
  }
  return `${lines.join('\n')}\n`;
}
