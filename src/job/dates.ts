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
