/**
 * Checking a date's inputs against the job without scoring them (`validate --date`): every
 * object's header (CSV) or schema (Parquet) must have every feature and key column, with the
 * same errors, and "did you mean" suggestions, as a run would give.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { mapColumns } from '../formats/batch.js';
import { openCsv } from '../formats/csv-read.js';
import type { FeatureColumn } from '../model/features.js';
import type { JobKey } from '../model/hints.js';
import { openLocation } from '../storage/open.js';
import type { InputObject } from './plan.js';
import type { CsvReadSpec } from './spec.js';

/** Objects whose header is read at once. */
const AT_ONCE = 8;

export async function checkInputColumns(objects: InputObject[], format: 'csv' | 'parquet', csv: CsvReadSpec, features: FeatureColumn[], keys: string[], namedBy?: JobKey): Promise<void> {
  let next = 0;
  const work = async () => {
    while (next < objects.length) {
      const object = objects[next++]!;
      if (format === 'parquet') await checkParquet(object, features, keys, namedBy);
      else await checkCsv(object, csv, features, keys, namedBy);
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, objects.length) }, work));
}

async function checkCsv(object: InputObject, csv: CsvReadSpec, features: FeatureColumn[], keys: string[], namedBy?: JobKey): Promise<void> {
  const { storage, key } = openLocation(object.uri);
  const raw = await storage.read(key, undefined, object.version);
  let source: Readable = raw;
  if (object.gzip) {
    const gunzip = createGunzip();
    pipeline(raw, gunzip).catch(() => undefined);
    source = gunzip;
  }
  try {
    const { header } = await openCsv(source, { source: object.uri, delimiter: csv.delimiter, maxRecordBytes: csv.max_record_bytes });
    mapColumns(header.names, features.map((f) => f.name), keys, object.uri, namedBy);
  } finally {
    source.destroy();
    raw.destroy();
  }
}

async function checkParquet(object: InputObject, features: FeatureColumn[], keys: string[], namedBy?: JobKey): Promise<void> {
  const { openParquet, resolveColumn } = await import('../formats/parquet-read.js');
  const source = await openParquet(object.uri, object.bytes, object.version);
  for (const f of features) resolveColumn(source.metadata, f.name, f.type, object.uri, namedBy);
  for (const k of keys) resolveColumn(source.metadata, k, 'key', object.uri);
}
