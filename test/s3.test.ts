import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';
import { csvOf } from './support/data.js';

/** The same job, through a real S3-speaking server (s3rver) on a random loopback port. */
let s3: S3Server;
let ws: Workspace;

beforeAll(async () => {
  s3 = await startS3(['features', 'scores']);
  ws = await Workspace.create();
});
afterAll(async () => {
  await s3?.close();
  await ws?.remove();
});

const columns = { label: 'churn_predicted', probabilities: ['p_stay', 'p_churn'] };

function job(name: string, input: string, output: string) {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: input, format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: output, format: 'csv', columns },
    chunk: { rows: 7, bytes: 1000 },
  });
}

describe('nightscore run against S3', () => {
  it('reads a prefix from S3, writes the run record to S3, and matches the local run byte for byte', async () => {
    const a = csvOf(30, 1);
    const b = csvOf(12, 2);
    await s3.put('features', 'churn/dt=2026-05-01/part-a.csv', a);
    await s3.put('features', 'churn/dt=2026-05-01/part-b.csv', b);
    // A neighbouring date whose name extends this one must not be read.
    await s3.put('features', 'churn/dt=2026-05-011/x.csv', csvOf(3, 3));
    await s3.put('features', 'churn/dt=2026-05-01/_SUCCESS', '');
    await ws.write('local/in/dt=2026-05-01/part-a.csv', a);
    await ws.write('local/in/dt=2026-05-01/part-b.csv', b);

    const remote = await job('remote', 's3://features/churn/dt={date}', 's3://scores/churn/dt={date}/');
    const local = await job('local', 'local/in/dt={date}/', 'local/out/dt={date}/');
    const r = await runCli(['run', remote, '--date', '2026-05-01', '--json'], { env: s3.env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await runCli(['run', local, '--date', '2026-05-01'])).code).toBe(0);

    const m = JSON.parse(r.stdout);
    expect(m.rows).toEqual({ read: 42, scored: 42, rejected: 0 });
    expect(m.inputs.map((i: { uri: string }) => i.uri)).toEqual([
      's3://features/churn/dt=2026-05-01/part-a.csv',
      's3://features/churn/dt=2026-05-01/part-b.csv',
    ]);
    // 1 kB chunks: part-a is split into ranges, part-b packed whole.
    expect(m.chunks).toBeGreaterThan(2);
    const parts = m.parts.map((p: { uri: string }) => p.uri.split('/').pop());
    expect(await s3.keys('scores', 'churn/dt=2026-05-01/')).toEqual([
      'churn/dt=2026-05-01/_SUCCESS',
      'churn/dt=2026-05-01/_manifest.json',
      ...parts.map((p: string) => `churn/dt=2026-05-01/${p}`),
    ]);
    expect(await ws.list('local/out/dt=2026-05-01')).toEqual(['_SUCCESS', '_manifest.json', ...parts]);
    for (const part of parts) {
      expect(await s3.get('scores', `churn/dt=2026-05-01/${part}`)).toBe(await ws.read(`local/out/dt=2026-05-01/${part}`));
    }
    expect(JSON.parse(await s3.get('scores', 'churn/dt=2026-05-01/_manifest.json')).status).toBe('succeeded');
  });

  it('reads a single named object, and a re-run on S3 leaves only its own parts', async () => {
    await s3.put('features', 'one/dt=2026-05-02/a.csv', csvOf(15, 4));
    await s3.put('features', 'one/dt=2026-05-02/b.csv', csvOf(15, 5));
    const prefix = await job('prefix', 's3://features/one/dt={date}/', 's3://scores/one/dt={date}/');
    const first = JSON.parse((await runCli(['run', prefix, '--date', '2026-05-02', '--json'], { env: s3.env })).stdout);
    expect(first.rows.read).toBe(30);

    // Same output, now from one object: the parts of the second object must go.
    const single = await job('single', 's3://features/one/dt={date}/a.csv', 's3://scores/one/dt={date}/');
    const res = await runCli(['run', single, '--date', '2026-05-02', '--json'], { env: s3.env });
    expect(res.code).toBe(0);
    const second = JSON.parse(res.stdout);
    expect(second.rows.read).toBe(15);
    expect(second.chunks).toBeLessThan(first.chunks);
    expect(await s3.keys('scores', 'one/')).toEqual([
      'one/dt=2026-05-02/_SUCCESS',
      'one/dt=2026-05-02/_manifest.json',
      ...second.parts.map((p: { uri: string }) => p.uri.replace('s3://scores/', '')),
    ]);
  });

  it('a missing S3 date and a missing bucket are clear errors', async () => {
    const missing = await job('missing', 's3://features/none/dt={date}/', 's3://scores/none/dt={date}/');
    const res = await runCli(['run', missing, '--date', '2026-05-03'], { env: s3.env });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('INPUT_NOT_FOUND: no input for 2026-05-03: s3://features/none/dt=2026-05-03/ has no .csv or .csv.gz objects');

    await s3.put('features', 'nobucket/dt=2026-05-03/a.csv', csvOf(2, 0));
    const noBucket = await job('nobucket', 's3://features/nobucket/dt={date}/', 's3://no-such-bucket/x/dt={date}/');
    const res2 = await runCli(['run', noBucket, '--date', '2026-05-03'], { env: s3.env });
    expect(res2.code).toBe(1);
    expect(res2.stderr).toMatch(/NOT_FOUND: cannot (list|delete|write) s3:\/\/no-such-bucket\/x\/dt=2026-05-03\/.*NoSuchBucket/);
    expect(res2.stderr).not.toMatch(/\n\s+at /);
  });
});
