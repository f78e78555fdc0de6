/**
 * A byte-level CSV scanner for the hot path: records go from the input's bytes straight
 * into a preallocated Float32Array, without a string, array or object per field.
 *
 * It reads the dialect csv-parse reads with the options nightscore used (`bom`,
 * `skip_empty_lines`, `relax_column_count`): RFC 4180 quoting with doubled quotes, quoted
 * delimiters and newlines, a BOM, LF or CRLF line ends (or bare CR, detected from the
 * header as csv-parse does), blank lines skipped, records of any field count. Malformed
 * quoting fails with csv-parse's error names. test/csv-scan.test.ts holds it to csv-parse
 * on randomly generated tricky CSV. One deliberate difference: a CRLF in a file whose
 * header ends in LF is a line end here, where csv-parse would keep the CR in the last field.
 *
 * Only complete records are consumed: a caller feeding a stream carries the unconsumed
 * tail over to the next buffer (see csv-read.ts), so a record may span any number of reads.
 */
import { parseFeature, POW10 } from './numbers.js';

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const SPACE = 0x20;
const TAB = 0x09;


/** A malformed record: csv-parse's code, the 1-based line the problem is on, and what was found. */
export class CsvScanError extends Error {
  constructor(
    readonly code: 'CSV_QUOTE_NOT_CLOSED' | 'CSV_INVALID_OPENING_QUOTE' | 'CSV_INVALID_CLOSING_QUOTE' | 'CSV_MAX_RECORD_SIZE',
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'CsvScanError';
  }
}

export interface CsvScanOptions {
  /** One-byte field delimiter. */
  delimiter: string;
  /** A record longer than this (in bytes) fails the read rather than growing memory. */
  maxRecordBytes: number;
  /** Line end, when known from the object's header (a range read from mid-object). */
  eol?: 'lf' | 'cr';
}

/**
 * Where a record's fields go. `roles[i]` says what field i is for: a float32 feature slot
 * (>= 0), a text slot (`-2 - t`), or nothing (-1). Fields past `roles.length` are counted only.
 * Text slots are numbered here and nowhere else: key k is slot k, then come the feature
 * columns of other types that are not keys, in column order; `textColumn` says which feature
 * each fills, and the target (BatchBuilder) is built with it.
 */
export interface ScanLayout {
  roles: Int32Array;
  /** Per float32 slot: 1 when a missing value is scored as NaN (input.missing), 0 when it rejects the row. */
  missing: Uint8Array;
  /** Per float32 slot: the feature column it fills, so the first bad column is named. */
  floatColumn: Int32Array;
  /** Per text slot: the feature column it fills, or -1 for a key that feeds none. */
  textColumn: Int32Array;
  /** Feature column names, for reject reasons. */
  names: string[];
  features: number;
  keys: number;
}

/**
 * Where scanned rows go: float32 features into `values` at `offset`, text fields by call (as
 * bytes where the field needs no unquoting, so no string is made), then the row accepted or
 * rejected.
 */
export interface ScanTarget {
  readonly values: Float32Array;
  /** Index in `values` of the next row's first float32 feature. */
  readonly offset: number;
  /** True when the caller must drain the target before more rows are scanned. */
  readonly full: boolean;
  /** A row begins (again, if the last attempt ran out of bytes): its keys are empty until set. */
  startRow(): void;
  /** Text slot t of the row is the UTF-8 in buf[start, end); returns why the value is refused, if it is. */
  textBytes(slot: number, buf: Buffer, start: number, end: number): string | undefined;
  /** Text slot t of the row is this text (a quoted field, unquoted); returns why the value is refused, if it is. */
  textField(slot: number, text: string): string | undefined;
  /** The row, which starts on `line` (1-based), is complete. */
  accept(line: number): void;
  reject(line: number, reason: string): void;
}

/** A feature column's place in the header, and whether the scanner reads it as float32. */
export interface ScanColumn {
  at: number;
  float32: boolean;
  missing: boolean;
}

export function scanLayout(width: number, columns: ScanColumn[], keys: number[], names: string[]): ScanLayout {
  const roles = new Int32Array(width).fill(-1);
  const floatColumn: number[] = [];
  const textColumn: number[] = keys.map(() => -1);
  const missing: number[] = [];
  keys.forEach((at, k) => (roles[at] = -2 - k));
  columns.forEach((c, j) => {
    // A key that is a feature too stays a key's text slot, and the target reads the feature from
    // its text (its float32 slot is still counted: float32 slots are FeatureBatch's order).
    const key = (roles[c.at] as number) <= -2 ? -2 - (roles[c.at] as number) : -1;
    if (key !== -1 && key < keys.length) {
      textColumn[key] = j;
      if (c.float32) {
        floatColumn.push(j);
        missing.push(c.missing ? 1 : 0);
      }
    } else if (c.float32) {
      roles[c.at] = floatColumn.length;
      floatColumn.push(j);
      missing.push(c.missing ? 1 : 0);
    } else {
      roles[c.at] = -2 - textColumn.length;
      textColumn.push(j);
    }
  });
  return { roles, missing: Uint8Array.from(missing), floatColumn: Int32Array.from(floatColumn), textColumn: Int32Array.from(textColumn), names, features: columns.length, keys: keys.length };
}

export class CsvScanner {
  /** Line on which the next record starts (1: the stream's first line). */
  private line = 1;
  private readonly delim: number;
  private eol: number;
  private eolKnown: boolean;
  /** Line breaks inside the quoted fields of the record being scanned. */
  private breaks = 0;
  /** Index of the buffer's last line end (-1: none): number scans before it need no bounds checks. */
  private safe = -1;
  /**
   * False when the delimiter is a character a number can hold (a digit, . e E + -): the
   * number scans would read across it, so every feature takes the exact text path.
   */
  private readonly numbers: boolean;

  constructor(private readonly opts: CsvScanOptions) {
    if (Buffer.byteLength(opts.delimiter) !== 1) throw new Error(`delimiter must be one byte, got ${JSON.stringify(opts.delimiter)}`);
    this.delim = opts.delimiter.charCodeAt(0);
    this.numbers = !/[\d.eE+-]/.test(opts.delimiter);
    this.eol = opts.eol === 'cr' ? CR : LF;
    this.eolKnown = opts.eol !== undefined;
  }

  /** The line end in use (LF covers CRLF), once the header has been read. */
  get lineEnd(): 'lf' | 'cr' {
    return this.eol === CR ? 'cr' : 'lf';
  }

  /**
   * Reads the header record as text, after a BOM and blank lines. Returns undefined when
   * `buf` holds no complete record yet (and `final` is false), or holds no record at all.
   */
  header(buf: Buffer, final: boolean): { fields: string[]; next: number } | undefined {
    const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    if (!this.eolKnown && !this.detectEol(buf, bom, final)) return undefined;
    const line = this.line;
    const start = this.skipBlankLines(buf, bom, final);
    const fields: string[] = [];
    const next = start < buf.length ? this.textRecord(buf, start, final, fields) : -1;
    if (next === -1) {
      this.line = line;
      return undefined;
    }
    return { fields, next };
  }

  /**
   * Scans records from `pos` into `target` until no complete record is left or the target
   * is full. Returns where scanning stopped: the caller keeps the bytes from there on.
   */
  rows(buf: Buffer, pos: number, final: boolean, layout: ScanLayout, target: ScanTarget): number {
    const end = buf.length;
    // Every scan loop stops at a line end, so before the last one no read needs a bounds check.
    this.safe = buf.lastIndexOf(this.eol);
    let quote = -1;
    while (!target.full) {
      pos = this.skipBlankLines(buf, pos, final);
      if (pos >= end) break;
      if (this.eol === LF && this.numbers && pos < this.safe) {
        if (quote !== -1 && quote < pos) quote = -1;
        if (quote === -1) quote = indexOrEnd(buf, QUOTE, pos);
        const next = quote > pos ? this.plainRecord(buf, pos, Math.min(quote, this.safe + 1), layout, target) : -1;
        if (next !== -1) {
          pos = next;
          continue;
        }
      }
      const next = this.record(buf, pos, final, layout, target);
      if (next === -1) {
        // Incomplete: the caller brings more bytes, unless the record is already too big.
        this.checkRecordSize(end - pos);
        break;
      }
      pos = next;
    }
    return pos;
  }

  /** LF or bare CR, from the first line end outside quotes, as csv-parse decides it. */
  private detectEol(buf: Buffer, from: number, final: boolean): boolean {
    const found = detectLineEnd(buf, from, final);
    if (found === undefined) return false;
    this.eol = found === 'cr' ? CR : LF;
    this.eolKnown = true;
    return true;
  }

  /** Skips empty lines: LF, CRLF, and CR in CR mode (a lone CR at the very end too). */
  private skipBlankLines(buf: Buffer, pos: number, final: boolean): number {
    const end = buf.length;
    const eol = this.eol;
    while (pos < end) {
      const c = buf[pos];
      if (c === eol) pos++;
      else if (c === CR && buf[pos + 1] === LF) pos += 2;
      else if (c === CR && pos + 1 === end && final) pos++;
      else return pos;
      this.line++;
    }
    return pos;
  }

  /**
   * Scans one record starting at `pos` into the target: features into its buffer, then the
   * row accepted or rejected. Returns the position after the record's line end, or -1 if
   * the buffer ends first (and `final` is false).
   */
  private record(buf: Buffer, pos: number, final: boolean, layout: ScanLayout, target: ScanTarget): number {
    const end = buf.length;
    const { delim, eol } = this;
    const { roles, names } = layout;
    const width = roles.length;
    const values = target.values;
    const base = target.offset;
    const startLine = this.line;
    const recordStart = pos;
    target.startRow();
    this.breaks = 0;
    let badFeature = layout.features;
    let badReason = '';
    let field = 0;
    for (;;) {
      const role = field < width ? (roles[field] as number) : -1;
      let stop: number;
      if (buf[pos] === QUOTE) {
        stop = this.quotedEnd(buf, pos, final, recordStart, startLine);
        if (stop === -1) return -1;
        if (role !== -1) {
          const value = quotedText(buf, pos, stop);
          if (role < -1) {
            const refused = target.textField(-2 - role, value);
            if (refused !== undefined && (layout.textColumn[-2 - role] as number) < badFeature) [badFeature, badReason] = [layout.textColumn[-2 - role] as number, refused];
          } else {
            const parsed = parseFeature(value, layout.missing[role] === 1);
            if (parsed.ok) values[base + role] = parsed.value;
            else if ((layout.floatColumn[role] as number) < badFeature) [badFeature, badReason] = [layout.floatColumn[role] as number, parsed.reason];
          }
        }
      } else {
        stop = role >= 0 && this.numbers && pos <= this.safe ? scanNumber(buf, pos, delim, eol, values, base + role) : -1;
        if (stop < 0) {
          stop = this.unquotedEnd(buf, pos, final, field, recordStart, startLine);
          if (stop === -1) return -1;
          if (role < -1) {
            const refused = target.textBytes(-2 - role, buf, pos, trimCr(buf, pos, stop));
            if (refused !== undefined && (layout.textColumn[-2 - role] as number) < badFeature) [badFeature, badReason] = [layout.textColumn[-2 - role] as number, refused];
          } else if (role >= 0) {
            const parsed = parseFeature(buf.toString('utf8', pos, trimCr(buf, pos, stop)), layout.missing[role] === 1);
            if (parsed.ok) values[base + role] = parsed.value;
            else if ((layout.floatColumn[role] as number) < badFeature) [badFeature, badReason] = [layout.floatColumn[role] as number, parsed.reason];
          }
        }
      }
      field++;
      if (stop < end && buf[stop] === delim) {
        pos = stop + 1;
        continue;
      }
      pos = this.afterLineEnd(buf, stop, final);
      if (pos === -1) return -1;
      break;
    }
    this.checkRecordSize(pos - recordStart, startLine);
    this.line += this.breaks + 1;
    if (field !== width) target.reject(startLine, `expected ${width} fields, got ${field}`);
    else if (badFeature < layout.features) target.reject(startLine, `column ${names[badFeature]}: ${badReason}`);
    else target.accept(startLine);
    return pos;
  }

  /**
   * The common case, fast: an LF-ended record of plain numbers and unquoted keys that ends
   * before `limit` (the next quote, or just past the buffer's last line end), so it needs no
   * quote handling and no bounds checks. Returns -1, having consumed nothing, for anything
   * else (a quote, a value needing the slow parse, a wrong field count…): `record` then
   * scans the record again from its start and gives it the exact treatment.
   */
  private plainRecord(buf: Buffer, pos: number, limit: number, layout: ScanLayout, target: ScanTarget): number {
    const { delim } = this;
    const roles = layout.roles;
    const last = roles.length - 1;
    const values = target.values;
    const base = target.offset;
    const recordStart = pos;
    target.startRow();
    for (let field = 0; ; field++) {
      const role = roles[field] as number;
      if (role >= 0) {
        pos = scanNumber(buf, pos, delim, LF, values, base + role);
        if (pos === -1) return -1;
      } else {
        const start = pos;
        let c = buf[pos] as number;
        while (c !== delim && c !== LF) c = buf[++pos] as number;
        // A refused value leaves the record to `record`, which names the column.
        if (role < -1 && target.textBytes(-2 - role, buf, start, trimCr(buf, start, pos)) !== undefined) return -1;
      }
      const c = buf[pos];
      if (field === last) {
        if (c === CR) pos++;
        if (buf[pos] !== LF || pos >= limit || pos + 1 - recordStart > this.opts.maxRecordBytes) return -1;
        target.accept(this.line++);
        return pos + 1;
      }
      if (c !== delim) return -1;
      pos++;
    }
  }

  /** The header's record: every field as text. */
  private textRecord(buf: Buffer, pos: number, final: boolean, fields: string[]): number {
    const startLine = this.line;
    const recordStart = pos;
    this.breaks = 0;
    for (;;) {
      let stop: number;
      if (buf[pos] === QUOTE) {
        stop = this.quotedEnd(buf, pos, final, recordStart, startLine);
        if (stop === -1) return -1;
        fields.push(quotedText(buf, pos, stop));
      } else {
        stop = this.unquotedEnd(buf, pos, final, fields.length, recordStart, startLine);
        if (stop === -1) return -1;
        fields.push(buf.toString('utf8', pos, trimCr(buf, pos, stop)));
      }
      if (stop < buf.length && buf[stop] === this.delim) {
        pos = stop + 1;
        continue;
      }
      pos = this.afterLineEnd(buf, stop, final);
      if (pos === -1) return -1;
      this.checkRecordSize(pos - recordStart, startLine);
      this.line += this.breaks + 1;
      return pos;
    }
  }

  /**
   * Position just after the closing quote of the quoted field at `pos`, which must be
   * followed by a delimiter, a line end or the end of input; -1 if the buffer ends first.
   */
  private quotedEnd(buf: Buffer, pos: number, final: boolean, recordStart: number, startLine: number): number {
    const end = buf.length;
    let q = pos + 1;
    for (;;) {
      const close = buf.indexOf(QUOTE, q);
      if (close === -1) {
        if (!final) return -1;
        // A quote left open swallows the rest of the input: past the size cap, say that.
        this.checkRecordSize(end - recordStart, startLine);
        const line = startLine + countByte(buf, this.eol, recordStart, pos);
        throw new CsvScanError('CSV_QUOTE_NOT_CLOSED', `Quote Not Closed: the parsing is finished with an opening quote at line ${line}`, line);
      }
      if (close + 1 === end && !final) return -1;
      if (buf[close + 1] === QUOTE) {
        q = close + 2;
        continue;
      }
      this.breaks += countByte(buf, this.eol, pos + 1, close);
      const after = close + 1 < end ? (buf[close + 1] as number) : -1;
      if (after !== -1 && after !== this.delim && after !== this.eol && !(after === CR && (close + 2 === end || buf[close + 2] === LF))) {
        const line = startLine + countByte(buf, this.eol, recordStart, close);
        throw new CsvScanError('CSV_INVALID_CLOSING_QUOTE', `Invalid Closing Quote: got ${JSON.stringify(String.fromCharCode(after))} at line ${line} instead of delimiter, record delimiter, trimable character (if activated) or comment`, line);
      }
      return close + 1;
    }
  }

  /** End of the unquoted field at `pos` (its delimiter or line end); -1 if the buffer ends first. */
  private unquotedEnd(buf: Buffer, pos: number, final: boolean, field: number, recordStart: number, startLine: number): number {
    const end = buf.length;
    const { delim, eol } = this;
    for (let i = pos; i < end; i++) {
      const c = buf[i];
      if (c === delim || c === eol) return i;
      if (c === QUOTE) {
        const line = startLine + countByte(buf, eol, recordStart, i);
        throw new CsvScanError('CSV_INVALID_OPENING_QUOTE', `Invalid Opening Quote: a quote is found on field ${field} at line ${line}, value is ${JSON.stringify(buf.toString('utf8', pos, i))}`, line);
      }
    }
    return final ? end : -1;
  }

  /** Position after the line end at `at` (or the end of input); -1 if undecided until more bytes come. */
  private afterLineEnd(buf: Buffer, at: number, final: boolean): number {
    const end = buf.length;
    if (at >= end) return final ? end : -1;
    if (buf[at] === CR && this.eol === LF) {
      if (at + 1 === end) return final ? end : -1;
      return at + 2;
    }
    return at + 1;
  }

  /** Fails when a record (complete or still arriving) starting at the current line is too big. */
  checkRecordSize(bytes: number, line = this.line): void {
    if (bytes > this.opts.maxRecordBytes) {
      throw new CsvScanError('CSV_MAX_RECORD_SIZE', `Max Record Size: record exceed the maximum number of tolerated bytes of ${this.opts.maxRecordBytes} at line ${line}`, line);
    }
  }
}

/** Text of a quoted field (quotes removed, doubled quotes undone); `stop` is just past the closing quote. */
function quotedText(buf: Buffer, pos: number, stop: number): string {
  const text = buf.toString('utf8', pos + 1, stop - 1);
  return text.includes('""') ? text.replaceAll('""', '"') : text;
}

/**
 * The common shape of a feature, small enough for V8 to inline into the record loops: an
 * optional minus, digits, an optional point and digits, then the delimiter or line end.
 * Anything else (a plus sign, an exponent, spaces, too many digits) goes to scanNumberFull,
 * which parses from the field's start again. Same contract as scanNumberFull.
 */
function scanNumber(buf: Buffer, pos: number, delim: number, eol: number, values: Float32Array, at: number): number {
  let i = pos;
  let c = buf[i] as number;
  const negative = c === MINUS;
  if (negative) c = buf[++i] as number;
  let mantissa = 0;
  const digitsStart = i;
  while (c >= 0x30 && c <= 0x39) {
    mantissa = mantissa * 10 + (c - 0x30);
    c = buf[++i] as number;
  }
  let digits = i - digitsStart;
  let exponent = 0;
  if (c === DOT) {
    const fraction = ++i;
    c = buf[i] as number;
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      c = buf[++i] as number;
    }
    exponent = fraction - i;
    digits -= exponent;
  }
  // Up to 15 digits the mantissa is exact (below 2^53) and so is 10^-exponent: Clinger's fast
  // path, as in scanNumberFull.
  if (digits === 0 || digits > 15 || (c !== delim && c !== eol && !(c === CR && buf[i + 1] === LF))) return scanNumberFull(buf, pos, delim, eol, values, at);
  const value = exponent === 0 ? mantissa : mantissa / (POW10[-exponent] as number);
  values[at] = Math.fround(negative ? -value : value);
  return i;
}

/**
 * Parses a plain decimal feature field at `pos` (optional surrounding spaces or tabs,
 * sign, digits, point, exponent) and returns where the field stops (its delimiter or line
 * end), having stored its float32 value at values[at]. Returns -1 for anything
 * else (or a value it cannot convert exactly here), so the caller takes the slow path.
 * A line end must follow `pos` somewhere in `buf`: every loop stops at it, which is what
 * lets this read without bounds checks.
 * Exactness: with the digits as an integer below 2^53 and a decimal exponent within ±22,
 * the double is one correctly rounded operation on exact operands (Clinger's fast path),
 * so it equals Number(text); Math.fround then narrows it as parseFeature does.
 */
function scanNumberFull(buf: Buffer, pos: number, delim: number, eol: number, values: Float32Array, at: number): number {
  let i = pos;
  let c = buf[i] as number;
  // Padding, but never the delimiter itself (a tab- or space-separated file).
  while ((c === SPACE || c === TAB) && c !== delim) c = buf[++i] as number;
  const negative = c === MINUS;
  if (negative || c === PLUS) c = buf[++i] as number;
  let mantissa = 0;
  const digitsStart = i;
  while (c >= 0x30 && c <= 0x39) {
    mantissa = mantissa * 10 + (c - 0x30);
    c = buf[++i] as number;
  }
  let digits = i - digitsStart;
  let exponent = 0;
  if (c === DOT) {
    const fraction = ++i;
    c = buf[i] as number;
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      c = buf[++i] as number;
    }
    digits += i - fraction;
    exponent = fraction - i;
  }
  // Below 2^53 every step above was exact; past it the digits no longer are.
  if (digits === 0 || mantissa > MAX_EXACT) return -1;
  if (c === 0x65 || c === 0x45) {
    c = buf[++i] as number;
    const expNegative = c === MINUS;
    if (expNegative || c === PLUS) c = buf[++i] as number;
    let e = 0;
    const expStart = i;
    while (c >= 0x30 && c <= 0x39 && e < 10000) {
      e = e * 10 + (c - 0x30);
      c = buf[++i] as number;
    }
    if (i === expStart) return -1;
    exponent += expNegative ? -e : e;
  }
  while ((c === SPACE || c === TAB) && c !== delim) c = buf[++i] as number;
  if (c !== delim && c !== eol && !(c === CR && buf[i + 1] === LF)) return -1;
  let value: number;
  if (mantissa === 0) value = 0;
  else if (exponent >= 0 && exponent <= 22) value = mantissa * (POW10[exponent] as number);
  else if (exponent < 0 && exponent >= -22) value = mantissa / (POW10[-exponent] as number);
  else return -1;
  // No overflow to check: below 2^53 × 10^22 (9.0e37) every value is under float32's 3.4e38.
  values[at] = Math.fround(negative ? -value : value);
  return i;
}

const MAX_EXACT = 2 ** 53;

/** A field's text ends before the CR of a CRLF. */
function trimCr(buf: Buffer, pos: number, stop: number): number {
  return stop > pos && buf[stop - 1] === CR && buf[stop] === LF ? stop - 1 : stop;
}

/** Index of the first `byte` at or after `from`, or the buffer's length. */
function indexOrEnd(buf: Buffer, byte: number, from: number): number {
  const at = buf.indexOf(byte, from);
  return at === -1 ? buf.length : at;
}

function countByte(buf: Buffer, byte: number, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(byte, from); i !== -1 && i < to; i = buf.indexOf(byte, i + 1)) n++;
  return n;
}

/**
 * The line end of a CSV object from its first bytes: a bare CR at the first line end outside
 * quotes means CR, anything else LF, as csv-parse decides it. Undefined while `buf` (from
 * `from`, past a BOM) holds no line end yet and more bytes may come; at the end, LF.
 */
export function detectLineEnd(buf: Buffer, from: number, final: boolean): 'lf' | 'cr' | undefined {
  let quoted = false;
  for (let i = from; i < buf.length; i++) {
    const c = buf[i];
    if (c === QUOTE) quoted = !quoted;
    else if (quoted || (c !== LF && c !== CR)) continue;
    else if (c === CR && i + 1 === buf.length && !final) return undefined;
    else return c === CR && buf[i + 1] !== LF ? 'cr' : 'lf';
  }
  // No line end yet: wait for more bytes, or (at the end) a one-line file is LF as any.
  return final ? 'lf' : undefined;
}
