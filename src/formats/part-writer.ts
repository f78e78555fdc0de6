import type { SchemaElement } from 'hyparquet';
import type { OutputColumns, OutputValues } from '../model/scorer.js';
import type { BatchKeys } from './batch.js';
import type { ObjectWriter } from '../storage/storage.js';
import { formatPredictions, predictionHeader, type CsvWriteOptions } from './csv-write.js';

/** A prediction part being written: key columns then prediction columns, one batch at a time. */
export interface PartWriter {
  writeBatch(keys: BatchKeys, outputs: OutputValues[], rows: number): Promise<void>;
  /** Finishes the part; it becomes visible under its key only now. */
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** A key column and, for Parquet output, the schema element it had in a Parquet input. */
export interface KeyColumn {
  name: string;
  element?: SchemaElement;
}

export function csvPartWriter(out: ObjectWriter, keys: KeyColumn[], outputs: OutputColumns[], opts: CsvWriteOptions): PartWriter {
  let started = false;
  // The header goes first, whether the part gets rows or stays empty.
  const start = async () => {
    if (!started) await out.write(predictionHeader(keys.map((k) => k.name), outputs, opts));
    started = true;
  };
  return {
    async writeBatch(keyRows, values, rows) {
      await start();
      await out.write(formatPredictions(keyRows, keys.length, values, rows, opts));
    },
    async close() {
      await start();
      await out.close();
    },
    abort: () => out.abort(),
  };
}
