/**
 * Values of the model inputs that are not float32 (float32 has its own fast paths, in
 * numbers.ts and csv-scan.ts): read from CSV text or a decoded Parquet value, checked for
 * the input's element type, and stored into the column's array. Each returns undefined
 * when the value was stored, or why the row is rejected; no result object, because this
 * runs once per value.
 */
import { setFloat16 } from '@petamoriken/float16';
import type { ColumnValues, ElementType } from '../model/features.js';
import { DECIMAL_RE, MISSING_HINT, NAN_RE, quote } from './numbers.js';

type TypedType = Exclude<ElementType, 'float32'>;

const INTEGER_RE = /^[+-]?\d+$/;
const INT_RANGE = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
} as const;
const MAX_EXACT = 2n ** 53n;
/** Converts a number to float16 bits, rounding to nearest even as a cast does. */
const HALF = new DataView(new ArrayBuffer(2));

/** Reads one CSV field (unquoted) for a column of `type` into values[at]. */
export function storeText(type: TypedType, values: ColumnValues, at: number, raw: string, missing: boolean): string | undefined {
  if (type === 'string') {
    if (raw.includes('\0')) return nulReason(raw);
    // Byte for byte: a category is compared as it is, spaces and all.
    (values as string[])[at] = raw;
    return undefined;
  }
  const text = raw.trim();
  if (type === 'bool') {
    const lower = text.toLowerCase();
    if (lower === 'true' || lower === '1') (values as Uint8Array)[at] = 1;
    else if (lower === 'false' || lower === '0') (values as Uint8Array)[at] = 0;
    else return text === '' ? 'empty value (a bool input has no missing value)' : `expected a bool (true, false, 1 or 0), got ${quote(text)}`;
    return undefined;
  }
  if (type === 'int64' || type === 'int32') {
    if (!INTEGER_RE.test(text)) {
      if (text === '') return `empty value (an ${type} input has no missing value)`;
      return `expected an integer (${type}), got ${quote(text)}`;
    }
    return storeInteger(type, values, at, BigInt(text), text);
  }
  if (text === '' || NAN_RE.test(text)) {
    if (missing) return storeFloat(type, values, at, NaN, text);
    return text === '' ? `empty value (${MISSING_HINT})` : `not finite: ${quote(text)} (${MISSING_HINT})`;
  }
  if (!DECIMAL_RE.test(text)) return `expected a number (${type}), got ${quote(text)}`;
  return storeFloat(type, values, at, Number(text), text);
}

/** Stores one decoded Parquet value for a column of `type` into values[at]. */
export function storeValue(type: TypedType, values: ColumnValues, at: number, value: unknown, missing: boolean): string | undefined {
  if (value === null || value === undefined) {
    if (type === 'float64' || type === 'float16') return missing ? storeFloat(type, values, at, NaN, 'null') : `null value (${MISSING_HINT})`;
    return `null value (a ${type} input has no missing value)`;
  }
  if (type === 'string') {
    if (typeof value !== 'string') return `expected text (string), got ${describe(value)}`;
    if (value.includes('\0')) return nulReason(value);
    (values as string[])[at] = value;
    return undefined;
  }
  if (type === 'bool') {
    if (typeof value === 'boolean') (values as Uint8Array)[at] = value ? 1 : 0;
    else if (value === 0 || value === 1 || value === 0n || value === 1n) (values as Uint8Array)[at] = Number(value);
    else return `expected a bool, got ${describe(value)}`;
    return undefined;
  }
  if (type === 'int64' || type === 'int32') {
    if (typeof value === 'bigint') return storeInteger(type, values, at, value, String(value));
    if (typeof value === 'boolean') return storeInteger(type, values, at, value ? 1n : 0n, String(value));
    if (typeof value === 'number' && Number.isSafeInteger(value)) return storeInteger(type, values, at, BigInt(value), String(value));
    return `expected an integer (${type}), got ${describe(value)}`;
  }
  if (typeof value === 'number') {
    if (Number.isNaN(value) && !missing) return `not finite: NaN (${MISSING_HINT})`;
    return storeFloat(type, values, at, value, String(value));
  }
  if (typeof value === 'boolean') return storeFloat(type, values, at, value ? 1 : 0, String(value));
  if (typeof value === 'bigint') {
    if (value > MAX_EXACT || value < -MAX_EXACT) return `INT64 value ${value} is beyond 2^53 and cannot be converted exactly`;
    return storeFloat(type, values, at, Number(value), String(value));
  }
  return `expected a number (${type}), got ${describe(value)}`;
}

/**
 * onnxruntime-node hands string tensors to the model as C strings, which end at the first NUL:
 * "a\0x" and "a\0y" would both be scored as "a". Such a value is refused, never cut short.
 */
function nulReason(text: string): string {
  return `holds a NUL character, where onnxruntime would cut the text short: ${quote(text)}`;
}

function storeInteger(type: 'int64' | 'int32', values: ColumnValues, at: number, value: bigint, text: string): string | undefined {
  const [min, max] = INT_RANGE[type];
  if (value < min || value > max) return `out of ${type} range: ${quote(text)}`;
  if (type === 'int64') (values as BigInt64Array)[at] = value;
  else (values as Int32Array)[at] = Number(value);
  return undefined;
}

function storeFloat(type: 'float64' | 'float16', values: ColumnValues, at: number, value: number, text: string): string | undefined {
  if (!Number.isNaN(value) && !Number.isFinite(value)) return `not finite: ${quote(text)}`;
  if (type === 'float64') {
    (values as Float64Array)[at] = value;
    return undefined;
  }
  HALF.setUint16(0, 0);
  setFloat16(HALF, 0, value);
  const bits = HALF.getUint16(0);
  // Past 65504 a half is infinite: the value would change, not round.
  if ((bits & 0x7fff) === 0x7c00) return `out of float16 range: ${quote(text)}`;
  (values as Uint16Array)[at] = bits;
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `text ${quote(value)}`;
  if (value instanceof Date) return `a timestamp (${value.toISOString()})`;
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return typeof value;
}
