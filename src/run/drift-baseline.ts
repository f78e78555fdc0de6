/**
 * drift.baseline: { previous: N }: the counts of the last N succeeded dates of the job that
 * were counted on the same profile, read back from their output folders (named by the job's
 * layout at plan time, never by a file's say) and checked as their types. Summed exactly, they
 * are themselves a reference on the profile's bins.
 */
import { toNightscoreError } from '../errors.js';
import type { ColumnCounts } from '../drift/counts.js';
import { readDriftReport } from '../drift/report.js';
import { openLocation } from '../storage/open.js';
import { readOutputFolder } from './output-folder.js';
import type { DriftSpec } from './spec.js';

export interface PreviousCounts {
  /** The dates found, newest first. */
  dates: string[];
  /** Dates looked at and passed over, and why (another profile, not succeeded, unreadable). */
  skipped: Array<{ date: string; reason: string }>;
  /** Each date's counts, by column key. */
  counts: Array<Record<string, ColumnCounts>>;
}

export async function readPreviousCounts(drift: DriftSpec): Promise<PreviousCounts | undefined> {
  if (!drift.previous) return undefined;
  const found: PreviousCounts = { dates: [], skipped: [], counts: [] };
  for (const { date, uri } of drift.previous.folders) {
    if (found.dates.length >= drift.previous.dates) break;
    const out = openLocation(uri);
    try {
      const folder = await readOutputFolder(out);
      // A date never run is not a finding; one that ran and does not qualify is said.
      if (!folder.manifest) continue;
      if (!folder.success || folder.manifest.status !== 'succeeded') {
        found.skipped.push({ date, reason: `not succeeded (${folder.manifest.status})` });
        continue;
      }
      if (folder.manifest.drift?.profile.sha256 !== drift.profile.sha256) {
        found.skipped.push({ date, reason: folder.manifest.drift ? `counted on another profile (sha256 ${folder.manifest.drift.profile.sha256.slice(0, 12)})` : 'no drift measured' });
        continue;
      }
      const report = await readDriftReport(out);
      if (!report) {
        found.skipped.push({ date, reason: 'its _drift.json is gone' });
        continue;
      }
      found.dates.push(date);
      found.counts.push(report.counts);
    } catch (err) {
      const e = toNightscoreError(err);
      if (e.retryable) throw e;
      found.skipped.push({ date, reason: `${e.code}: ${e.message}` });
    }
  }
  return found;
}
