import { NightscoreError } from '../errors.js';
import type { ScanTarget } from './csv-scan.js';
import { escapeFormula, withRoom, type CsvText } from './csv-text.js';
import { keyText } from './key-values.js';
import { columnValues, missingFeatureHint, type ColumnValues, type FeatureBatch, type FeatureColumn } from '../model/features.js';
import type { JobKey } from '../model/hints.js';
import { parseFeature } from './numbers.js';
import { parquetFeature } from './parquet-values.js';
import { storeText, storeValue } from './typed-values.js';
import { didYouMean } from '../suggest.js';

/** Rows a builder holds room for at first; it doubles from there up to its capacity. */
const FIRST_ROWS = 1024;

/** Marks row r bad at feature j (stored as j + 1), making the marks on first use. */
function markBad(bad: Int32Array | undefined, rows: number, r: number, j: number): Int32Array {
  const marks = bad ?? new Int32Array(rows);
  marks[r] = j + 1;
  return marks;
}

/** A row that could not be scored, and why. */
export interface Reject {
  source: string;
  /** 1-based line (CSV), or 0-based row index (Parquet). */
  line: number;
  key: unknown[];
  reason: string;
}

/** Rows gathered for one inference call: their feature values (see FeatureBatch) and keys. */
export interface Batch extends FeatureBatch {
  keys: BatchKeys;
  /** Row r's line (CSV, 1-based) or row index (Parquet, 0-based), for a row the model then fails on. */
  lines: Float64Array;
}

/** The key values of a batch's rows. */
export interface BatchKeys {
  /** Row r's key k: text from CSV (an empty field, quoted or not, is ''), the source type's value from Parquet. */
  value(r: number, k: number): unknown;
  /** Row r's key k is null: a Parquet null, or an empty unquoted CSV field (`""` is the empty string). */
  isNull(r: number, k: number): boolean;
  /** Writes row r's key k as one CSV cell. */
  writeCsv(r: number, k: number, out: CsvText, escapeFormulas: boolean): void;
}

/**
 * CSV keys as UTF-8 bytes in one buffer per batch, so a key costs a copy rather than a
 * string and an array per row: at a million rows a second that garbage dominated.
 */
class TextKeys implements BatchKeys {
  private bytes: Buffer;
  private used = 0;
  /** Where the current row's keys begin: a row rejected or retried is rolled back to it. */
  private rowStart = 0;
  private starts: Int32Array;
  private ends: Int32Array;
  /**
   * Per slot: 1 when the key is the empty string (a quoted empty field, `""`). An empty
   * unquoted field is null, as CSV readers take it, so the two stay apart in the output.
   */
  private emptyText: Uint8Array;

  constructor(
    rows: number,
    private readonly width: number,
  ) {
    this.bytes = Buffer.allocUnsafe(Math.max(4096, rows * width * 16));
    this.starts = new Int32Array(rows * width);
    this.ends = new Int32Array(rows * width);
    this.emptyText = new Uint8Array(rows * width);
  }

  startRow(row: number): void {
    if ((row + 1) * this.width > this.starts.length) this.growRows();
    this.used = this.rowStart;
    for (let slot = row * this.width, to = slot + this.width; slot < to; slot++) this.starts[slot] = this.ends[slot] = this.emptyText[slot] = 0;
  }

  setBytes(row: number, k: number, src: Buffer, start: number, end: number): void {
    this.reserve(end - start);
    const slot = row * this.width + k;
    this.starts[slot] = this.used;
    if (end - start > 64) src.copy(this.bytes, this.used, start, end);
    else for (let i = start, to = this.used; i < end; i++) this.bytes[to++] = src[i] as number;
    this.used += end - start;
    this.ends[slot] = this.used;
  }

  setText(row: number, k: number, text: string): void {
    this.reserve(text.length * 3);
    const slot = row * this.width + k;
    this.emptyText[slot] = text === '' ? 1 : 0;
    this.starts[slot] = this.used;
    this.used += this.bytes.write(text, this.used, 'utf8');
    this.ends[slot] = this.used;
  }

  /** Empties the buffer for the next batch, keeping its memory. */
  clear(): void {
    this.used = 0;
    this.rowStart = 0;
  }

  /** The row's keys are kept. */
  keep(): void {
    this.rowStart = this.used;
  }

  /** The row's keys as text (for a reject), and their bytes released. */
  drop(row: number): string[] {
    const keys = Array.from({ length: this.width }, (_, k) => this.value(row, k));
    this.used = this.rowStart;
    return keys;
  }

  value(r: number, k: number): string {
    const slot = r * this.width + k;
    return this.bytes.toString('utf8', this.starts[slot], this.ends[slot]);
  }

  isNull(r: number, k: number): boolean {
    const slot = r * this.width + k;
    return this.starts[slot] === this.ends[slot] && this.emptyText[slot] === 0;
  }

  writeCsv(r: number, k: number, out: CsvText, escapeFormulas: boolean): void {
    const slot = r * this.width + k;
    if (this.emptyText[slot] === 1) out.ascii('""');
    else out.textBytes(this.bytes, this.starts[slot] as number, this.ends[slot] as number, escapeFormulas);
  }

  private growRows(): void {
    const starts = new Int32Array(Math.max(this.width, this.starts.length * 2));
    const ends = new Int32Array(starts.length);
    const emptyText = new Uint8Array(starts.length);
    starts.set(this.starts);
    ends.set(this.ends);
    emptyText.set(this.emptyText);
    this.starts = starts;
    this.ends = ends;
    this.emptyText = emptyText;
  }

  private reserve(n: number): void {
    this.bytes = withRoom(this.bytes, this.used, n);
  }
}

/**
 * Keys as values (Parquet's keep their source types): the key columns and, per batch row, its
 * row in them, so a batch costs no array per row.
 */
export class ColumnKeys implements BatchKeys {
  constructor(
    private readonly columns: ArrayLike<unknown>[],
    private readonly rows: Int32Array,
  ) {}

  value(r: number, k: number): unknown {
    return (this.columns[k] as ArrayLike<unknown>)[this.rows[r] as number];
  }

  isNull(r: number, k: number): boolean {
    const value = this.value(r, k);
    return value === null || value === undefined;
  }

  writeCsv(r: number, k: number, out: CsvText, escapeFormulas: boolean): void {
    const value = this.value(r, k);
    // A null is an empty cell; an empty string is quoted, so readers can tell them apart.
    if (value === '') out.ascii('""');
    else {
      const text = keyText(value);
      out.text(escapeFormulas ? escapeFormula(text) : text);
    }
  }
}

/** Where each needed column sits in a file's header. */
export interface ColumnMap {
  features: number[];
  keys: number[];
  width: number;
}

/**
 * Maps feature and key names to header positions. Columns match by name, in any order;
 * extra columns are ignored; a missing or ambiguous column fails the whole object,
 * because no row of it could be scored correctly.
 */
export function mapColumns(header: string[], features: string[], keys: string[], source: string, namedBy?: JobKey): ColumnMap {
  const find = (name: string, role: string): number => {
    const at = header.indexOf(name);
    if (at === -1) {
      throw new NightscoreError('INPUT_MISSING_COLUMN', `${source}:1: no column "${name}" (${role})${didYouMean(name, header.filter((h) => !features.includes(h) && !keys.includes(h)))}; the header has ${describeHeader(header)}`, {
        source,
        line: 1,
        column: name,
        hint: role === 'key' ? 'Fix input.key in the job file, or the upstream export.' : missingFeatureHint(namedBy),
      });
    }
    if (header.indexOf(name, at + 1) !== -1) {
      throw new NightscoreError('INPUT_DUPLICATE_COLUMN', `${source}:1: column "${name}" appears more than once in the header`, {
        source,
        line: 1,
        column: name,
        hint: 'Rename or drop the duplicate column upstream.',
      });
    }
    return at;
  };
  return { features: features.map((f) => find(f, 'feature')), keys: keys.map((k) => find(k, 'key')), width: header.length };
}

function describeHeader(header: string[]): string {
  const shown = header.slice(0, 12).map((h) => JSON.stringify(h)).join(', ');
  return header.length > 12 ? `${shown} and ${header.length - 12} more` : shown;
}

/**
 * Accumulates rows into a batch of at most `capacity` rows, and the rows rejected meanwhile.
 * The feature and key buffers grow to a batch's size and are then reused from batch to
 * batch, so memory does not grow with the input. CSV rows arrive from the scanner
 * (csv-scan.ts), which writes float32 features straight into `values` and hands every other
 * field over as text, by the text slots of its ScanLayout; Parquet rows arrive a column batch
 * at a time through `addColumns`.
 */
export class BatchBuilder implements ScanTarget {
  /** float32 columns, row-major. Grows to `capacity` rows as rows come, so a small or empty chunk does not pay for a full batch. */
  private buffer: Float32Array;
  /** Per column: its values when it is not float32 (grown with `buffer`), else undefined. */
  private typed: (ColumnValues | undefined)[];
  /** Made on the first CSV row: Parquet batches keep their keys as the decoded columns. */
  private textKeys: TextKeys | undefined;
  /** The last batch handed out holds textKeys: clear it before the next row is written. */
  private handedOut = false;
  /** Keys of the Parquet rows added since the last take(). */
  private columnKeys: ColumnKeys | undefined;
  private rejected: Reject[] = [];
  private count = 0;
  /** float32 columns per row. */
  private readonly width: number;
  /** Per column: its slot among the float32 columns (FeatureBatch's order), or -1. */
  private readonly floatSlot: Int32Array;
  /** Room, in rows, of the buffers. */
  private room: number;
  /** Per row: its line, as a reject names it (see Batch.lines). */
  private lines: Float64Array;

  constructor(
    private readonly columns: FeatureColumn[],
    readonly capacity: number,
    /** URI of the object the rows come from, for rejects. */
    readonly source: string,
    /** Key columns per row. */
    private readonly keyCount: number,
    /**
     * CSV: the scan layout's `textColumn`, per text slot the feature column it fills or -1.
     * The builder takes the scanner's numbering of text slots rather than keeping its own: two
     * numberings had to agree, and once they did not, a key that fed a string input shifted
     * every later text column into the wrong input.
     */
    private readonly textColumns: ArrayLike<number> = [],
  ) {
    this.floatSlot = new Int32Array(columns.length).fill(-1);
    let width = 0;
    columns.forEach((c, j) => {
      if (c.type === 'float32') this.floatSlot[j] = width++;
    });
    this.width = width;
    this.room = Math.min(capacity, FIRST_ROWS);
    this.buffer = new Float32Array(this.room * width);
    this.lines = new Float64Array(this.room);
    this.typed = columns.map((c) => (c.type === 'float32' ? undefined : columnValues(c.type, this.room)));
  }

  get values(): Float32Array {
    return this.buffer;
  }

  get rows(): number {
    return this.count;
  }

  get offset(): number {
    return this.count * this.width;
  }

  /** Full of rows, or holding a batch's worth of rejects: time to drain either way. */
  get full(): boolean {
    return this.count === this.capacity || this.rejected.length >= this.capacity;
  }

  startRow(): void {
    if (!this.textKeys) this.textKeys = new TextKeys(Math.min(this.capacity, FIRST_ROWS), this.keyCount);
    else if (this.handedOut) this.textKeys.clear();
    this.handedOut = false;
    this.textKeys.startRow(this.count);
  }

  textBytes(slot: number, buf: Buffer, start: number, end: number): string | undefined {
    if (slot < this.keyCount) this.textKeys!.setBytes(this.count, slot, buf, start, end);
    const j = this.fedBy(slot);
    return j === -1 ? undefined : this.feature(j, buf.toString('utf8', start, end));
  }

  textField(slot: number, text: string): string | undefined {
    if (slot < this.keyCount) this.textKeys!.setText(this.count, slot, text);
    const j = this.fedBy(slot);
    return j === -1 ? undefined : this.feature(j, text);
  }

  /** The feature column text slot `slot` fills, or -1 for a key that feeds none. */
  private fedBy(slot: number): number {
    const j = this.textColumns[slot];
    if (j !== undefined) return j;
    // A slot past the keys always feeds a column: without its entry the value would be lost.
    if (slot >= this.keyCount) throw new Error(`text slot ${slot} has no column: build the BatchBuilder with its scan layout's textColumn`);
    return -1;
  }

  /** Reads column j of the current row from its text; returns why it is refused, if it is. */
  private feature(j: number, text: string): string | undefined {
    const column = this.columns[j] as FeatureColumn;
    if (column.type === 'float32') {
      const parsed = parseFeature(text, column.missing);
      if (!parsed.ok) return parsed.reason;
      this.buffer[this.count * this.width + (this.floatSlot[j] as number)] = parsed.value;
      return undefined;
    }
    return storeText(column.type, this.typed[j] as ColumnValues, this.count, text, column.missing);
  }

  /** The row whose features and keys were just written is complete. */
  accept(line: number): void {
    this.textKeys!.keep();
    this.lines[this.count] = line;
    if (++this.count === this.room) this.grow(Math.min(this.capacity, this.count * 2));
  }

  reject(line: number, reason: string): void {
    this.rejected.push({ source: this.source, line, key: this.textKeys!.drop(this.count), reason });
  }

  /**
   * Adds `count` rows of column-oriented data (Parquet) to an empty builder: rows `from` to
   * `from + count` of the columns `features[j]` and `keys[k]` (taken in place, not sliced),
   * `firstLine` the first one's index in the file. Values go
   * column by column straight into the feature buffers; a row with a value its column's type
   * does not take is rejected, naming its first such column, and the rows after it close up.
   */
  addColumns(features: ArrayLike<unknown>[], keys: ArrayLike<unknown>[], from: number, count: number, firstLine: number): void {
    if (this.count !== 0 || count > this.capacity) throw new Error(`addColumns takes at most ${this.capacity} rows into an empty builder`);
    const width = this.width;
    if (this.room < count) this.grow(count);
    const buffer = this.buffer;
    // Per row, the first feature that failed (its index + 1), and why.
    let bad: Int32Array | undefined;
    const reasons = new Map<number, string>();
    for (let j = 0; j < this.columns.length; j++) {
      const column = features[j] as ArrayLike<unknown>;
      const { type, missing } = this.columns[j] as FeatureColumn;
      const slot = this.floatSlot[j] as number;
      if (slot === -1) {
        const values = this.typed[j] as ColumnValues;
        for (let r = 0; r < count; r++) {
          const reason = storeValue(type as Exclude<FeatureColumn['type'], 'float32'>, values, r, column[from + r], missing);
          if (reason !== undefined && !bad?.[r]) {
            bad = markBad(bad, count, r, j);
            reasons.set(r, reason);
          }
        }
      } else if (column instanceof Float64Array || column instanceof Float32Array || column instanceof Int32Array) {
        // The common case, typed: only non-finite values need a look.
        for (let r = 0, at = slot; r < count; r++, at += width) {
          const f = Math.fround(column[from + r] as number);
          if (f - f === 0 || (missing && f !== f)) buffer[at] = f;
          else if (!bad?.[r]) {
            bad = markBad(bad, count, r, j);
            reasons.set(r, parquetFeature(column[from + r]) as string);
          }
        }
      } else {
        for (let r = 0, at = slot; r < count; r++, at += width) {
          const raw = column[from + r];
          // Finite numbers inline: a number returned by a call V8 does not inline is boxed.
          const f = typeof raw === 'number' ? Math.fround(raw) : NaN;
          if (f - f === 0) {
            buffer[at] = f;
            continue;
          }
          const value = missing && (raw === null || raw === undefined || (typeof raw === 'number' && Number.isNaN(raw))) ? NaN : parquetFeature(raw);
          if (typeof value === 'number') buffer[at] = value;
          else if (!bad?.[r]) {
            bad = markBad(bad, count, r, j);
            reasons.set(r, value);
          }
        }
      }
    }
    const rows = new Int32Array(count);
    let kept = 0;
    for (let r = 0; r < count; r++) {
      const failed = bad?.[r];
      if (failed) {
        this.rejected.push({ source: this.source, line: firstLine + r, key: keys.map((k) => k[from + r]), reason: `column ${this.columns[failed - 1]!.name}: ${reasons.get(r)}` });
        continue;
      }
      if (kept !== r) {
        buffer.copyWithin(kept * width, r * width, (r + 1) * width);
        for (const values of this.typed) if (values) values[kept] = values[r] as never;
      }
      this.lines[kept] = firstLine + r;
      rows[kept++] = from + r;
    }
    this.count = kept;
    this.columnKeys = new ColumnKeys(keys, rows.subarray(0, kept));
  }

  /** Grows the feature buffers to `rows` rows, keeping what they hold (a full builder is drained, not grown). */
  private grow(rows: number): void {
    if (rows <= this.room) return;
    const grown = new Float32Array(rows * this.width);
    grown.set(this.buffer);
    this.buffer = grown;
    const lines = new Float64Array(rows);
    lines.set(this.lines);
    this.lines = lines;
    this.typed = this.typed.map((values, j) => {
      if (!values) return undefined;
      const more = columnValues(this.columns[j]!.type as Exclude<FeatureColumn['type'], 'float32'>, rows);
      if (Array.isArray(more)) (values as string[]).forEach((v, i) => (more[i] = v));
      else (more as Float64Array).set(values as Float64Array);
      return more;
    });
    this.room = rows;
  }

  /**
   * Hands out the current rows. The batch aliases the builder's buffers (features, and CSV
   * keys): score and write it before adding more rows. Reusing them, rather than
   * allocating a batch's worth of buffers each time, keeps the garbage collector quiet.
   */
  take(): Batch {
    const keys = this.columnKeys ?? this.textKeys ?? new ColumnKeys([], new Int32Array(0));
    const batch = { rows: this.count, features: this.buffer.subarray(0, this.count * this.width), columns: this.typed, keys, lines: this.lines.subarray(0, this.count) };
    this.handedOut = keys === this.textKeys;
    this.columnKeys = undefined;
    this.count = 0;
    return batch;
  }

  /** Rows rejected since the last takeRejects(). */
  get pendingRejects(): number {
    return this.rejected.length;
  }

  /** Hands out the rows rejected since the last call. */
  takeRejects(): Reject[] {
    const rejects = this.rejected;
    this.rejected = [];
    return rejects;
  }
}
