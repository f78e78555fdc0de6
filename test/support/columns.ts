import type { ScanColumn } from '../../src/formats/csv-scan.js';
import type { FeatureColumn } from '../../src/model/features.js';

/** Columns of one float32 input, as model.features declares them. */
export function float32Columns(names: string[]): FeatureColumn[] {
  return names.map((name) => ({ name, type: 'float32', missing: false }));
}

/** Those columns at their header positions, for the scanner. */
export function scanColumns(positions: number[]): ScanColumn[] {
  return positions.map((at) => ({ at, float32: true, missing: false }));
}
