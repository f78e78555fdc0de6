import { locateRun, type JobDefinition } from '../job/load.js';
import { openLocation } from '../storage/open.js';
import { CHURN_FEATURES, drawCustomer, rng } from './churn-data.js';

export interface DemoDayOptions {
  rows: number;
  files: number;
  seed: number;
}

/**
 * Writes a realistic day of input for the example job, wherever its input is (a folder or
 * S3): `files` CSV files of customers, with the untidiness real exports have (a column order
 * that differs from the model's, an extra column, CRLF in one file, and about 1 in 2,000 rows
 * broken). What was there for the date before is replaced.
 */
export async function writeDemoDay(job: JobDefinition, date: string, opts: DemoDayOptions): Promise<string> {
  const { inputUri } = locateRun(job, date);
  const { storage, key: prefix } = openLocation(inputUri);
  for (const old of await storage.list(prefix)) await storage.delete(old.key);
  const next = rng(opts.seed + Number(date.replaceAll('-', '')));
  // Real exports rarely list columns in the model's order; nightscore matches by name.
  const columns = ['customer_id', 'region', ...[...CHURN_FEATURES].reverse()];
  const perFile = Math.ceil(opts.rows / opts.files);
  let id = 0;
  for (let f = 0; f < opts.files; f++) {
    const eol = f === 1 ? '\r\n' : '\n';
    const out = await storage.createWriter(storage.join(prefix, `customers-${String(f).padStart(3, '0')}.csv`));
    try {
      let buffer = columns.join(',') + eol;
      for (let r = 0; r < perFile && id < opts.rows; r++, id++) {
        const c = drawCustomer(next, id);
        const values = [c.customerId, ['north', 'south', 'east', 'west'][id % 4] as string, ...c.features.map(String).reverse()];
        if (next() < 0.0005) breakRow(values, next);
        buffer += values.join(',') + eol;
        if (buffer.length > 1 << 16) {
          await out.write(buffer);
          buffer = '';
        }
      }
      await out.write(buffer);
      await out.close();
    } catch (err) {
      await out.abort();
      throw err;
    }
  }
  return inputUri;
}

function breakRow(values: string[], next: () => number): void {
  const at = 2 + Math.floor(next() * (values.length - 2));
  const kind = Math.floor(next() * 3);
  if (kind === 0) values[at] = '';
  else if (kind === 1) values[at] = 'n/a';
  else values.pop();
}
