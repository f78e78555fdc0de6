import { inputError } from '../errors.js';
import type { ScanTarget } from '../formats/csv-scan.js';
import { parquetFeature } from '../formats/parquet-read.js';

/** A row that could not be scored, and why. */
export interface Reject {
  source: string;
  /** 1-based line (CSV), or 0-based row index (Parquet). */
  line: number;
  key: unknown[];
  reason: string;
}

/** Rows gathered for one inference call: features as one row-major float32 block. */
export interface Batch {
  rows: number;
  /** rows × features values, row-major: the tensor's backing data. */
  features: Float32Array;
  /** keys[r] are row r's key column values (text from CSV, source types from Parquet). */
  keys: unknown[][];
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
export function mapColumns(header: string[], features: string[], keys: string[], source: string): ColumnMap {
  const find = (name: string, role: string): number => {
    const at = header.indexOf(name);
    if (at === -1) {
      throw inputError('INPUT_MISSING_COLUMN', `${source}:1: no column "${name}" (${role}); the header has ${describeHeader(header)}`, {
        source,
        line: 1,
        column: name,
        hint: role === 'key' ? 'Fix input.key in the job file, or the upstream export.' : 'Fix model.features in the job file, or the upstream export.',
      });
    }
    if (header.indexOf(name, at + 1) !== -1) {
      throw inputError('INPUT_DUPLICATE_COLUMN', `${source}:1: column "${name}" appears more than once in the header`, {
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
 * Accumulates rows into a fixed-capacity batch, and the rows rejected meanwhile. The
 * feature buffer is allocated once per builder and reused, so memory does not grow with
 * the input. CSV rows arrive from the scanner (csv-scan.ts), which writes features straight
 * into `values`; Parquet rows arrive a column batch at a time through `addColumns`.
 */
export class BatchBuilder implements ScanTarget {
  readonly values: Float32Array;
  private keys: unknown[][] = [];
  private rejected: Reject[] = [];
  private count = 0;
  private readonly width: number;

  constructor(
    private readonly featureNames: string[],
    readonly capacity: number,
    /** URI of the object the rows come from, for rejects. */
    private readonly source: string,
  ) {
    this.width = featureNames.length;
    this.values = new Float32Array(capacity * this.width);
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

  /** The row whose features were just written at `offset` is complete. */
  accept(keys: unknown[]): void {
    this.keys.push(keys);
    this.count++;
  }

  reject(line: number, key: unknown[], reason: string): void {
    this.rejected.push({ source: this.source, line, key, reason });
  }

  /**
   * Adds row `r` of column-oriented data (Parquet), or rejects it. `features[j]` and
   * `keys[k]` are whole columns; `line` is the row's index in the file.
   */
  addColumns(features: ArrayLike<unknown>[], keys: ArrayLike<unknown>[], r: number, line: number): void {
    const key = keys.map((k) => k[r]);
    const base = this.offset;
    for (let j = 0; j < features.length; j++) {
      const parsed = parquetFeature((features[j] as ArrayLike<unknown>)[r]);
      if (!parsed.ok) return this.reject(line, key, `column ${this.featureNames[j]}: ${parsed.reason}`);
      this.values[base + j] = parsed.value;
    }
    this.accept(key);
  }

  /**
   * Hands out the current rows. The returned features view aliases the builder's buffer:
   * score it before adding more rows.
   */
  take(): Batch {
    const batch = { rows: this.count, features: this.values.subarray(0, this.count * this.width), keys: this.keys };
    this.keys = [];
    this.count = 0;
    return batch;
  }

  /** Hands out the rows rejected since the last call. */
  takeRejects(): Reject[] {
    const rejects = this.rejected;
    this.rejected = [];
    return rejects;
  }
}
