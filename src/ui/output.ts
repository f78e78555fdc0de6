/**
 * What the UI reads from output folders: a date's `_SUCCESS` and manifest, as
 * run/output-folder.ts reads them, cached (the first rows of its rejects files: rejects.ts).
 * Never a listing: every key read is derived from the job's output template, never taken
 * from a manifest.
 *
 * A finished run's manifest does not change unless the date is run again, and a run again
 * rewrites it: so a cached manifest is served as it is for a short while, then re-validated
 * with one stat (its version: the ETag on S3, size and mtime on a file) and read again only
 * when that version changed. A date the queue runs again is read from the queue meanwhile
 * (dates.ts), so the cache only delays what changes behind the queue's back.
 */
import { locateRun, type JobDefinition } from '../job/load.js';
import { readOutputFolder, type OutputFolder } from '../run/output-folder.js';
import { openLocation } from '../storage/open.js';
import { BoundedCache, InFlight, type BoundedCacheOptions } from './cache.js';

/** A date's output folder as last read. */
export type OutputSnapshot = OutputFolder;

export interface OutputCacheOptions extends BoundedCacheOptions {
  /** How long a finished date's snapshot is served without asking storage. @defaultValue 15 s */
  finishedTtlMs?: number;
  /** The same for a date whose manifest says running, or that has none yet. @defaultValue 2 s */
  activeTtlMs?: number;
}

interface Entry {
  snapshot: OutputSnapshot;
  checkedAt: number;
}

/** The output folders of dates, cached as described above (one instance per UI server). */
export class OutputCache {
  private readonly entries: BoundedCache<Entry>;
  private readonly pending = new InFlight<OutputSnapshot>();
  private readonly finishedTtlMs: number;
  private readonly activeTtlMs: number;

  constructor(opts: OutputCacheOptions = {}) {
    this.entries = new BoundedCache(opts);
    this.finishedTtlMs = opts.finishedTtlMs ?? 15_000;
    this.activeTtlMs = opts.activeTtlMs ?? 2_000;
  }

  /**
   * The date's `_SUCCESS` and manifest, from the cache while it is fresh. A finished date
   * whose entry has lapsed is served as it was while it is looked at again in the background
   * (stale-while-revalidate), up to twice its TTL: a month of finished dates changes rarely,
   * and a page should not wait for hundreds of stats to learn that; the next page has the
   * answer. A date that is running, or has no manifest yet, is looked at before it is served.
   */
  async get(job: JobDefinition, date: string): Promise<OutputSnapshot> {
    const uri = locateRun(job, date).outputUri;
    const cached = this.entries.get(uri);
    if (cached && Date.now() - cached.checkedAt < this.ttlOf(cached.snapshot)) return cached.snapshot;
    const refresh = this.pending.run(uri, async () => {
      const snapshot = await readOutputFolder(openLocation(uri), cached?.snapshot);
      this.entries.set(uri, { snapshot, checkedAt: Date.now() }, approximateBytes(snapshot));
      return snapshot;
    });
    // Served stale only just past its TTL: an entry left unread for long (a page nobody
    // opened overnight) is read before it is served.
    if (cached && finished(cached.snapshot) && Date.now() - cached.checkedAt < 2 * this.finishedTtlMs) {
      // A refresh that fails forgets the date: the next page reads it before it is served, and
      // shows the error, rather than an old state for as long as the storage fails.
      refresh.catch(() => this.entries.delete(uri));
      return cached.snapshot;
    }
    return refresh;
  }

  /** Forgets a date: the queue holds it now (its output will change), so it is read afresh once the queue lets it go. */
  forget(job: JobDefinition, date: string): void {
    this.entries.delete(locateRun(job, date).outputUri);
  }

  private ttlOf(s: OutputSnapshot): number {
    return finished(s) ? this.finishedTtlMs : this.activeTtlMs;
  }
}

function finished(s: OutputSnapshot): boolean {
  return s.manifest !== undefined && s.manifest.status !== 'running';
}

function approximateBytes(s: OutputSnapshot): number {
  // JSON text length is within a small factor of the parsed object's heap size.
  return s.manifest ? JSON.stringify(s.manifest).length * 2 : 64;
}
