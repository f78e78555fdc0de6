import { NightscoreError } from '../errors.js';
import { parseLogicalDate } from './template.js';

const DAY = 86_400_000;

/** The dates from `from` to `to` inclusive, oldest first. */
export function dateRange(from: string, to: string): string[] {
  const start = Date.parse(`${parseLogicalDate(from)}T00:00:00Z`);
  const end = Date.parse(`${parseLogicalDate(to)}T00:00:00Z`);
  if (end < start) throw new NightscoreError('BAD_RANGE', `--to ${to} is before --from ${from}`, { hint: 'Give the oldest date as --from.' });
  if ((end - start) / DAY > 3660) throw new NightscoreError('BAD_RANGE', `${from}..${to} spans more than ten years`, { hint: 'Backfill in smaller ranges.' });
  const dates: string[] = [];
  for (let t = start; t <= end; t += DAY) dates.push(new Date(t).toISOString().slice(0, 10));
  return dates;
}

/**
 * The logical date a scheduled run scores: the calendar date of the fire time in the
 * schedule's time zone, less `lag` days. As with Airflow's data intervals, the 02:00 run on
 * the 22nd scores the 21st (lag 1).
 */
export function logicalDateFor(fireMillis: number, tz: string, lag: number): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(fireMillis));
  return new Date(Date.parse(`${parts}T00:00:00Z`) - lag * DAY).toISOString().slice(0, 10);
}

/**
 * The instant a logical date ends in a time zone: the first moment of the next date there
 * (23, 24 or 25 hours after it began, across daylight-saving changes).
 */
export function endOfDate(date: string, tz: string): Date {
  const next = Date.parse(`${parseLogicalDate(date)}T00:00:00Z`) + DAY;
  // The zone's offset at a guess, then at the instant that guess gives: twice settles it.
  let t = next;
  for (let i = 0; i < 2; i++) t = next - offsetAt(t, tz);
  return new Date(t);
}

/** How far the zone's wall clock is ahead of UTC at an instant, in ms. */
function offsetAt(instant: number, tz: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(instant))
      .map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * `--model-as-of`: which instant a date's registry alias is read at. `date`: the end of
 * that logical date (in the schedule's zone); a YYYY-MM-DD: the end of that day for every
 * date; `now` (or nothing): undefined, the alias as it is when the run is planned.
 */
export function modelAsOf(option: string | undefined, date: string, tz: string): Date | undefined {
  if (option === undefined || option === 'now') return undefined;
  return endOfDate(option === 'date' ? date : option, tz);
}

/** Checks a --model-as-of value before anything is enqueued. */
export function checkModelAsOf(option: string | undefined): void {
  if (option === undefined || option === 'now' || option === 'date') return;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(option)) {
    throw new NightscoreError('BAD_OPTION', `--model-as-of takes date, now or a YYYY-MM-DD, got "${option}"`, {
      hint: 'date: each date with the version its alias pointed to at the end of that date; now: the alias as it is now; YYYY-MM-DD: as it was at the end of that day.',
    });
  }
  parseLogicalDate(option);
}
