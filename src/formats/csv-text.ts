/**
 * CSV text for prediction parts, written straight into bytes. csv-stringify (still used for
 * headers and rejects) builds a string per field and per row; at a million rows a second
 * that garbage, and printing float32 values through toPrecision, was most of a run's time.
 * The output is byte for byte what csv-stringify with formatFloat32 printed: test/csv-text.test.ts
 * holds the two side by side.
 */
import { formatFloat32, POW10 } from './numbers.js';

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

const INV_POW10 = POW10.map((p) => 1 / p);

/** A growing byte buffer holding one batch of CSV rows. */
/** A text cell a spreadsheet would treat as a formula gets a leading single quote (OWASP's advice). */
export function escapeFormula(text: string): string {
  return FORMULA_START.includes(text.charCodeAt(0)) ? `'${text}` : text;
}

export class CsvText {
  private buf: Buffer;
  private pos = 0;
  /** Scratch for integer(): a safe integer has at most 16 digits. */
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
    one[0] = x;
    this.float32At(one, 0);
  }

  /**
   * values[i] as float32() prints it. Taking the array and index rather than the number keeps
   * the value unboxed: a double passed to a function V8 does not inline is allocated on the
   * heap, and at two values a row that garbage cost more than the printing.
   */
  float32At(values: Float32Array | Float64Array, i: number): void {
    const x = values[i] as number;
    if (!shortest(values, i)) return this.ascii(formatFloat32(x));
    this.reserve(32);
    const buf = this.buf;
    let pos = this.pos;
    if (x < 0) buf[pos++] = MINUS;
    // The digits are found.m's k digits; the decimal point goes after the n-th.
    const m = found.m;
    const n = found.n;
    let k = 1;
    while (k < 9 && m >= (POW10[k] as number)) k++;
    // Number.prototype.toString's layout for k digits and decimal point position n.
    if (k <= n && n <= 21) {
      putDigits(buf, pos + k, m, k);
      pos += k;
      for (let i = k; i < n; i++) buf[pos++] = ZERO;
    } else if (0 < n && n <= 21) {
      const whole = putDigits(buf, pos + k + 1, m, k - n);
      buf[pos + n] = DOT;
      putDigits(buf, pos + n, whole, n);
      pos += k + 1;
    } else if (-6 < n && n <= 0) {
      buf[pos++] = ZERO;
      buf[pos++] = DOT;
      for (let i = n; i < 0; i++) buf[pos++] = ZERO;
      putDigits(buf, pos + k, m, k);
      pos += k;
    } else {
      const first = putDigits(buf, pos + k + 1, m, k - 1);
      buf[pos] = ZERO + first;
      if (k > 1) {
        buf[pos + 1] = DOT;
        pos += k + 1;
      } else pos++;
      pos += buf.write(n - 1 < 0 ? `e-${1 - n}` : `e+${n - 1}`, pos, 'latin1');
    }
    this.pos = pos;
  }

  private reserve(n: number): void {
    this.buf = withRoom(this.buf, this.pos, n);
  }
}

/** `buf` if it has room for `n` more bytes after the first `used`, else a copy of those in one at least twice as large. */
export function withRoom(buf: Buffer, used: number, n: number): Buffer {
  if (used + n <= buf.length) return buf;
  const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, used + n));
  buf.copy(grown, 0, 0, used);
  return grown;
}

/** "00".."99" as ASCII pairs: two digits per step halves the divisions. */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => ZERO + (i & 1 ? (i >> 1) % 10 : Math.floor((i >> 1) / 10)));

/** Writes the last `count` decimal digits of m (an int32) into buf[end - count, end); returns m without them. */
function putDigits(buf: Buffer, end: number, m: number, count: number): number {
  for (; count >= 2; count -= 2) {
    const pair = (m % 100) * 2;
    m = (m / 100) | 0;
    buf[--end] = PAIRS[pair + 1] as number;
    buf[--end] = PAIRS[pair] as number;
  }
  if (count === 1) {
    buf[--end] = ZERO + (m % 10);
    m = (m / 10) | 0;
  }
  return m;
}

/** The shortest digits found: value = 0.{m's digits} × 10^n, trailing zeros removed. */
const found = { m: 0, n: 0 };

/** 10^i as the nearest double, for i in -DEC_OFFSET..DEC_OFFSET: where decimal exponents change. */
const DEC_OFFSET = 50;
const DEC = Float64Array.from({ length: 2 * DEC_OFFSET + 1 }, (_, i) => Number(`1e${i - DEC_OFFSET}`));
/** 2^i for the exponents of half a float32's spacing (normal float32: -150..104). */
const POW2_OFFSET = 160;
const POW2 = Float64Array.from({ length: 300 }, (_, i) => 2 ** (i - POW2_OFFSET));
const bits = new Float32Array(1);
/** float32()'s value, for float32At. */
const one = new Float64Array(1);
const bitsU32 = new Uint32Array(bits.buffer);

/**
 * floor(log10(ax)) for a positive finite float32 whose binary exponent is `binary`, without
 * Math.log10: a guess corrected against DEC. The comparisons are exact for float32 values,
 * because no float32 lies between 10^i and the double nearest it (that double needs more
 * than 24 bits).
 */
function decimalExponent(ax: number, binary: number): number {
  let e = Math.floor(binary * 0.3010299956639812);
  while (e > -DEC_OFFSET && ax < (DEC[e + DEC_OFFSET] as number)) e--;
  while (e < DEC_OFFSET && ax >= (DEC[e + DEC_OFFSET + 1] as number)) e++;
  return e;
}

/**
 * Finds the fewest significant digits (1..9) that read back as the float32 x = values[i], the way
 * formatFloat32 does (start at 7, walk down, else 8, else 9), in double arithmetic: one
 * correctly rounded product gives |x| at nine digits, P = |x|·10^(8-e) (within 1.2e-7 of
 * exact), and every p-digit rounding comes from P's integer part and fraction.
 *
 * Whether a rounding reads back is first decided from its distance to P: a float32 reads
 * back from anything within half its spacing (`half`, in the same units). Only a rounding
 * within 1e-5 of that edge takes the exact check, m / 10^k: the exactly rounded double
 * Number() would give (both operands exact: Clinger), then Math.fround.
 *
 * A rounding within 1e-6 of a tie (where P's error could matter), a 10^k beyond 10^±22, or
 * zero/non-finite/subnormal input returns false, and the caller uses formatFloat32.
 */
function shortest(values: Float32Array | Float64Array, i: number): boolean {
  const ax = Math.abs(values[i] as number);
  if (!(ax > 0) || ax === Infinity) return false;
  bits[0] = ax;
  const word = bitsU32[0] as number;
  const binary = (word >>> 23) - 127;
  const e = decimalExponent(ax, binary);
  // scaled(), written out: a double returned from a call V8 does not inline is boxed.
  const k9 = 8 - e;
  if (k9 > 22 || k9 < -22) return false;
  const ten = POW10[k9 >= 0 ? k9 : -k9] as number;
  const product = k9 >= 0 ? ax * ten : ax / ten;
  if (!(product >= 1e8 && product <= 1e9) || bits[0] !== ax) return false;
  const whole = Math.floor(product);
  const fraction = product - whole;
  // Half the float32 spacing at ax, in P's units; below a power of two the spacing halves.
  const spacing = POW2[binary - 24 + POW2_OFFSET] as number;
  const half = k9 >= 0 ? spacing * ten : spacing / ten;
  const halfBelow = (word & 0x7fffff) === 0 ? half / 2 : half;
  rounding[AX] = ax;
  rounding[WHOLE] = whole;
  rounding[FRACTION] = fraction;
  rounding[HALF] = half;
  rounding[HALF_BELOW] = halfBelow;
  let m = roundTo(e, 7);
  if (m === -1) return false;
  if (m > 0) {
    let bestM = m;
    let bestN = roundedExponent + 1;
    for (let p = 6; p >= 1; p--) {
      m = roundTo(e, p);
      if (m === -1) return false;
      if (m === 0) break;
      bestM = m;
      bestN = roundedExponent + 1;
    }
    found.m = bestM;
    found.n = bestN;
  } else {
    m = roundTo(e, 8);
    if (m === 0) m = roundTo(e, 9);
    if (m <= 0) return false;
    found.m = m;
    found.n = roundedExponent + 1;
  }
  // Integer arithmetic from here: m < 10^9 fits an int32, and % on a double is a call to fmod.
  let digits = found.m | 0;
  while (digits % 10 === 0) digits = (digits / 10) | 0;
  found.m = digits;
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
 * What shortest() worked out for the value being printed, for roundTo: |x|, P's integer part
 * and fraction, and half the float32 spacing above |x| and below it, in P's units. In a typed
 * array rather than arguments, so the doubles are not boxed on every call.
 */
const rounding = new Float64Array(5);
const [AX, WHOLE, FRACTION, HALF, HALF_BELOW] = [0, 1, 2, 3, 4];

/** Tolerance, in P's units, for P's own error and the read-back's double rounding (both near 1e-7). */
const EDGE = 1e-5;

/**
 * The value in `rounding` (decimal exponent e) rounded to p significant digits, half up as
 * toPrecision rounds, as an integer m of p digits; 0 if that does not read back as the
 * value; -1 if it cannot be decided here.
 */
function roundTo(e: number, p: number): number {
  const ax = rounding[AX] as number;
  const whole = rounding[WHOLE] as number;
  const fraction = rounding[FRACTION] as number;
  const k = p - 1 - e;
  const q = POW10[9 - p] as number;
  // whole / q by multiplication, corrected: a division costs several multiplications.
  let down = Math.floor(whole * (INV_POW10[9 - p] as number));
  if (down * q > whole) down--;
  else if ((down + 1) * q <= whole) down++;
  // What is cut off, in P's units: [0, q).
  const rest = whole - down * q + fraction;
  if (Math.abs(rest - q / 2) < 1e-6 * q) {
    // Too close to a tie to know which way toPrecision rounds; if neither neighbour reads
    // back (2.5 at one digit), the answer does not depend on it. That needs 10^k exact: past
    // 10^22 (values from 1e30 up) this cannot decide. (No closure here: a function that
    // creates one allocates its context on every call.)
    if (k > 22 || k < -22) return -1;
    return Math.fround(scaled(down, -k)) === ax || Math.fround(scaled(down + 1, -k)) === ax ? -1 : 0;
  }
  const up = rest > q / 2;
  let m = up ? down + 1 : down;
  const distance = up ? q - rest : rest;
  // Rounding up lands above the value, where the spacing is `half`; down, below it.
  const reach = (up ? rounding[HALF] : rounding[HALF_BELOW]) as number;
  roundedExponent = e;
  if (m === POW10[p]) {
    // 9.99…5 rounds up to 10.0…: one digit more before the point.
    m = POW10[p - 1] as number;
    roundedExponent = e + 1;
  }
  // m < 10^9: returned as an int32, which V8 passes without boxing.
  if (distance < reach - EDGE) return m | 0;
  if (distance > reach + EDGE) return 0;
  const back = roundedExponent === e ? scaled(m, -k) : scaled(m, -k + 1);
  if (Number.isNaN(back)) return -1;
  return Math.fround(back) === ax ? m | 0 : 0;
}
