import { NightscoreError } from './errors.js';

/**
 * Whole numbers from the command line (and, through settings.ts, the environment), parsed and
 * range-checked where the process starts: a bad value is a BAD_OPTION (or BAD_ENV) naming the
 * option and the range it takes, never a worker that hangs or a stack trace later.
 */
export interface Range {
  min: number;
  max: number;
  /** What the number counts, for messages: "milliseconds", "attempts". */
  unit: string;
}

/** A whole-number command-line option within `range`, or BAD_OPTION naming it. */
export function optionInteger(name: string, raw: string | undefined, range: Range): number | undefined {
  if (raw === undefined) return undefined;
  const n = wholeNumber(raw, range);
  if (n === undefined) throw new NightscoreError('BAD_OPTION', `${name} takes a whole number of ${range.unit} from ${range.min} to ${range.max}, got "${raw}"`);
  return n;
}

/** `raw` as a whole number within the range, or undefined. */
export function wholeNumber(raw: string, { min, max }: Range): number | undefined {
  const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}
