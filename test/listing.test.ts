import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NightscoreError } from '../src/errors.js';
import { locateRun, parseJob } from '../src/job/load.js';
import { listInputs } from '../src/run/plan.js';
import { prepareJob } from '../src/run/bind.js';
import { runJob } from '../src/run/run.js';
import { csvOf } from './support/data.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/** Names an input folder may hold, and which of them a run reads. */
const READ = ['1.csv', 'a.csv', 'b_extra.csv', 'x.y.csv', 'a_.csv', 'a..csv', 'B.CSV', 'c.CSV.GZ', 'd.csv.gz', 'with space.csv', 'ünïcödé.csv', '日本.csv', 'nested/deep/z.csv', 'nested/y.Csv'];
const HIDDEN = ['_SUCCESS', '_manifest.json', '.hidden.csv', '.x.csv', '_tmp/in-tmp.csv', 'nested/.dot.csv', 'nested/_under.csv', '.spark-staging/p.csv'];
const OTHER = ['notes.txt', 'schema.json', 'nested/readme.md'];

let ws: Workspace;
let s3: S3Server;
beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['corpus']);
  // day=10 is a neighbour whose name starts with the day's: it must never be read.
  for (const name of [...READ, ...HIDDEN, ...OTHER]) {
    await ws.write(`day=1/${name}`, name);
    await s3.put('corpus', `day=1/${name}`, name);
  }
  await ws.write('day=10/neighbour.csv', 'x');
  await s3.put('corpus', 'day=10/neighbour.csv', 'x');
  await s3.put('corpus', 'day=1.csv', 'x');
});
afterAll(async () => {
  await s3?.close();
  await ws?.remove();
});

const names = (uris: string[], root: string) => uris.map((u) => decodeURIComponent(u.slice(root.length))).sort();

describe('listing a day', () => {
  const spellings = () => {
    const abs = ws.path('day=1');
    const url = pathToFileURL(abs).href;
    return [`${abs}/`, abs, `${url}/`, url, `FILE://${url.slice('file://'.length)}/`, `${abs}//`];
  };

  it('reads exactly the data files under every spelling of a local location, and says which others it skipped', async () => {
    const root = pathToFileURL(ws.path('day=1')).href + '/';
    for (const uri of spellings()) {
      const { objects, skipped } = await listInputs(uri, 'csv', 'd');
      expect(names(objects.map((o) => o.uri), root), uri).toEqual([...READ].sort());
      expect(names(skipped.map((o) => o.uri), root), uri).toEqual([...OTHER].sort());
      expect(objects.filter((o) => o.gzip).map((o) => path.basename(o.uri)).sort(), uri).toEqual(['c.CSV.GZ', 'd.csv.gz']);
    }
  });

  it('relative paths in a job file read the same files', async () => {
    for (const uri of ['day=1/', 'day=1', './day=1/', `file://${ws.path('day=1')}/`]) {
      const job = parseJob(`name: t\ninput: { uri: "${uri}", format: csv }\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\n`, ws.path('t.yaml'));
      const { objects } = await listInputs(locateRun(job, '2026-01-01').inputUri, 'csv', 'd');
      expect(objects.map((o) => path.basename(decodeURIComponent(o.uri))).sort(), uri).toEqual(READ.map((n) => path.basename(n)).sort());
    }
  });

  it('reads exactly the data objects of an S3 prefix, with or without its slash, and never a neighbour', async () => {
    for (const uri of ['s3://corpus/day=1/', 's3://corpus/day=1', 'S3://corpus/day=1/']) {
      const { objects, skipped } = await listInputs(uri, 'csv', 'd');
      expect(names(objects.map((o) => o.uri), 's3://corpus/day=1/'), uri).toEqual([...READ].sort());
      expect(names(skipped.map((o) => o.uri), 's3://corpus/day=1/'), uri).toEqual([...OTHER].sort());
    }
  });

  it('follows links to files; a link back into the folder is an error naming it, in bounded time', async () => {
    await ws.write('elsewhere/real.csv', 'x');
    await ws.write('linked/a.csv', 'x');
    await symlink(ws.path('elsewhere/real.csv'), ws.path('linked/link.csv'));
    await symlink(ws.path('elsewhere'), ws.path('linked/folder'));
    const { objects } = await listInputs(`${ws.path('linked')}/`, 'csv', 'd');
    expect(objects.map((o) => path.relative(ws.path('linked'), o.uri.slice('file://'.length)))).toEqual(['a.csv', 'folder/real.csv', 'link.csv']);

    for (const [dir, target] of [['loop', '.'], ['up', '..']] as const) {
      await mkdir(ws.path(`${dir}/in/sub`), { recursive: true });
      await ws.write(`${dir}/in/a.csv`, 'x');
      await symlink(target, ws.path(`${dir}/in/sub/back`));
      const started = Date.now();
      const err = await listInputs(`${ws.path(`${dir}/in`)}/`, 'csv', 'd').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NightscoreError);
      expect((err as NightscoreError).code).toBe('INPUT_SYMLINK_LOOP');
      expect((err as NightscoreError).message).toContain(ws.path(`${dir}/in/sub/back`));
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    await symlink(ws.path('nowhere.csv'), ws.path('linked/dangling.csv'));
    await expect(listInputs(`${ws.path('linked')}/`, 'csv', 'd')).rejects.toMatchObject({ code: 'INPUT_BROKEN_LINK' });
  });
});

describe('a run reads the whole day', () => {
  const job = (extra = '') =>
    `name: t\ninput: { uri: "${pathToFileURL(ws.path('run')).href}/dt={date}/", format: csv, key: [customer_id] }\nmodel: { path: ${REPO}/models/churn/model.onnx }\noutput: { uri: "out/dt={date}/", format: csv }\n${extra}`;

  it('a file URL with a trailing slash reads names with "_" or "." in second place, and upper-case extensions', async () => {
    await ws.write('run/dt=2026-02-01/part-0.csv', csvOf(1000, 1));
    await ws.write('run/dt=2026-02-01/b_extra.csv', csvOf(1000, 2));
    await ws.write('run/dt=2026-02-01/B.CSV', csvOf(100, 3));
    await ws.write('run/dt=2026-02-01/notes.txt', 'not data');
    const prepared = await prepareJob(parseJob(job(), ws.path('t.yaml')));
    const manifest = await runJob(prepared, '2026-02-01');
    expect(manifest.status).toBe('succeeded');
    expect(manifest.rows.read).toBe(2100);
    expect(manifest.inputs.map((i) => path.basename(i.uri))).toEqual(['B.CSV', 'b_extra.csv', 'part-0.csv']);
    expect(manifest.skipped).toEqual([{ uri: `${pathToFileURL(ws.path('run')).href}/dt=2026-02-01/notes.txt`, reason: 'not .csv or .csv.gz' }]);
  });

  it('the terminal names what was skipped', async () => {
    const file = await ws.write('t.yaml', job());
    const res = await runCli(['run', file, '--date', '2026-02-01']);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/skipped +1 object\(s\)[^\n]*\n +file:\/\/.*notes\.txt \(not \.csv or \.csv\.gz\)/);
  });
});

describe('every location a user can type works, or is JOB_INVALID at its line', () => {
  const text = (uri: string, modelPath = 'm.onnx') => `name: t\ninput:\n  format: csv\n  uri: "${uri}"\nmodel: { path: "${modelPath}" }\noutput: { uri: out/, format: csv }\n`;

  it.each([
    ['a relative file URL', 'file://in/dt={date}/', /t\.yaml:4: input\.uri: .*not an absolute file URL/],
    ['an encoded slash', 'file:///data/a%2Fb/dt={date}/', /t\.yaml:4: input\.uri: .*encoded \/ characters/],
    ['a file URL without its slashes', 'file:in/', /t\.yaml:4: input\.uri: .*a file URL is absolute/],
    ['an s3 URL without a bucket', 's3:///in/', /t\.yaml:4: input\.uri: .*names no bucket/],
    ['an s3 URL without its slashes', 's3:bucket/in/', /t\.yaml:4: input\.uri: .*starts with s3:\/\//],
  ])('%s', async (_label, uri, pattern) => {
    const file = await ws.write('bad/t.yaml', text(uri));
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_INVALID/);
    expect(res.stderr).toMatch(pattern);
    expect(res.stderr).not.toMatch(/INTERNAL|\n\s+at /);
  });

  it('upper-case schemes work, and model file URLs are percent-decoded like input and output URLs', async () => {
    await ws.write('my models/m.onnx', await import('node:fs/promises').then((fs) => fs.readFile(`${REPO}/models/churn/model.onnx`)));
    const modelUrl = pathToFileURL(ws.path('my models/m.onnx')).href;
    expect(modelUrl).toContain('%20');
    const file = await ws.write('ok/t.yaml', text(`FILE://${ws.path('in')}/`, modelUrl));
    const res = await runCli(['validate', file]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('a YAML alias bomb and a missing jobs folder are clear errors', async () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`)].join('\n');
    const file = await ws.write('bomb/t.yaml', `${bomb}\nname: t\n`);
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_INVALID: .*t\.yaml(:\d+)?: \(top level\): cannot expand the document/);
    const sync = await runCli(['schedule', 'sync', ws.path('nonexistent')]);
    expect(sync.code).toBe(2);
    expect(sync.stderr).toMatch(/JOBS_DIR_NOT_FOUND: cannot read the jobs folder .*nonexistent/);
    expect(sync.stderr).not.toMatch(/INTERNAL/);
  });
});
