/**
 * A run's `_shadow.json` read back from its output folder (the name is ours, never taken from
 * the manifest) and checked as its type for what its readers use: anyone who can write the
 * folder may have written it. And the days of a job as the promotion gate reads them.
 */
import { z } from 'zod';
import { NightscoreError } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { readOutputFolder } from '../run/output-folder.js';
import { OUTPUT_FILES } from '../run/manifest.js';
import { openLocation, type Location } from '../storage/open.js';
import { readJsonObject } from '../storage/storage.js';
import type { GateDay } from './gate.js';
import { SHADOW_FORMAT } from './report.js';

/** Far above what a comparison of a few challengers takes. */
const MAX_SHADOW_BYTES = 16 * 1024 * 1024;

const count = z.number().int().nonnegative();
const bins = z.array(count).max(1000);
const readSchema = z.looseObject({
  format: z.literal(SHADOW_FORMAT),
  challengers: z
    .array(
      z.looseObject({
        name: z.string(),
        uri: z.string(),
        model: z.looseObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }).nullable(),
        status: z.enum(['compared', 'no data']),
        counts: z.looseObject({ compared: count, agree: count, failed: count, bins: z.looseObject({ champion: bins, challenger: bins }) }),
      }),
    )
    .max(100),
});

export type ShadowRead = z.output<typeof readSchema>;

export async function readShadowReport(out: Location): Promise<ShadowRead | undefined> {
  const key = out.storage.join(out.key, OUTPUT_FILES.shadow);
  const source = out.storage.uri(key);
  const data = await readJsonObject(out.storage, key, MAX_SHADOW_BYTES, (what) => invalid(source, what));
  if (data === undefined) return undefined;
  const parsed = readSchema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw invalid(source, `${issue.path.map(String).join('.') || '(the whole document)'}: ${issue.message}`);
}

function invalid(source: string, what: string): NightscoreError {
  return new NightscoreError('MANIFEST_INVALID', `${source} is not a comparison nightscore writes: ${what}`, {
    source,
    hint: 'Something other than nightscore wrote or damaged it. Run the date again to write a new one; find out who else writes to the output folder.',
  });
}

/**
 * Each of `dates` of `job` as the gate sees it: a succeeded run (with `_SUCCESS`) whose
 * comparison has the challenger the job names `uri`, or why the day does not count.
 */
export async function readGateDays(job: JobDefinition, dates: readonly string[], uri: string): Promise<GateDay[]> {
  return Promise.all(
    dates.map(async (date): Promise<GateDay> => {
      const out = openLocation(locateRun(job, date).outputUri);
      const folder = await readOutputFolder(out);
      const m = folder.manifest;
      if (!m) return { date, state: 'missing', detail: 'no run' };
      if (m.status === 'failed') return { date, state: 'failed', detail: `the run failed (${m.error?.code ?? 'no code'})` };
      if (m.status !== 'succeeded' || !folder.success) return { date, state: 'running', detail: 'the run has not finished' };
      const report = await readShadowReport(out);
      const c = report?.challengers.find((x) => x.uri === uri);
      if (!c || !c.model || c.status !== 'compared') return { date, state: 'no comparison', detail: `no comparison with ${uri}${c && !c.model ? ' (it did not load)' : ''}` };
      const { compared, agree, failed } = c.counts;
      return { date, state: 'compared', sha256: c.model.sha256, rows: m.rows.scored, compared, agree, failed, bins: c.counts.bins };
    }),
  );
}
