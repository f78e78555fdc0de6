/**
 * Key values as they are copied from input to output: exactly, at their own type and
 * precision. JavaScript's own types lose some of them (a DECIMAL(20,0) or an int64 past 2^53
 * as a number, a microsecond timestamp as a Date), so Parquet keys that would are read as
 * these values, which print as exact text in CSV and write back as the same Parquet type.
 *
 * CSV text of each (docs/output.md, "Keys"):
 * - DECIMAL: its exact decimal text (`9007199254740993007`, `-12.50` at scale 2);
 * - timestamps: ISO 8601 at the column's unit (`2024-01-02T03:04:05.123456Z` for µs, nine
 *   digits for ns), with `Z` when the column is adjusted to UTC and without it when local;
 * - DATE: `YYYY-MM-DD`;
 * - FLOAT, DOUBLE: the shortest round-trip text of the value as a double, -0 as `-0`;
 * - null: an empty cell, where an empty string is a quoted empty cell `""`.
 */
import { formatFloat64 } from './numbers.js';

/** A DECIMAL: its unscaled integer and scale, exact. */
export class DecimalKey {
  constructor(
    readonly unscaled: bigint,
    readonly scale: number,
  ) {}

  toString(): string {
    if (this.scale <= 0) return String(this.unscaled * 10n ** BigInt(-this.scale));
    const negative = this.unscaled < 0n;
    const digits = String(negative ? -this.unscaled : this.unscaled).padStart(this.scale + 1, '0');
    return `${negative ? '-' : ''}${digits.slice(0, -this.scale)}.${digits.slice(-this.scale)}`;
  }
}

export type TimeUnit = 'MILLIS' | 'MICROS' | 'NANOS';
const PER_SECOND: Record<TimeUnit, bigint> = { MILLIS: 1000n, MICROS: 1_000_000n, NANOS: 1_000_000_000n };
const DIGITS: Record<TimeUnit, number> = { MILLIS: 3, MICROS: 6, NANOS: 9 };

/** A timestamp: ticks of its unit since the epoch, and whether it is an instant (UTC) or a local time. */
export class TimestampKey {
  constructor(
    readonly ticks: bigint,
    readonly unit: TimeUnit,
    readonly utc: boolean,
  ) {}

  toString(): string {
    const per = PER_SECOND[this.unit];
    // Floor division, so a time before 1970 keeps a positive fraction of its second.
    let seconds = this.ticks / per;
    let fraction = this.ticks % per;
    if (fraction < 0n) {
      fraction += per;
      seconds -= 1n;
    }
    const date = new Date(Number(seconds) * 1000);
    const iso = date.toISOString();
    // toISOString has years of four digits, or six with a sign beyond them.
    const whole = iso.slice(0, iso.indexOf('.'));
    return `${whole}.${String(fraction).padStart(DIGITS[this.unit], '0')}${this.utc ? 'Z' : ''}`;
  }
}

/** A DATE: days since 1970-01-01. */
export class DateKey {
  constructor(readonly days: number) {}

  toString(): string {
    const iso = new Date(this.days * 86_400_000).toISOString();
    return iso.slice(0, iso.indexOf('T'));
  }
}

/** Key values as CSV text: CSV keys are text already; Parquet keys may be numbers, bigints or the classes above. */
export function keyText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'number') return formatFloat64(v);
  return String(v);
}
