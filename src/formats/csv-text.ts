/**
 * CSV text for prediction parts, written straight into bytes. csv-stringify (still used for
 * headers and rejects) builds a string per field and per row; at a million rows a second
 * that garbage, and printing float32 values through toPrecision, was most of a run's time.
 * The output is byte for byte what csv-stringify with formatFloat32 printed: test/csv-text.test.ts
 * holds the two side by side.
 */
import { formatFloat32 } from './numbers.js';

const LF = 0x0a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * First characters (as char codes, all ASCII) of a cell a spreadsheet would run as a formula:
 * = + - @ TAB CR. escapeFormula (csv-write.ts) tests text against the same list.
 */
export const FORMULA_START = [0x3d, 0x2b, 0x2d, 0x40, 0x09, 0x0d];

/** Exact powers of ten, 10^0..10^22. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** A growing byte buffer holding one batch of CSV rows. */
export class CsvText {
  private buf: Buffer;
  private pos = 0;
  private readonly digits = new Uint8Array(17);

  constructor(
    capacity: number,
    private readonly delimiter: number,
    /** Matches a text cell that must be quoted: one holding a quote, the delimiter, CR or LF. */
    private readonly needsQuotes: RegExp,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** The bytes written so far; the buffer is not reused, so the caller may keep them. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  separator(): void {
    this.reserve(1);
    this.buf[this.pos++] = this.delimiter;
  }

  endRow(): void {
    this.reserve(1);
    this.buf[this.pos++] = LF;
  }

  /** A text cell, quoted (inner quotes doubled) only when it must be, as csv-stringify does. */
  text(value: string): void {
    if (this.needsQuotes.test(value)) value = `"${value.replaceAll('"', '""')}"`;
    this.reserve(value.length * 3);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /**
   * A text cell given as UTF-8 bytes, copied without making a string. With
   * `escapeFormulas`, a cell a spreadsheet would run gets escapeFormula's leading quote.
   */
  textBytes(src: Uint8Array, start: number, end: number, escapeFormulas: boolean): void {
    const delimiter = this.delimiter;
    for (let i = start; i < end; i++) {
      const c = src[i];
      if (c === 0x22 || c === delimiter || c === 0x0a || c === 0x0d) {
        // Rare: let the string path quote it.
        const text = Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('utf8');
        return this.text(escapeFormulas && FORMULA_START.includes(src[start] as number) ? `'${text}` : text);
      }
    }
    this.reserve(end - start + 1);
    const buf = this.buf;
    let pos = this.pos;
    if (escapeFormulas && end > start && FORMULA_START.includes(src[start] as number)) buf[pos++] = 0x27;
    for (let i = start; i < end; i++) buf[pos++] = src[i] as number;
    this.pos = pos;
  }

  /** An integer (a label), as String() prints it, without making the string when it is safe. */
  integer(v: number | bigint): void {
    const n = typeof v === 'bigint' ? (v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : NaN) : v;
    if (!Number.isSafeInteger(n)) return this.ascii(String(v));
    this.reserve(17);
    const buf = this.buf;
    let m = n;
    if (m < 0) {
      buf[this.pos++] = MINUS;
      m = -m;
    }
    if (m === 0) {
      buf[this.pos++] = ZERO;
      return;
    }
    const digits = this.digits;
    let first = digits.length;
    for (; m > 0; m = Math.floor(m / 10)) digits[--first] = ZERO + (m % 10);
    for (let i = first; i < digits.length; i++) buf[this.pos++] = digits[i] as number;
  }

  /** A cell that is ASCII by construction (numbers, booleans). */
  ascii(value: string): void {
    this.reserve(value.length);
    this.pos += this.buf.write(value, this.pos, 'latin1');
  }

  /** A float32 in the shortest text that reads back as the same float32 (formatFloat32's text). */
  float32(x: number): void {
    if (!shortest(x)) return this.ascii(formatFloat32(x));
    this.reserve(32);
    const buf = this.buf;
    let pos = this.pos;
    if (x < 0) buf[pos++] = MINUS;
    // The digits of `found`, most significant first, at digits[first..].
    const digits = this.digits;
    let first = digits.length;
    for (let m = found.m; m > 0; m = (m / 10) | 0) digits[--first] = ZERO + (m % 10);
    const k = digits.length - first;
    const n = found.n;
    // Number.prototype.toString's layout for k digits and decimal point position n.
    if (k <= n && n <= 21) {
      for (let i = 0; i < k; i++) buf[pos++] = digits[first + i] as number;
      for (let i = k; i < n; i++) buf[pos++] = ZERO;
    } else if (0 < n && n <= 21) {
      for (let i = 0; i < n; i++) buf[pos++] = digits[first + i] as number;
      buf[pos++] = DOT;
      for (let i = n; i < k; i++) buf[pos++] = digits[first + i] as number;
    } else if (-6 < n && n <= 0) {
      buf[pos++] = ZERO;
      buf[pos++] = DOT;
      for (let i = n; i < 0; i++) buf[pos++] = ZERO;
      for (let i = 0; i < k; i++) buf[pos++] = digits[first + i] as number;
    } else {
      buf[pos++] = digits[first] as number;
      if (k > 1) {
        buf[pos++] = DOT;
        for (let i = 1; i < k; i++) buf[pos++] = digits[first + i] as number;
      }
      pos += buf.write(n - 1 < 0 ? `e-${1 - n}` : `e+${n - 1}`, pos, 'latin1');
    }
    this.pos = pos;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/** The shortest digits found: value = 0.{m's digits} × 10^n, trailing zeros removed. */
const found = { m: 0, n: 0 };

/**
 * Finds the fewest significant digits (1..9) that read back as the float32 `x`, the way
 * formatFloat32 does (start at 7, walk down, else 8, else 9), but in integer arithmetic:
 * the p-digit rounding is |x|·10^k rounded, computed in one correctly rounded double
 * operation, and the read-back m / 10^k is the exactly rounded double Number() would give
 * (both operands exact: Clinger). A product within 1e-6 of a rounding tie, or a k beyond
 * ±22, or zero/non-finite input returns false, and the caller uses formatFloat32.
 */
function shortest(x: number): boolean {
  const ax = Math.abs(x);
  if (!(ax > 0) || ax === Infinity) return false;
  let e = Math.floor(Math.log10(ax));
  // log10 can be one off next to a power of ten.
  if (scaled(ax, -e) < 1) e--;
  else if (scaled(ax, -e - 1) >= 1) e++;
  let p = 7;
  let m = roundTo(ax, p, e);
  if (m === -1) return false;
  if (m > 0) {
    let best = { m, n: roundedExponent + 1 };
    while (p > 1) {
      m = roundTo(ax, p - 1, e);
      if (m === -1) return false;
      if (m === 0) break;
      best = { m, n: roundedExponent + 1 };
      p--;
    }
    found.m = best.m;
    found.n = best.n;
  } else {
    m = roundTo(ax, 8, e);
    if (m === 0) m = roundTo(ax, 9, e);
    if (m <= 0) return false;
    found.m = m;
    found.n = roundedExponent + 1;
  }
  while (found.m % 10 === 0) found.m /= 10;
  return true;
}

/** x · 10^k in one correctly rounded operation; NaN when 10^|k| is not exact. */
function scaled(x: number, k: number): number {
  if (k > 22 || k < -22) return NaN;
  return k >= 0 ? x * (POW10[k] as number) : x / (POW10[-k] as number);
}

/** The decimal exponent of roundTo's last result (a carry can make it e + 1). */
let roundedExponent = 0;

/**
 * `ax` (whose decimal exponent is e) rounded to p significant digits, half up as
 * toPrecision rounds, as an integer m of p digits; 0 if that does not read back as `ax`;
 * -1 if it cannot be decided exactly here.
 */
function roundTo(ax: number, p: number, e: number): number {
  const k = p - 1 - e;
  const product = scaled(ax, k);
  if (Number.isNaN(product)) return -1;
  if (Math.abs(product - Math.floor(product) - 0.5) < 1e-6) {
    // Too close to a tie to know which way toPrecision rounds; if neither neighbour reads
    // back (2.5 at one digit), the answer does not depend on it.
    const down = Math.floor(product);
    const readsBack = (m: number) => Math.fround(scaled(m, -k)) === ax;
    return readsBack(down) || readsBack(down + 1) ? -1 : 0;
  }
  let m = Math.round(product);
  roundedExponent = e;
  if (m === POW10[p]) {
    // 9.99…5 rounds up to 10.0…: one digit more before the point.
    m = POW10[p - 1] as number;
    roundedExponent = e + 1;
  } else if (m < (POW10[p - 1] as number) || m > (POW10[p] as number)) {
    return -1;
  }
  const back = roundedExponent === e ? scaled(m, -k) : scaled(m, -k + 1);
  if (Number.isNaN(back)) return -1;
  return Math.fround(back) === ax ? m : 0;
}
