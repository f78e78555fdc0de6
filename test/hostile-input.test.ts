import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Hostile files: each gets a clear error (a code, the file, no stack trace) in bounded time,
 * and a worker that met one goes on serving other jobs.
 */
let ws: Workspace;
let tq: TestQueue | undefined;
beforeAll(async () => {
  ws = await Workspace.create();
});
afterAll(async () => {
  await tq?.close();
  await ws.remove();
});

const header = csvOf(1, 0).split('\n')[0]!;

async function csvJob(name: string, body: string | Buffer, file = 'a.csv') {
  await ws.write(`${name}/in/${file}`, body);
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${name}/in/`, format: 'csv', key: ['customer_id'], csv: { max_record_bytes: 1024 * 1024 } },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: `${name}/out/`, format: 'csv' },
    limits: { max_reject_rate: 0.5 },
  });
}

async function expectCleanFailure(job: string, code: RegExp) {
  const t0 = Date.now();
  const res = await runCli(['run', job, '--date', '2026-01-01']);
  expect(res.code).not.toBe(0);
  expect(res.stderr).toMatch(code);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  expect(Date.now() - t0).toBeLessThan(20_000);
  return res;
}

describe('hostile input', () => {
  it('random bytes', async () => {
    await expectCleanFailure(await csvJob('random', randomBytes(200_000)), /nightscore: (CSV_MALFORMED|CSV_RECORD_TOO_LARGE|INPUT_MISSING_COLUMN|INPUT_EMPTY): .*a\.csv/);
  });

  it('a 100 MB single field is capped by max_record_bytes, not read into memory', async () => {
    const big = Buffer.alloc(100 * 1024 * 1024, 'x');
    const res = await expectCleanFailure(await csvJob('bigfield', Buffer.concat([Buffer.from(`${header}\n`), big, Buffer.from(',1\n')])), /CSV_RECORD_TOO_LARGE: .*a\.csv:2: malformed CSV/);
    expect(res.stderr).toContain('input.csv.max_record_bytes');
  });

  it('a header with 100,000 columns (none of the features)', async () => {
    const cols = Array.from({ length: 100_000 }, (_, i) => `c${i}`).join(',');
    await expectCleanFailure(await csvJob('wide', `${cols}\n${cols}\n`), /INPUT_MISSING_COLUMN: .*a\.csv:1: no column "tenure_months" \(feature\); the header has "c0", "c1", .* and 99988 more/);
  });

  it('NUL bytes and invalid UTF-8 in values are rejected rows, not crashes', async () => {
    const good = csvOf(10, 1).trimEnd().split('\n');
    const nul = good[2]!.replace(/,[^,]*$/, ',1\u0000');
    const body = Buffer.concat([Buffer.from(`${good.slice(0, 2).join('\n')}\n${nul}\n`), Buffer.from([0x4b, 0xff, 0xfe, 0x2c]), Buffer.from(`${good[3]!.split(',').slice(1).join(',').replace(/,[^,]*$/, ',\xff')}\n${good.slice(4).join('\n')}\n`)]);
    const job = await csvJob('bytes', body);
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json']);
    expect(res.code).toBe(0);
    const m = JSON.parse(res.stdout);
    expect(m.rows.read).toBe(10);
    expect(m.rows.rejected).toBe(2);
    const rejects = await ws.read('bytes/out/_rejects/part-00000.csv');
    expect(rejects).toContain('expected a number');
  });

  it('a truncated gzip', async () => {
    const gz = gzipSync(csvOf(2000, 2));
    await expectCleanFailure(await csvJob('gz', gz.subarray(0, Math.floor(gz.length / 2)), 'a.csv.gz'), /INPUT_CORRUPT: .*a\.csv\.gz: cannot decompress/);
  });

  it('a Parquet file whose footer declares an absurd size', async () => {
    const good = await readFile(path.join(REPO, '../shared/data/parquet-testing/alltypes_plain.parquet'));
    const bad = Buffer.from(good);
    bad.writeUInt32LE(0x7fffffff, bad.length - 8);
    await ws.write('absurd/in/x.parquet', bad);
    const job = await ws.job('absurd.yaml', {
      name: 'absurd',
      input: { uri: 'absurd/in/', format: 'parquet' },
      model: { path: await ws.model('absurd.onnx', { weights: [1], bias: 0 }), features: ['int_col'] },
      output: { uri: 'absurd/out/', format: 'csv' },
    });
    await expectCleanFailure(job, /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file/);
  });

  it('a worker that met a hostile file goes on serving other jobs', async () => {
    tq = await createTestQueue();
    const bad = await csvJob('q-bad', randomBytes(50_000));
    const good = await csvJob('q-good', csvOf(50, 3));
    await tq.startWorker();
    await runCli(['run', bad, '--date', '2026-01-01', '--queue'], { env: tq.env });
    await tq.waitFor(bad, '2026-01-01', '2026-01-01', allIn(['failed']));
    const res = await runCli(['run', good, '--date', '2026-01-01', '--queue', '--wait'], { env: tq.env });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('succeeded');
  });
});
