/**
 * Text <-> number conversions with the exact rules docs/job-file.md promises: what counts as a
 * feature value, and how predictions print so that they read back bit-for-bit.
 */

/** Exact powers of ten: 10^0..10^22 are exact doubles, the range Clinger's fast path needs. */
export const POW10 = Float64Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

export const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE_RE = /^[+-]?(?:nan|inf|infinity)$/i;
export const NAN_RE = /^nan$/i;
export const MISSING_HINT = 'set input.missing: nan to score it as a missing value';

/** Outcome of reading one feature field: a float32 value, or why the row is rejected. */
export type FeatureValue = { ok: true; value: number } | { ok: false; reason: string };

/**
 * Reads one feature field as float32. Only plain decimal notation passes: "0x10", "1_000",
 * "12abc" and "" are rejected rather than guessed at, and so is anything that is not
 * finite once narrowed to float32 (1e39 becomes Infinity). Where `missing` allows it, an
 * empty field and `NaN` (any case) are the missing value, NaN.
 */
export function parseFeature(raw: string, missing = false): FeatureValue {
  const text = raw.trim();
  if (text === '') return missing ? { ok: true, value: NaN } : { ok: false, reason: `empty value (${MISSING_HINT})` };
  if (!DECIMAL_RE.test(text)) {
    if (NAN_RE.test(text)) return missing ? { ok: true, value: NaN } : { ok: false, reason: `not finite: ${quote(text)} (${MISSING_HINT})` };
    if (NON_FINITE_RE.test(text)) return { ok: false, reason: `not finite: ${quote(text)}` };
    return { ok: false, reason: `expected a number, got ${quote(text)}` };
  }
  const value = Math.fround(Number(text));
  if (!Number.isFinite(value)) return { ok: false, reason: `out of float32 range: ${quote(text)}` };
  return { ok: true, value };
}

/** A value in a reject reason, quoted and cut at 40 characters. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/**
 * Shortest decimal that reads back as the same float32. JavaScript's own String(x) is
 * shortest for float64, which prints float32 values as 0.10000000149011612; here the
 * fewest significant digits (at most 9, which always suffice) are searched instead.
 */
export function formatFloat32(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  // Round-tripping is monotone in the digit count, so start where most float32 values land
  // (7) and walk down to the shortest, or up to 8 or 9 (9 always suffices).
  const roundTrips = (p: number) => Math.fround(Number(value.toPrecision(p))) === value;
  let p = 7;
  if (roundTrips(p)) while (p > 1 && roundTrips(p - 1)) p--;
  else p = roundTrips(8) ? 8 : 9;
  // Number() then String() turns "1e+2" into "100" and drops trailing zeros.
  return String(Number(value.toPrecision(p)));
}

/**
 * A float64 in JavaScript's shortest round-trip text, except -0, which String() prints as
 * "0": a key or a prediction of -0 is written `-0`, so it reads back as the value it was.
 */
export function formatFloat64(value: number): string {
  return value === 0 && 1 / value < 0 ? '-0' : String(value);
}

/**
 * The value of IEEE half-precision bits (onnxruntime's float16 tensors hold the bits in a
 * Uint16Array): exact as a number, so formatFloat32 prints it in text that reads back to the
 * same half.
 */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}
