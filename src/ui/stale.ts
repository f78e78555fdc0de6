/**
 * "Stale model": a succeeded date scored by another model than the one the job's model
 * reference resolves to now. The comparison is `backfill --reprocess stale`'s own: planBackfill
 * decides, for one date of each distinct scored model (name@version and sha256), and its
 * verdict holds for every date scored by that model. What the reference resolves to now is
 * found as `backfill` finds it (expectedModel, as of now): a registry reference resolved, a
 * model by location loaded for its sha256.
 */
import { modelLocation, type JobDefinition } from '../job/load.js';
import { expectedModel, planBackfill, type ExpectedModel, type NoExpectedModel } from '../queue/backfill.js';
import type { Queues } from '../queue/queues.js';
import type { DateStatus } from '../queue/status.js';
import { BoundedCache } from './cache.js';

export interface StaleVerdict {
  stale: boolean;
  /** backfill's reason: "scored by churn@5, now churn@6", "scored by sha256 …". */
  reason: string;
}

export class StaleChecker {
  private readonly expected = new BoundedCache<{ at: number; model: Promise<ExpectedModel | NoExpectedModel> }>({ maxEntries: 1_000 });
  private readonly verdicts = new BoundedCache<{ at: number; verdict: StaleVerdict }>({ maxEntries: 10_000 });

  /** @param ttlMs how long what a reference resolves to, and a verdict, are kept (an alias moved shows within it). */
  constructor(private readonly ttlMs = 30_000) {}

  /**
   * Verdicts for the succeeded dates among `statuses`, by date. Throws when the job's model
   * cannot be resolved or loaded now (its error says why): nothing can be called stale then.
   */
  async check(queues: Queues, job: JobDefinition, statuses: DateStatus[]): Promise<Map<string, StaleVerdict>> {
    const groups = new Map<string, DateStatus[]>();
    for (const s of statuses) {
      if (s.state !== 'succeeded' || s.sha256 === undefined) continue;
      const key = `${s.model ?? ''}\0${s.sha256}`;
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    const verdicts = new Map<string, StaleVerdict>();
    if (groups.size === 0) return verdicts;
    const expected = await this.expectedNow(job);
    const expectedKey = JSON.stringify(expected);
    await Promise.all(
      [...groups].map(async ([group, dates]) => {
        const key = `${job.file}\0${group}\0${expectedKey}`;
        let cached = this.verdicts.get(key);
        if (!cached || Date.now() - cached.at > this.ttlMs) {
          const [decision] = await planBackfill(queues, job, [dates[0]!.date], 'stale', async () => expected);
          cached = { at: Date.now(), verdict: { stale: decision!.enqueue, reason: decision!.reason } };
          this.verdicts.set(key, cached);
        }
        for (const d of dates) verdicts.set(d.date, cached.verdict);
      }),
    );
    return verdicts;
  }

  /** What a run of the job would pin now, kept `ttlMs`. */
  private async expectedNow(job: JobDefinition): Promise<ExpectedModel | NoExpectedModel> {
    const written = modelLocation(job);
    const key = `${job.file}\0${written}`;
    let entry = this.expected.get(key);
    if (!entry || Date.now() - entry.at > this.ttlMs) {
      const fresh = { at: Date.now(), model: expectedModel(job) };
      entry = fresh;
      this.expected.set(key, fresh);
      // A failure is not kept (the next page asks again), nor does it remove a newer entry.
      fresh.model.catch(() => {
        if (this.expected.get(key) === fresh) this.expected.delete(key);
      });
    }
    return entry.model;
  }
}
