/**
 * Parquet values as features. Kept apart from parquet-read.ts so that the batch code, which
 * CSV scoring uses too, does not load hyparquet.
 */
const MAX_EXACT = 2n ** 53n;

/**
 * A feature value from Parquet as float32 (a number), or why the row is rejected (a string).
 * No result object: this runs once per value of every Parquet batch.
 */
export function parquetFeature(value: unknown): number | string {
  if (typeof value === 'number') {
    const f = Math.fround(value);
    if (f - f === 0) return f;
    if (Number.isNaN(value)) return 'not finite: NaN (set input.missing: nan to score it as a missing value)';
    return Number.isFinite(value) ? `out of float32 range: ${value}` : `not finite: ${value}`;
  }
  if (value === null || value === undefined) return 'null value (set input.missing: nan to score it as a missing value)';
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') {
    if (value > MAX_EXACT || value < -MAX_EXACT) return `INT64 value ${value} is beyond 2^53 and cannot be converted exactly`;
    return Math.fround(Number(value));
  }
  return `expected a number, got ${typeof value}`;
}
