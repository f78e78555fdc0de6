import { randomUUID } from 'node:crypto';
import { rm, symlink } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { loadJobsDir } from '../src/job/load.js';
import type { RunManifest } from '../src/run/manifest.js';
import { createUiApp } from '../src/ui/app.js';
import { UiContext } from '../src/ui/context.js';
import type { Notice } from '../src/ui/context.js';
import type { RunDetail } from '../src/ui/run-detail.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * The run page reads the first rows of a date's rejects files with its own file system and
 * S3 credentials. Which files is the job's to say (its output and rejects folders), never the
 * manifest's: anyone who can write the output folder can write a manifest. A manifest naming
 * a secret elsewhere, by file URL, path, `..`, link or another bucket or prefix, gets a notice
 * and none of the secret's bytes, on the page and in the API alike. The UI app is called in
 * process, over real files, a real S3-speaking server and a real Redis.
 */

const DATE = '2026-05-01';
const SECRET = `nightscore-secret-${randomUUID()}`;
// Shaped like a rejects file, so that a page that read it would show its rows.
const SECRET_CSV = `source,line,id,reason\n${SECRET},1,${SECRET},${SECRET}\n`;

let ws: Workspace;
let s3: S3Server;
let tq: TestQueue;
let ctx: UiContext;
let app: Hono;
let localManifest: RunManifest;
let s3Manifest: RunManifest;

const outDir = () => ws.path('out', `dt=${DATE}`);
const writeLocalManifest = (m: unknown) => ws.write(`out/dt=${DATE}/_manifest.json`, JSON.stringify(m));
const writeS3Manifest = (m: unknown) => s3.put('scores', `daily/dt=${DATE}/_manifest.json`, JSON.stringify(m));
const withRejectsAt = (m: RunManifest, uri: string): RunManifest => ({ ...m, rejects: [{ uri, rows: 1 }] });

/** A request as a browser on this machine sends it (the UI without a token answers loopback names only). */
const get = (path: string, headers: Record<string, string> = {}) => app.fetch(new Request(`http://127.0.0.1${path}`, { headers: { host: '127.0.0.1', ...headers } }));

/** The run's page and its JSON, as a browser and a script get them. */
async function readRun(job: string): Promise<{ html: string; api: RunDetail; apiText: string }> {
  const page = await get(`/runs/${job}/${DATE}`, { accept: 'text/html' });
  const api = await get(`/api/runs/${job}/${DATE}`);
  expect([page.status, api.status]).toEqual([200, 200]);
  const apiText = await api.text();
  return { html: await page.text(), api: JSON.parse(apiText) as RunDetail, apiText };
}

const codes = (notices: Notice[]) => notices.map((n) => n.error.code);

beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['features', 'scores', 'private']);
  tq = await createTestQueue(s3.env);
  await ws.model('m.onnx', { weights: [0.5], bias: 0, featureNames: ['x'] });
  await ws.write('secret/credentials', SECRET_CSV);
  // Named like a rejects file, in a folder that is not the run's.
  await ws.write('secret/part-00000.csv', SECRET_CSV);
  await s3.put('private', 'credentials', SECRET_CSV);
  await s3.put('scores', 'other/part-00000.csv', SECRET_CSV);
  const input = 'id,x\nk1,0.1\nk2,0.2\nbad,oops\n';
  const limits = { max_reject_rate: 0.5 };
  const local = await ws.job('jobs/local.yaml', { name: 'local', input: { uri: '../in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: '../m.onnx' }, output: { uri: '../out/dt={date}/', format: 'csv' }, limits });
  const remote = await ws.job('jobs/daily.yaml', { name: 'daily', input: { uri: 's3://features/daily/dt={date}/', format: 'csv', key: ['id'] }, model: { path: '../m.onnx' }, output: { uri: 's3://scores/daily/dt={date}/', format: 'csv' }, limits });
  await ws.write(`in/dt=${DATE}/a.csv`, input);
  await s3.put('features', `daily/dt=${DATE}/a.csv`, input);
  for (const job of [local, remote]) expect((await runCli(['run', job, '--date', DATE], { env: s3.env })).code).toBe(0);
  localManifest = await ws.manifest(`out/dt=${DATE}`);
  s3Manifest = JSON.parse(await s3.get('scores', `daily/dt=${DATE}/_manifest.json`)) as RunManifest;
  expect([localManifest.rejects.length, s3Manifest.rejects.length]).toEqual([1, 1]);
  // Every read goes to storage: a rewritten manifest is seen at once.
  ctx = new UiContext({ jobsDir: ws.path('jobs'), queues: tq.queues, outputs: { finishedTtlMs: 0, activeTtlMs: 0 } });
  await ctx.init(await loadJobsDir(ws.path('jobs')));
  app = createUiApp({ ctx });
}, 60_000);

afterAll(async () => {
  await tq?.close();
  await s3?.close();
  await ws?.remove();
});

describe('the run page reads rejects only from the run\'s own folders', () => {
  it('shows the first rejects of a manifest nightscore wrote', async () => {
    for (const job of ['local', 'daily']) {
      const { html, api } = await readRun(job);
      expect(api.notices).toEqual([]);
      expect(api.rejects?.rows).toEqual([expect.objectContaining({ line: '4', key: ['bad'] })]);
      expect(html).toContain('data-reject-line="4"');
    }
  });

  const local = (): Record<string, string> => ({
    'a file URL': pathToFileURL(ws.path('secret/credentials')).href,
    'a plain path': ws.path('secret/credentials'),
    '/etc/passwd': '/etc/passwd',
    'a rejects file name in another folder': pathToFileURL(ws.path('secret/part-00000.csv')).href,
    'a path with ..': `${outDir()}/_rejects/../../../secret/part-00000.csv`,
    'a file URL with ..': `${pathToFileURL(outDir()).href}/_rejects/../../../secret/part-00000.csv`,
    'a file URL with encoded ..': `${pathToFileURL(outDir()).href}/_rejects/%2e%2e/%2e%2e/%2e%2e/secret/part-00000.csv`,
    'an s3:// object': 's3://private/credentials',
  });

  it('refuses, with a notice, a local run\'s manifest naming a file elsewhere: by file URL, path, .. or an s3:// object', async () => {
    for (const [what, uri] of Object.entries(local())) {
      await writeLocalManifest(withRejectsAt(localManifest, uri));
      const { html, api, apiText } = await readRun('local');
      expect(html, what).not.toContain(SECRET);
      expect(apiText, what).not.toContain(SECRET);
      expect(apiText, what).not.toContain('root:x:0:0');
      expect(api.rejects?.rows, what).toEqual([]);
      expect(codes(api.notices), what).toEqual(['MANIFEST_INVALID']);
      expect(api.notices[0]!.error.message, what).toContain('is not a rejects file of this run');
      expect(html, what).toContain('MANIFEST_INVALID');
    }
    await writeLocalManifest(localManifest);
  });

  it('refuses a rejects file that is a link out of the run\'s folder, where the manifest names the right file', async () => {
    const rejects = `${outDir()}/_rejects/part-00000.csv`;
    await rm(rejects);
    await symlink(ws.path('secret/credentials'), rejects);
    const { html, api, apiText } = await readRun('local');
    expect(html).not.toContain(SECRET);
    expect(apiText).not.toContain(SECRET);
    expect(codes(api.notices)).toEqual(['MANIFEST_INVALID']);
    expect(api.notices[0]!.error.message).toContain('is a link leading out of');
  });

  it('refuses an S3 run\'s manifest naming another bucket, another prefix of its bucket, a local file or a key with ..', async () => {
    const elsewhere = {
      'another bucket': 's3://private/credentials',
      'another prefix': 's3://scores/other/part-00000.csv',
      'a key with ..': `s3://scores/daily/dt=${DATE}/_rejects/../../other/part-00000.csv`,
      'a local file': pathToFileURL(ws.path('secret/credentials')).href,
    };
    for (const [what, uri] of Object.entries(elsewhere)) {
      await writeS3Manifest(withRejectsAt(s3Manifest, uri));
      const { html, api, apiText } = await readRun('daily');
      expect(html, what).not.toContain(SECRET);
      expect(apiText, what).not.toContain(SECRET);
      expect(codes(api.notices), what).toEqual(['MANIFEST_INVALID']);
    }
    await writeS3Manifest(s3Manifest);
  });
});

describe('a manifest read back is validated as its type', () => {
  it('is MANIFEST_INVALID, naming the field, on the run page and the grid, rather than a page that breaks', async () => {
    const broken: Record<string, unknown> = {
      'rows.scored': { ...localManifest, rows: { ...localManifest.rows, scored: 'lots' } },
      rejects: { ...localManifest, rejects: 'part-00000.csv' },
      'error.message': { ...localManifest, status: 'failed', error: { code: 'X', kind: 'input', message: { html: '<b>' } } },
      '(the whole document)': ['not', 'a', 'manifest'],
    };
    for (const [field, manifest] of Object.entries(broken)) {
      await writeLocalManifest(manifest);
      const { api } = await readRun('local');
      expect(api.manifest, field).toBeNull();
      const notice = api.notices.find((n) => n.error.code === 'MANIFEST_INVALID');
      expect(notice?.error, field).toMatchObject({ column: field, source: pathToFileURL(`${outDir()}/_manifest.json`).href });
      const dates = (await (await get(`/api/jobs/local/dates?from=${DATE}&to=${DATE}`)).json()) as { dates: Array<{ cell: string }>; notices: Notice[] };
      expect(dates.dates[0]!.cell, field).toBe('unreadable');
      expect(codes(dates.notices), field).toContain('MANIFEST_INVALID');
    }
    await writeLocalManifest(localManifest);
  });
});
