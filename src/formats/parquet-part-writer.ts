import { ParquetWriter, ByteWriter, type ColumnSource } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet';
import type { OutputColumns } from '../model/scorer.js';
import type { ObjectWriter } from '../storage/storage.js';
import { DateKey, DecimalKey, TimestampKey } from './key-values.js';
import { float16Value } from './numbers.js';
import type { KeyColumn, PartWriter } from './part-writer.js';

const PREDICTION_TYPE: Record<string, SchemaElement['type']> = {
  float32: 'FLOAT',
  // Every half is exactly a float32.
  float16: 'FLOAT',
  float64: 'DOUBLE',
  int64: 'INT64',
  int32: 'INT32',
  int8: 'INT32',
  int16: 'INT32',
  uint8: 'INT32',
  uint16: 'INT32',
  bool: 'BOOLEAN',
};

/** Schema element of a key column: its source type when it came from Parquet, else a UTF-8 string. */
function keyElement(k: KeyColumn): SchemaElement {
  const src = k.element;
  if (!src) return { name: k.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' };
  // INT96 timestamps (Impala, old Spark) hold nanoseconds: written as the standard type that
  // holds them whole, without a zone, as pyarrow and DuckDB read INT96.
  if (src.type === 'INT96') return { name: k.name, type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'NANOS' }, repetition_type: 'OPTIONAL' };
  const { type, type_length, converted_type, scale, precision, logical_type } = src;
  return { name: k.name, type, type_length, converted_type, scale, precision, logical_type, repetition_type: 'OPTIONAL' };
}

function outputElements(outputs: OutputColumns[]): SchemaElement[] {
  return outputs.flatMap((o) =>
    o.names.map((name): SchemaElement =>
      o.type === 'string'
        ? { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' }
        : { name, type: PREDICTION_TYPE[o.type] ?? 'DOUBLE', repetition_type: 'REQUIRED' },
    ),
  );
}

/**
 * Parquet parts: key columns in their source types, predictions as FLOAT/DOUBLE/INT64,
 * snappy-compressed, one row group per batch, key-value metadata naming the job, date and
 * model. Bytes stream to storage after every row group, so memory holds one batch.
 */
export function parquetPartWriter(out: ObjectWriter, keys: KeyColumn[], outputs: OutputColumns[], kv: Record<string, string>, codec: 'SNAPPY' | 'UNCOMPRESSED'): PartWriter {
  const elements = [...keys.map(keyElement), ...outputElements(outputs)];
  const bytes = new ByteWriter();
  let pending: Promise<void> = Promise.resolve();
  // Hand each finished row group's bytes to the upload and start the buffer over; `offset`
  // keeps counting, so the footer's offsets stay right.
  const drain = () => {
    const chunk = Buffer.from(new Uint8Array(bytes.buffer, 0, bytes.index));
    bytes.index = 0;
    pending = pending.then(() => out.write(chunk));
    return pending;
  };
  const writer = Object.assign(bytes, { flush: drain, finish: drain });
  const parquet = new ParquetWriter({
    writer,
    schema: [{ name: 'root', num_children: elements.length }, ...elements],
    codec,
    kvMetadata: Object.entries(kv).map(([key, value]) => ({ key, value })),
    createdBy: 'nightscore',
  });
  return {
    async writeBatch(keyRows, values, rows) {
      if (rows === 0) return;
      const columnData: ColumnSource[] = keys.map((k, i) => ({ name: k.name, data: Array.from({ length: rows }, (_, r) => (keyRows.isNull(r, i) ? null : toKeyValue(keyRows.value(r, i), elements[i]!))) }));
      for (const v of values) {
        const width = v.columns.names.length;
        v.columns.names.forEach((name, c) => {
          const data = width === 1 ? v.data : Array.from({ length: rows }, (_, r) => (v.data as ArrayLike<unknown>)[r * width + c]);
          columnData.push({ name, data: predictionValues(v.columns.type, data as ArrayLike<unknown>) });
        });
      }
      columnData.forEach((column, i) => {
        const type = elements[i]!.type;
        if ((type === 'FLOAT' || type === 'DOUBLE') && holdsNegativeZero(column.data)) column.encoding = 'PLAIN';
      });
      await parquet.write({ columnData, rowGroupSize: rows });
    },
    async close() {
      await parquet.finish();
      await pending;
      await out.close();
    },
    abort: () => out.abort(),
  };
}

/** An output's values as hyparquet-writer takes them for its column: bools as booleans, float16 bits as their values. */
function predictionValues(type: string, data: ArrayLike<unknown>): ColumnSource['data'] {
  if (type === 'bool') return Array.from(data as ArrayLike<number>, Boolean);
  if (type === 'float16') return Float32Array.from(data as ArrayLike<number>, float16Value);
  return data as ColumnSource['data'];
}

/**
 * hyparquet-writer's dictionary holds values in a Map, to which -0 and 0 are one key: a column
 * holding both would read back with one sign for all. A column with a -0 is written PLAIN.
 */
function holdsNegativeZero(data: ArrayLike<unknown>): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] === 0 && 1 / (data[i] as number) < 0) return true;
  return false;
}

/** A key value as hyparquet-writer takes it for the key's element: exact values as their stored integers. */
function toKeyValue(v: unknown, element: SchemaElement): unknown {
  if (v instanceof DecimalKey) return v.unscaled;
  if (v instanceof TimestampKey) return v.ticks;
  if (v instanceof DateKey) return v.days;
  // A CSV key is text: an empty one goes to a column of another type (none today) as null.
  if (v === '' && element.converted_type !== 'UTF8') return null;
  return v;
}
