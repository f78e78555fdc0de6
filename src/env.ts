import { NightscoreError } from './errors.js';

/**
 * Numbers from the environment and the command line, parsed and range-checked where the
 * process starts: a bad value is a BAD_ENV (or BAD_OPTION) naming the setting and the range
 * it takes, never a worker that hangs or a stack trace later.
 */
export interface Range {
  min: number;
  max: number;
  /** What the number counts, for messages: "milliseconds", "attempts". */
  unit: string;
}

/** A whole number from the environment: the default when unset or empty, else one within `range`. */
export function envInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, range: Range, meaning: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = wholeNumber(raw, range);
  if (n === undefined) {
    throw new NightscoreError('BAD_ENV', `${name} must be a whole number of ${range.unit} from ${range.min} to ${range.max}, got "${raw}"`, {
      column: name,
      hint: `Unset it for the default of ${fallback} (${meaning}).`,
    });
  }
  return n;
}

/**
 * A duration in milliseconds from the environment: the default when unset or empty, else a
 * whole number of at least 100 ms (and at most a day), or a BAD_ENV error naming the variable.
 */
export function envMilliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number, meaning: string, min = 100): number {
  return envInteger(env, name, fallback, { min, max: 86_400_000, unit: 'milliseconds' }, meaning);
}

/** A whole-number command-line option within `range`, or BAD_OPTION naming it. */
export function optionInteger(name: string, raw: string | undefined, range: Range): number | undefined {
  if (raw === undefined) return undefined;
  const n = wholeNumber(raw, range);
  if (n === undefined) throw new NightscoreError('BAD_OPTION', `${name} takes a whole number of ${range.unit} from ${range.min} to ${range.max}, got "${raw}"`);
  return n;
}

function wholeNumber(raw: string, { min, max }: Range): number | undefined {
  const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}
