import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openCsv } from '../src/formats/csv-read.js';
import { scanLayout } from '../src/formats/csv-scan.js';
import { float32Columns, scanColumns } from './support/columns.js';
import { BatchBuilder, mapColumns } from '../src/formats/batch.js';

/** Opens CSV text (as one buffer, or in pieces) the way a run does. */
async function open(text: string | Buffer | Array<string | Buffer>, features: string[], keys: string[], capacity: number) {
  const pieces = (Array.isArray(text) ? text : [text]).map((t) => Buffer.from(t));
  const csv = await openCsv(Readable.from(pieces), { source: 'mem.csv', delimiter: ',', maxRecordBytes: 1 << 20 });
  const columns = mapColumns(csv.header.names, features, keys, 'mem.csv');
  const layout = scanLayout(columns.width, scanColumns(columns.features), columns.keys, features);
  const builder = new BatchBuilder(float32Columns(features), capacity, 'mem.csv', keys.length, layout.textColumn);
  return { batches: csv.scan(layout, builder), builder };
}

/** Reads CSV text the way a run does, returning scored rows and rejects. */
async function read(text: string | Buffer | Array<string | Buffer>, features = ['a', 'b'], keys = ['id']) {
  const { batches, builder } = await open(text, features, keys, 100);
  for await (const full of batches) throw new Error(`a batch of ${full.capacity} filled up`);
  const batch = builder.take();
  const rejects = builder.takeRejects().map((r) => [r.line, r.reason]);
  const keyText = (r: number) => keys.map((_, k) => batch.keys.value(r, k)).join('|');
  return { keys: Array.from({ length: batch.rows }, (_, r) => keyText(r)), values: [...batch.features], rejects };
}

describe('CSV input', () => {
  it('matches columns by name in any order and ignores extra columns', async () => {
    expect(await read('b,extra,id,a\n2,x,r1,1\n4,y,r2,3\n')).toEqual({ keys: ['r1', 'r2'], values: [1, 2, 3, 4], rejects: [] });
  });

  it('handles a BOM, CRLF line ends and blank lines', async () => {
    expect(await read('\ufeffid,a,b\r\n\r\nr1,1,2\r\n\r\n\r\nr2,3,4\r\n')).toEqual({ keys: ['r1', 'r2'], values: [1, 2, 3, 4], rejects: [] });
  });

  it('handles quoted fields, escaped quotes and quoted newlines, counting lines from where a record starts', async () => {
    const text = 'id,a,b\n"r,1",1,2\n"say ""hi""","3","4"\n"multi\nline",5,x\nlast,7,8\n';
    expect(await read(text)).toEqual({
      keys: ['r,1', 'say "hi"', 'last'],
      values: [1, 2, 3, 4, 7, 8],
      rejects: [[4, 'column b: expected a number, got "x"']],
    });
  });

  it('rejects a row with the wrong number of fields instead of guessing which value is which', async () => {
    expect((await read('id,a,b\nr1,1\nr2,1,2,3\nr3,1,2\n')).rejects).toEqual([
      [2, 'expected 3 fields, got 2'],
      [3, 'expected 3 fields, got 4'],
    ]);
  });

  it('accepts a file with no trailing newline', async () => {
    expect((await read('id,a,b\nr1,1,2')).keys).toEqual(['r1']);
  });

  it('names the column and what the header has when a column is missing or duplicated', async () => {
    await expect(read('id,a\nr1,1\n')).rejects.toMatchObject({ code: 'INPUT_MISSING_COLUMN', message: 'mem.csv:1: no column "b" (feature); the header has "id", "a"' });
    await expect(read('id,a,b,a\nr1,1,2,3\n')).rejects.toMatchObject({ code: 'INPUT_DUPLICATE_COLUMN', line: 1, column: 'a' });
    await expect(read('a,b\n1,2\n')).rejects.toMatchObject({ code: 'INPUT_MISSING_COLUMN', message: expect.stringContaining('no column "id" (key)') });
  });

  it('batches never exceed their capacity, and the buffer is reused', async () => {
    const text = 'id,a,b\n' + Array.from({ length: 25 }, (_, i) => `r${i},${i},${i}`).join('\n');
    const { batches, builder } = await open(text, ['a', 'b'], ['id'], 10);
    const sizes: number[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const full of batches) {
      const b = full.take();
      sizes.push(b.rows);
      buffers.add(b.features.buffer);
    }
    sizes.push(builder.take().rows);
    expect(sizes).toEqual([10, 10, 5]);
    expect(buffers.size).toBe(1);
  });
});
