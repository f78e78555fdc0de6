import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openCsv, recordStartLine } from '../src/formats/csv-read.js';
import { BatchBuilder, mapColumns } from '../src/run/batch.js';

/** Reads CSV text the way a run does, returning scored rows and rejects. */
async function read(text: string | Buffer, features = ['a', 'b'], keys = ['id']) {
  const csv = await openCsv(Readable.from([text]), { source: 'mem.csv', delimiter: ',', maxRecordBytes: 1 << 20 });
  const builder = new BatchBuilder(features, 100, mapColumns(csv.header, features, keys, 'mem.csv'));
  const rejects: Array<[number, string]> = [];
  for await (const record of csv.records) {
    const reject = builder.add(record.fields, record.line, 'mem.csv');
    if (reject) rejects.push([recordStartLine(record), reject.reason]);
  }
  const batch = builder.take();
  return { keys: batch.keys.map((k) => k.join('|')), values: [...batch.features], rejects };
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
    const csv = await openCsv(Readable.from(['id,a,b\n' + Array.from({ length: 25 }, (_, i) => `r${i},${i},${i}`).join('\n')]), {
      source: 'mem.csv',
      delimiter: ',',
      maxRecordBytes: 1 << 20,
    });
    const builder = new BatchBuilder(['a', 'b'], 10, mapColumns(csv.header, ['a', 'b'], ['id'], 'mem.csv'));
    const sizes: number[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const r of csv.records) {
      builder.add(r.fields, r.line, 'mem.csv');
      if (builder.full) {
        const b = builder.take();
        sizes.push(b.rows);
        buffers.add(b.features.buffer);
      }
    }
    sizes.push(builder.take().rows);
    expect(sizes).toEqual([10, 10, 5]);
    expect(buffers.size).toBe(1);
  });
});
