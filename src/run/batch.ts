import { inputError } from '../errors.js';
import { parseFeature } from '../formats/numbers.js';
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
 * Accumulates parsed records into a fixed-capacity batch. The feature buffer is allocated
 * once per builder and reused, so memory does not grow with the input.
 */
export class BatchBuilder {
  private readonly data: Float32Array;
  private keys: unknown[][] = [];
  private count = 0;

  /** `columns` places CSV fields; column-oriented (Parquet) input needs none. */
  constructor(
    private readonly featureNames: string[],
    readonly capacity: number,
    private readonly columns?: ColumnMap,
  ) {
    this.data = new Float32Array(capacity * featureNames.length);
  }

  get rows(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Adds a CSV record, or returns why it is rejected (and leaves the batch unchanged). */
  add(fields: string[], line: number, source: string): Reject | undefined {
    const { features, keys, width } = this.columns!;
    const key = keys.map((k) => fields[k] ?? '');
    if (fields.length !== width) {
      return { source, line, key, reason: `expected ${width} fields, got ${fields.length}` };
    }
    const base = this.count * features.length;
    for (let j = 0; j < features.length; j++) {
      const parsed = parseFeature(fields[features[j] as number] as string);
      if (!parsed.ok) return { source, line, key, reason: `column ${this.featureNames[j]}: ${parsed.reason}` };
      this.data[base + j] = parsed.value;
    }
    this.keys.push(key);
    this.count++;
    return undefined;
  }

  /**
   * Adds row `r` of column-oriented data (Parquet), or returns why it is rejected.
   * `features[j]` and `keys[k]` are whole columns.
   */
  addColumns(features: ArrayLike<unknown>[], keys: ArrayLike<unknown>[], r: number, line: number, source: string): Reject | undefined {
    const key = keys.map((k) => k[r]);
    const base = this.count * features.length;
    for (let j = 0; j < features.length; j++) {
      const parsed = parquetFeature((features[j] as ArrayLike<unknown>)[r]);
      if (!parsed.ok) return { source, line, key, reason: `column ${this.featureNames[j]}: ${parsed.reason}` };
      this.data[base + j] = parsed.value;
    }
    this.keys.push(key);
    this.count++;
    return undefined;
  }

  /**
   * Hands out the current rows. The returned features view aliases the builder's buffer:
   * score it before adding more rows.
   */
  take(): Batch {
    const batch = { rows: this.count, features: this.data.subarray(0, this.count * this.featureNames.length), keys: this.keys };
    this.keys = [];
    this.count = 0;
    return batch;
  }
}
