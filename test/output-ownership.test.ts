import { writeFileSync } from 'node:fs';
import { readFile, symlink } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseJob } from '../src/job/load.js';
import { locationsOverlap } from '../src/storage/open.js';
import { beginRun } from '../src/run/begin.js';
import { prepareJob } from '../src/run/bind.js';
import { finishRun } from '../src/run/finish.js';
import { runJob } from '../src/run/run.js';
import { runChunk } from '../src/run/chunk.js';
import { chunkSpec } from '../src/run/spec.js';
import { csvOf } from './support/data.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await ws.remove();
});

const DATE = '2026-04-01';

async function job(output: string, extra: Record<string, unknown> = {}): Promise<string> {
  return ws.job('t.yaml', {
    name: 't',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: output, format: 'csv' },
    chunk: { rows: 100, bytes: 2000 },
    ...extra,
  });
}

describe('the output folder never overlaps the input', () => {
  it.each([
    ['the same folder', 'in/dt={date}/'],
    ['a folder inside the input', 'in/dt={date}/scores/'],
    ['a folder around the input', 'in/'],
    ['a link to the input folder', 'link/dt={date}/'],
  ])('%s is refused at plan time, and the input is left as it was', async (_label, output) => {
    const input = await ws.write(`in/dt=${DATE}/part-00003.csv`, csvOf(50, 1));
    await symlink(ws.path('in'), ws.path('link'));
    const file = await job(output);
    for (const args of [['run', file, '--date', DATE], ['validate', file, '--date', DATE], ['validate', file]]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(/OUTPUT_OVERLAPS_INPUT: .*t\.yaml: output\.uri .* and input\.uri .* overlap/);
    }
    expect(await readFile(input, 'utf8')).toBe(csvOf(50, 1));
    expect(await ws.list(`in/dt=${DATE}`)).toEqual(['part-00003.csv']);
  });

  it('S3 prefixes overlap by whole segments within one bucket', async () => {
    expect(await locationsOverlap('s3://b/in/dt=1/', 's3://b/in/dt=1/out/')).toBe(true);
    expect(await locationsOverlap('s3://b/in/dt=1', 's3://b/in/')).toBe(true);
    expect(await locationsOverlap('s3://b/in/dt=1', 's3://b/in/dt=10/')).toBe(false);
    expect(await locationsOverlap('s3://a/in/', 's3://b/in/')).toBe(false);
    expect(await locationsOverlap('/data/in/', 's3://data/in/')).toBe(false);
  });
});

describe('nightscore removes only what it wrote', () => {
  const strangers = {
    'part-00000.json': '{"mine":1}',
    'part-00001.txt': 'notes',
    'part-00002.bak': 'backup',
    'README.md': '# mine',
    '.x.123-abc.tmp': 'editor swap',
    'sub/part-00000.csv': 'a,b\n',
  };

  it('files that are not its own survive runs and re-runs untouched', async () => {
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(300, 1));
    for (const [name, body] of Object.entries(strangers)) await ws.write(`out/${name}`, body);
    const many = await job('out/');
    expect((await runCli(['run', many, '--date', DATE])).code).toBe(0);
    const first = await ws.manifest('out');
    expect(first.chunks).toBeGreaterThan(2);
    // A re-run with fewer chunks replaces every file of the first attempt, and nothing else.
    const few = await job('out/', { chunk: { rows: 100, bytes: 1_000_000 } });
    expect((await runCli(['run', few, '--date', DATE])).code).toBe(0);
    const files = await ws.list('out');
    expect(files.filter((f) => !(f in strangers) && !f.startsWith('sub'))).toEqual(['_SUCCESS', '_manifest.json', 'part-00000.csv']);
    for (const [name, body] of Object.entries(strangers)) expect(await ws.read(`out/${name}`), name).toBe(body);
  });

  it('a folder holding part-like files that no manifest owns is refused, and left as it was', async () => {
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(30, 1));
    await ws.write('out/_rejects/part-00009.csv', 'someone else\'s');
    await ws.write('out/_SUCCESS', '');
    const res = await runCli(['run', await job('out/'), '--date', DATE]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/OUTPUT_NOT_OURS: .* such as _rejects\/part-00009\.csv/);
    expect(await ws.list('out')).toEqual(['_SUCCESS', '_rejects', '_rejects/part-00009.csv']);
  });

  it.each([
    ['a chunk count no run reaches', { owns: { csv: 1e12 } }, 'owns'],
    ['a format nightscore does not write', { owns: { json: 1 } }, 'owns'],
    ['a count that is not a number', { owns: { csv: '3' } }, 'owns'],
    ['a part beyond any plan', { parts: [{ uri: 'x/part-9999999999.csv', rows: 1 }] }, 'parts[0].uri'],
  ])('a manifest read back that claims %s is MANIFEST_INVALID, at once, and the folder is left as it was', async (_label, claim, field) => {
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(30, 1));
    const file = await job('out/');
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const before = await ws.list('out');
    await ws.write('out/_manifest.json', JSON.stringify({ ...(await ws.manifest('out')), ...claim }));
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`MANIFEST_INVALID: file://${ws.path('out/_manifest.json')}: ${field} is not what nightscore writes`);
    expect(await ws.list('out')).toEqual(before);
  });

  it('a part an earlier attempt writes after this one began is removed at commit', async () => {
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(300, 1));
    const file = await job('out/');
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const earlier = (await ws.manifest('out')).chunks;
    const prepared = await prepareJob(parseJob(await ws.read('t.yaml'), ws.path('t.yaml')));
    prepared.job.chunk.bytes = 1_000_000;
    let late = false;
    // The earlier attempt's writer, frozen past its lease, lands its last part mid-run.
    const manifest = await runJob(prepared, DATE, {
      onEvent: () => {
        if (!late) writeFileSync(ws.path(`out/part-${String(earlier - 1).padStart(5, '0')}.csv`), 'stale');
        late = true;
      },
    });
    expect(manifest.status).toBe('succeeded');
    expect(manifest.owns).toEqual({ csv: earlier });
    expect(await ws.list('out')).toEqual(['_SUCCESS', '_manifest.json', 'part-00000.csv']);
  });
});

describe('a commit is idempotent after it published', () => {
  it('committing the same attempt again reports its result instead of failing at the lock', async () => {
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(300, 1) + 'bad,row\n');
    await job('out/');
    const prepared = await prepareJob(parseJob(await ws.read('t.yaml'), ws.path('t.yaml')));
    const plan = await beginRun(prepared, DATE, 'queue:test:t@2026-04-01');
    const results = [];
    for (const chunk of plan.chunks) results.push(await runChunk(chunkSpec(plan.spec, chunk)));
    const first = await finishRun(plan, results);
    expect(first.status).toBe('succeeded');
    const again = await finishRun(plan, results);
    expect(again).toEqual(first);
    expect(await ws.list('out')).toContain('_SUCCESS');
    expect((await ws.list('out')).filter((f) => f.startsWith('_LOCK'))).toEqual([]);
  });
});

describe('job names', () => {
  it('two job files with one name are refused, naming both files', async () => {
    const body = { name: 'same', schedule: { cron: '0 2 * * *' }, input: { uri: 'in/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/', format: 'csv' } };
    const a = await ws.job('jobs/a.yaml', body);
    const b = await ws.job('jobs/b-copy.yaml', body);
    const res = await runCli(['schedule', 'sync', ws.path('jobs')], { env: { NIGHTSCORE_QUEUE_PREFIX: `nstest-dup-${process.pid}` } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`JOB_NAME_DUPLICATE: ${a} and ${b} both have name: same`);
  });
});
