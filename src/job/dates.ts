import { NightscoreError } from '../errors.js';
import { parseLogicalDate } from './template.js';

const DAY = 86_400_000;

/** Yesterday in UTC: the logical date a nightly run scores by default. */
export function yesterday(): string {
  return new Date(Date.now() - DAY).toISOString().slice(0, 10);
}

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

/** The `days` dates ending at `to`, oldest first: `--days 7 --to 2026-03-07` is 03-01..03-07. */
export function daysEnding(to: string, days: number): string[] {
  const end = Date.parse(`${parseLogicalDate(to)}T00:00:00Z`);
  return dateRange(new Date(end - (days - 1) * DAY).toISOString().slice(0, 10), to);
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
 * The instant a logical date ends in a time zone: the first instant whose date there is a
 * later one. Found by bisection on the zone's calendar, so days of 23 or 25 hours, and zones
 * whose clocks jump at midnight (the next day then starts at 01:00), come out right.
 */
export function endOfDate(date: string, tz: string): Date {
  const next = new Date(Date.parse(`${parseLogicalDate(date)}T00:00:00Z`) + DAY).toISOString().slice(0, 10);
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
  // Zones are within 14 hours of UTC: the day ends in this window.
  let lo = Date.parse(`${next}T00:00:00Z`) - 15 * 3_600_000;
  let hi = Date.parse(`${next}T00:00:00Z`) + 15 * 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (format.format(new Date(mid)) >= next) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
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
