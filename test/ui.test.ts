import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFailure } from '../src/errors.js';
import { Registry } from '../src/registry/registry.js';
import type { RunManifest } from '../src/run/manifest.js';
import { BoundedCache } from '../src/ui/cache.js';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { launchChromium, pageAt } from './support/browser.js';
import { createTestQueue, type TestQueue, type WorkerProcess } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * `nightscore ui` in a real browser: real runs in every state (scored in process and on the
 * queue, on an S3-speaking server), the grid's cells and totals against `status` and the
 * manifests read back from storage, run pages, Bull Board, the token, a Redis that is down,
 * a storage error, hostile values, and the render time of a month of ten jobs.
 */

// Outside the grid's range: its queued run failed, and the date was scored in process since.
const SINCE_SCORED = '2026-04-20';
const D = { stale: '2026-05-04', succeeded: '2026-05-05', failed: '2026-05-06', queueFailed: '2026-05-07', running: '2026-05-08', queued: '2026-05-09' };
const FROM = '2026-05-01';
const TO = '2026-05-10';
const EXPECTED: Record<string, string> = {
  '2026-05-01': 'missing',
  '2026-05-02': 'missing',
  '2026-05-03': 'missing',
  [D.stale]: 'stale',
  [D.succeeded]: 'succeeded',
  [D.failed]: 'failed',
  [D.queueFailed]: 'failed',
  [D.running]: 'running',
  [D.queued]: 'scheduled',
  '2026-05-10': 'missing',
};
// A second job names its model in a registry: its first date was scored by m@1, and the alias moved to m@2 since.
const RANKED: Record<string, string> = { ...Object.fromEntries(Object.keys(EXPECTED).map((d) => [d, 'missing'])), [D.stale]: 'stale', [D.succeeded]: 'succeeded' };
// Values a page must show as text: a reject reason quotes the field, the key is copied as it is.
const HOSTILE_VALUE = '<img src=x onerror=window.__pwned=1>';
const HOSTILE_KEY = '<script>window.__pwned=2</script>';
const HOSTILE_COLUMN = '<b>y</b>';
const HOSTILE_DESCRIPTION = 'Daily <i>scores</i> & "quotes"';
const ARTIFACTS = path.join(REPO, 'test-artifacts/ui');

let s3: S3Server;
let tq: TestQueue;
let ws: Workspace;
let browser: Browser;
let ui: UiServer;
let jobFile: string;
let worker: WorkerProcess;
const workerUi: { healthz?: number; grid?: string } = {};

const good = (n: number) => Array.from({ length: n }, (_, i) => `k${i},${(i % 10) / 10}`).join('\n');
const dailyJob = (rel: string) =>
  ws.job(rel, {
    name: 'daily',
    description: HOSTILE_DESCRIPTION,
    input: { uri: 's3://features/daily/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: '../m.onnx' },
    output: { uri: 's3://scores/daily/dt={date}/', format: 'csv' },
    chunk: { bytes: 256 },
    limits: { max_reject_rate: 0.2 },
  });
const manifestOf = async (date: string): Promise<RunManifest> => JSON.parse(await s3.get('scores', `daily/dt=${date}/_manifest.json`));
type ErrorBody = { error: { code: string; kind: string; message: string; hint?: string } };
const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
const until = async (done: () => Promise<boolean>, what: string) => {
  for (const deadline = Date.now() + 30_000; !(await done()); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${tq.workerLogs()}`);
  }
};

beforeAll(async () => {
  s3 = await startS3(['features', 'scores']);
  tq = await createTestQueue(s3.env);
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [0.5], bias: 0, featureNames: ['x'] });
  jobFile = await dailyJob('jobs/daily.yaml');
  const input = (date: string, body: string) => s3.put('features', `daily/dt=${date}/a.csv`, body);
  const withRejects = `id,x\n${good(200)}\nbad1,${HOSTILE_VALUE}\n${HOSTILE_KEY},oops\n`;
  await input(D.stale, withRejects);
  await input(D.succeeded, withRejects);
  await input(D.failed, `id,x\n${good(4)}\n${Array.from({ length: 6 }, (_, i) => `bad${i},${HOSTILE_VALUE}`).join('\n')}\n`);
  await input(D.queueFailed, `id,${HOSTILE_COLUMN}\n1,1\n`);
  await input(D.running, `id,x\n${good(4000)}\n`);
  await input(D.queued, `id,x\n${good(20)}\n`);
  const ranked = await ws.job('jobs/ranked.yaml', { name: 'ranked', registry: '../registry', input: { uri: '../ranked-in/dt={date}/', format: 'csv', key: ['id'] }, model: { uri: 'models:/m@champion' }, output: { uri: '../ranked-out/dt={date}/', format: 'csv' } });
  for (const date of [D.stale, D.succeeded]) await ws.write(`ranked-in/dt=${date}/a.csv`, `id,x\n${good(50)}\n`);
  const registry = new Registry(ws.path('registry'));
  await registry.register('m', ws.path('m.onnx'), { alias: 'champion' });
  const env = tq.env;
  expect((await runCli(['run', jobFile, '--date', D.stale], { env })).code).toBe(0);
  expect((await runCli(['run', ranked, '--date', D.stale], { env })).code).toBe(0);
  // The model file is replaced (and registered as m@2, the champion now): the dates scored
  // before are scored by other bytes, and another version, than the jobs' models now.
  await ws.model('m.onnx', { weights: [0.7], bias: 0, featureNames: ['x'] });
  await registry.register('m', ws.path('m.onnx'));
  await registry.setAlias('m', 'champion', 2, { reason: 'the test moves it' });
  expect((await runCli(['run', jobFile, '--date', D.succeeded], { env })).code).toBe(0);
  expect((await runCli(['run', ranked, '--date', D.succeeded], { env })).code).toBe(0);
  expect((await runCli(['run', jobFile, '--date', D.failed], { env })).code).toBe(3);
  worker = await tq.startWorker({}, ['--concurrency', '1', '--jobs-dir', ws.path('jobs'), '--ui', '0']);
  const uiPort = /"port":(\d+)[^\n]*"msg":"ui started"/.exec(worker.log())?.[1];
  workerUi.healthz = (await fetch(`http://127.0.0.1:${uiPort}/healthz`)).status;
  workerUi.grid = await (await fetch(`http://127.0.0.1:${uiPort}/?from=${FROM}&to=${TO}`)).text();
  expect((await runCli(['run', jobFile, '--date', D.queueFailed, '--queue', '--wait'], { env })).code).toBe(1);
  await input(SINCE_SCORED, `id,${HOSTILE_COLUMN}\n1,1\n`);
  expect((await runCli(['run', jobFile, '--date', SINCE_SCORED, '--queue', '--wait'], { env })).code).toBe(1);
  await input(SINCE_SCORED, `id,x\n${good(4)}\n`);
  expect((await runCli(['run', jobFile, '--date', SINCE_SCORED], { env })).code).toBe(0);
  expect((await runCli(['run', jobFile, '--date', D.running, '--queue'], { env })).code).toBe(0);
  // Hold that run mid-way: once a chunk is scored the worker is stopped, and the run stays in
  // flight with chunks done and chunks to do; a date enqueued after it stays queued.
  await until(async () => ((await (await tq.queues.runs.getJob(`daily@${D.running}`))?.getDependenciesCount({ processed: true }))?.processed ?? 0) >= 1, 'a chunk of the running date');
  worker.child.kill('SIGSTOP');
  expect((await runCli(['run', jobFile, '--date', D.queued, '--queue'], { env })).code).toBe(0);
  ui = await startUiServer({ jobsDir: ws.path('jobs'), port: 0, config: tq.config });
  browser = await launchChromium();
  await mkdir(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await ui?.close();
  await tq?.close();
  await s3?.close();
  await ws?.remove();
});

const openPage = (url: string): Promise<Page> => pageAt(browser, url);

const cellsOf = (page: Page, job: string) =>
  page.$$eval(`section.job[data-job="${job}"] a.cell`, (els) => els.map((e) => ({ date: e.getAttribute('data-date')!, state: e.getAttribute('data-state')!, done: e.getAttribute('data-chunks-done'), total: e.getAttribute('data-chunks-total'), title: e.getAttribute('title')! })));

describe('nightscore ui in a browser', () => {
  it('the grid shows each date as its manifest and the queue say, with totals; the worker serves it too with --ui', async () => {
    const page = await openPage(`${ui.url}?from=${FROM}&to=${TO}`);
    const cells = await cellsOf(page, 'daily');
    // A notice (a read that failed) explains a wrong cell: it goes with the failure.
    const notices = (await page.locator('[data-notice]').allTextContents()).join('\n');
    expect(Object.fromEntries(cells.map((c) => [c.date, c.state])), notices).toEqual(EXPECTED);
    // Cell for cell what `status` says, the date scored by the replaced model being stale.
    const status = await tq.status(jobFile, FROM, TO);
    expect(cells.map((c) => c.state)).toEqual(status.map((s) => (s.date === D.stale ? 'stale' : s.state)));
    const running = status.find((s) => s.date === D.running)!.chunks!;
    expect(running.done).toBeGreaterThan(0);
    expect(running.done).toBeLessThan(running.total);
    const cell = cells.find((c) => c.date === D.running)!;
    expect([Number(cell.done), Number(cell.total)]).toEqual([running.done, running.total]);
    expect(cells.find((c) => c.date === D.stale)!.title).toMatch(/stale model · .*scored by sha256 [0-9a-f]{12}, now [0-9a-f]{12}/);
    const rankedCells = await cellsOf(page, 'ranked');
    expect(Object.fromEntries(rankedCells.map((c) => [c.date, c.state]))).toEqual(RANKED);
    expect(rankedCells.find((c) => c.date === D.stale)!.title).toContain('model m@1 · scored by m@1, now m@2');
    const totals = await page.$$eval('section.job[data-job="daily"] [data-total-state]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-total-state'), Number(e.getAttribute('data-count'))])));
    expect(totals).toEqual({ succeeded: 1, stale: 1, failed: 2, running: 1, scheduled: 1, missing: 4 });
    // The queue panels: both runs in flight, the queue's failure with its code.
    expect(await page.$$eval('#in-flight [data-in-flight]', (els) => els.map((e) => e.getAttribute('data-in-flight')).sort())).toEqual([`daily@${D.running}`, `daily@${D.queued}`]);
    const failure = page.locator(`#failures [data-failure="daily@${D.queueFailed}"]`);
    expect(await failure.textContent()).toContain('INPUT_MISSING_COLUMN');
    // Hostile values are text: the description and the failure's message quote tags that must not become elements.
    expect(await page.locator('section.job[data-job="daily"] .meta').textContent()).toContain(HOSTILE_DESCRIPTION);
    expect(await failure.textContent()).toContain(HOSTILE_COLUMN);
    expect(await page.locator('main i, #failures td b').count()).toBe(0);
    // A date scored since its queued run failed is no longer a failure to look into.
    expect(await page.$$eval('#failures [data-failure]', (els) => els.map((e) => e.getAttribute('data-failure')))).toEqual([`daily@${D.queueFailed}`]);
    // The counts above the runs in flight are those runs' states: no failed or completed jobs.
    expect(await page.locator('#in-flight [data-in-flight-counts]').textContent()).toMatch(/^runs: (\d+ (active|waiting|waiting-children|delayed|prioritized)(, |$| · ))+/);
    expect(await page.locator('#in-flight').textContent()).not.toMatch(/failed|completed/);
    // The error has the panel's width, so a long message wraps in a few lines, not a column of words.
    const [errorWidth, tableWidth] = await Promise.all([failure.locator('td.wrap').evaluate((e) => e.getBoundingClientRect().width), page.locator('#failures table').evaluate((e) => e.getBoundingClientRect().width)]);
    expect(errorWidth / tableWidth).toBeGreaterThan(0.9);
    await page.screenshot({ path: path.join(ARTIFACTS, 'grid.png'), fullPage: true });
    // The worker started with --ui served the same grid (before it was stopped).
    expect(workerUi.healthz).toBe(200);
    expect(workerUi.grid).toContain(`data-date="${D.stale}" data-state="stale"`);
    await page.close();
  });

  it('clicking a succeeded date opens its run page: the manifest\'s numbers, model and parts, and its first rejects as text', async () => {
    const page = await openPage(`${ui.url}?from=${FROM}&to=${TO}`);
    await page.click(`a.cell[data-date="${D.succeeded}"]`);
    await page.waitForURL(`**/runs/daily/${D.succeeded}`);
    const m = await manifestOf(D.succeeded);
    const value = (name: string) => page.locator(`[data-field="${name}"]`).getAttribute('data-value');
    expect(m.rows).toEqual({ read: 202, scored: 200, rejected: 2 });
    expect([await value('rows.read'), await value('rows.scored'), await value('rows.rejected')]).toEqual([String(m.rows.read), String(m.rows.scored), String(m.rows.rejected)]);
    expect(await value('model.sha256')).toBe(m.model.sha256);
    expect(await value('chunks')).toBe(String(m.chunks));
    expect(await page.$$eval('[data-part]', (els) => els.map((e) => ({ uri: e.getAttribute('data-part'), rows: Number(e.getAttribute('data-rows')) })))).toEqual(m.parts);
    expect(await page.$$eval('[data-input]', (els) => els.map((e) => e.getAttribute('data-input')))).toEqual(m.inputs.map((i) => i.uri));
    const rejects = await page.$$eval('#rejects tr[data-reject-line]', (els) => els.map((e) => [...e.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rejects).toEqual([
      ['a.csv', '202', 'bad1', `column x: expected a number, got ${JSON.stringify(HOSTILE_VALUE)}`],
      ['a.csv', '203', HOSTILE_KEY, 'column x: expected a number, got "oops"'],
    ]);
    expect(await page.locator('#rejects img, #rejects script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    const raw = await (await fetch(`${ui.url}runs/daily/${D.succeeded}`)).text();
    expect(raw).toContain('&lt;img src=x onerror=window.__pwned=1&gt;');
    expect(raw).not.toContain(HOSTILE_VALUE);
    expect(await page.locator('#drift[data-drift-section="none"]').textContent()).toContain('measured no drift');
    expect(await page.locator('#shadow[data-shadow-section="none"]').textContent()).toContain('compared no challenger');
    await page.screenshot({ path: path.join(ARTIFACTS, 'run.png'), fullPage: true });
    // The stale date's page says why.
    await page.goto(`${ui.url}runs/daily/${D.stale}`);
    expect(await value('model_check')).toBe(`scored by sha256 ${(await manifestOf(D.stale)).model.sha256.slice(0, 12)}, now ${m.model.sha256.slice(0, 12)}`);
    await page.close();
  });

  it('a failed run\'s page shows its error\'s code and hint: the manifest\'s, or the queue\'s failure record', async () => {
    const page = await openPage(`${ui.url}runs/daily/${D.failed}`);
    const m = await manifestOf(D.failed);
    expect(m.error?.code).toBe('REJECT_RATE_EXCEEDED');
    expect(await page.locator('[data-error-code]').getAttribute('data-error-code')).toBe('REJECT_RATE_EXCEEDED');
    expect(await page.locator('[data-field="error.hint"]').textContent()).toBe(m.error!.hint);
    expect(await page.locator('#rejects tr[data-reject-line]').count()).toBe(6);
    await page.goto(`${ui.url}runs/daily/${D.queueFailed}`);
    const queued = decodeFailure((await tq.queues.runs.getJob(`daily@${D.queueFailed}`))!.failedReason!);
    expect(queued.code).toBe('INPUT_MISSING_COLUMN');
    expect(await page.locator('[data-field="error.code"]').textContent()).toBe('INPUT_MISSING_COLUMN');
    expect(await page.locator('[data-field="error.hint"]').textContent()).toBe(queued.hint);
    expect(await page.locator('[data-field="error.message"]').textContent()).toBe(queued.message);
    expect(queued.message).toContain(HOSTILE_COLUMN);
    expect(await page.locator('.error b').count()).toBe(0);
    await page.close();
  });

  it('the JSON API: dates, a run, the queue; an unknown job is a 404 with the error record', async () => {
    const dates = await json<{ dates: Array<{ date: string; cell: string }> }>(await fetch(`${ui.url}api/jobs/daily/dates?from=${FROM}&to=${TO}`));
    expect(Object.fromEntries(dates.dates.map((d) => [d.date, d.cell]))).toEqual(EXPECTED);
    const run = await json<{ manifest: RunManifest }>(await fetch(`${ui.url}api/runs/daily/${D.succeeded}`));
    expect(run.manifest).toEqual(await manifestOf(D.succeeded));
    const missing = await fetch(`${ui.url}api/runs/nope/${D.succeeded}`);
    expect(missing.status).toBe(404);
    expect(await json<ErrorBody>(missing)).toEqual({ error: { code: 'UI_NOT_FOUND', kind: 'usage', message: expect.stringContaining('no job named "nope"'), hint: expect.any(String) } });
    const bad = await fetch(`${ui.url}api/jobs/daily/dates?from=2026-02-30`);
    expect(bad.status).toBe(400);
    expect((await json<ErrorBody>(bad)).error.code).toBe('BAD_DATE');
  });

  it('Bull Board loads at /queues, read only: a PUT is refused and the queue stays as it was', async () => {
    const page = await openPage(`${ui.url}queues`);
    await page.getByText('chunks', { exact: true }).first().waitFor();
    expect(await page.title()).toBe('nightscore queues');
    const api = await json<{ queues: Array<{ name: string }> }>(await fetch(`${ui.url}queues/api/queues`));
    expect(api.queues.map((q) => q.name).sort()).toEqual(['chunks', 'runs']);
    const pause = await fetch(`${ui.url}queues/api/queues/runs/pause`, { method: 'PUT' });
    expect(pause.status).toBe(405);
    expect((await json<ErrorBody>(pause)).error.code).toBe('UI_READ_ONLY');
    expect(await tq.queues.runs.isPaused()).toBe(false);
    await page.close();
  });

  it('without a token it answers only requests for a loopback name: another page cannot rebind its host name to it', async () => {
    const statusFor = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: ui.port, path: '/api/jobs', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await statusFor(`127.0.0.1:${ui.port}`)).toBe(200);
    expect(await statusFor(`localhost:${ui.port}`)).toBe(200);
    expect(await statusFor(`[::1]:${ui.port}`)).toBe(200);
    expect(await statusFor(`attacker.example:${ui.port}`)).toBe(401);
    expect(await statusFor('127.0.0.1.attacker.example')).toBe(401);
  });

  it('beyond loopback it refuses to start without NIGHTSCORE_UI_TOKEN; with it, every request but /healthz needs the token', async () => {
    const cli = await runCli(['ui', '--host', '0.0.0.0', '--port', '0', '--jobs-dir', ws.path('jobs')], { env: { ...tq.env, NIGHTSCORE_UI_TOKEN: '' } });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^nightscore: UI_TOKEN_REQUIRED: the UI would listen on 0\.0\.0\.0, .* and NIGHTSCORE_UI_TOKEN is not set/m);
    expect(cli.stderr).toContain('hint: Set NIGHTSCORE_UI_TOKEN to a long random secret');
    await expect(startUiServer({ host: '0.0.0.0', port: 0, jobsDir: ws.path('jobs'), config: tq.config, token: '' })).rejects.toMatchObject({ code: 'UI_TOKEN_REQUIRED' });
    const token = randomBytes(16).toString('hex');
    process.env.NIGHTSCORE_UI_TOKEN = token;
    useEnvironment(readEnvironment(process.env));
    let open: UiServer;
    try {
      open = await startUiServer({ host: '0.0.0.0', port: 0, jobsDir: ws.path('jobs'), config: tq.config });
    } finally {
      delete process.env.NIGHTSCORE_UI_TOKEN;
      useEnvironment(readEnvironment(process.env));
    }
    try {
      const base = `http://127.0.0.1:${open.port}`;
      const none = await fetch(`${base}/api/jobs`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="nightscore"');
      expect((await json<ErrorBody>(none)).error.code).toBe('UI_UNAUTHORIZED');
      for (const path of ['/', `/runs/daily/${D.succeeded}`, '/queues', '/queues/api/queues']) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
      expect((await fetch(`${base}/api/jobs`, { headers: { authorization: `Bearer ${'0'.repeat(32)}` } })).status).toBe(401);
      expect((await fetch(`${base}/api/jobs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const health = await fetch(`${base}/healthz`);
      expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
      // A browser opens the page once with ?token=: it gets a cookie and an address without the token.
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/?token=${token}&from=${FROM}&to=${TO}`);
      expect(page.url()).toBe(`${base}/?from=${FROM}&to=${TO}`);
      expect(await page.locator('section.job[data-job="daily"] a.cell').count()).toBe(10);
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ name: 'nightscore_ui', httpOnly: true, sameSite: 'Strict' });
      expect(cookie!.value).not.toContain(token);
      expect((await page.goto(`${base}/runs/daily/${D.succeeded}`))?.status()).toBe(200);
      await context.close();
    } finally {
      await open.close();
    }
  });

  it('a Redis that is down and a storage error are banners with code and hint; the page shows what it can', async () => {
    // The same job, and one whose output folder for a date cannot be read (a symlink loop).
    await dailyJob('jobs-down/daily.yaml');
    await ws.job('jobs-down/broken.yaml', { name: 'broken', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: '../m.onnx' }, output: { uri: '../broken-out/dt={date}/', format: 'csv' } });
    await mkdir(ws.path('broken-out'), { recursive: true });
    await symlink(ws.path(`broken-out/dt=${FROM}`), ws.path(`broken-out/dt=${FROM}`));
    const down = await startUiServer({ jobsDir: ws.path('jobs-down'), port: 0, config: { ...tq.config, redisUrl: 'redis://127.0.0.1:1' }, redisTimeoutMs: 500 });
    try {
      const started = Date.now();
      const page = await openPage(`${down.url}?from=${FROM}&to=${TO}`);
      // Redis is given 500 ms (redisTimeoutMs); a page that waited for it would take BullMQ's reconnects.
      expect(Date.now() - started).toBeLessThan(15_000);
      const redis = page.locator('[data-notice="REDIS_UNAVAILABLE"]');
      expect(await redis.count()).toBe(1);
      expect(await redis.textContent()).toContain('Check that Redis runs and that NIGHTSCORE_REDIS_URL names it');
      // From the output folders alone: no queue, so no running or queued dates, and no model check.
      const cells = Object.fromEntries((await cellsOf(page, 'daily')).map((c) => [c.date, c.state]));
      expect(cells).toEqual({ ...EXPECTED, [D.stale]: 'succeeded', [D.running]: 'missing', [D.queued]: 'missing' });
      const broken = await cellsOf(page, 'broken');
      expect(broken.map((c) => c.state)).toEqual(['unreadable', ...Array(9).fill('missing')]);
      const storage = page.locator('[data-notice="FILE_IO"]');
      expect(await storage.textContent()).toMatch(/broken: FILE_IO: cannot stat .*broken-out\/dt=2026-05-01\/_manifest\.json/);
      expect(await page.content()).not.toMatch(/\n\s+at /);
      await page.close();
    } finally {
      await down.close();
    }
  });

  it('a month of ten jobs: 300 cells from the output folders, cached (npm run bench times it)', async () => {
    // One real run; its output folder is the model of 300 (10 jobs × 30 dates).
    await ws.write('perf-in/dt=2026-04-01/a.csv', `id,x\n${good(100)}\n`);
    const perfJob = (i: number) => ws.job(`perf-jobs/job${i}.yaml`, { name: `job${i}`, input: { uri: '../perf-in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: '../m.onnx' }, output: { uri: `../perf-out/job${i}/dt={date}/`, format: 'csv' } });
    const first = await perfJob(0);
    for (let i = 1; i < 10; i++) await perfJob(i);
    expect((await runCli(['run', first, '--date', '2026-04-01'], { env: tq.env })).code).toBe(0);
    const template = await readFile(ws.path('perf-out/job0/dt=2026-04-01/_manifest.json'), 'utf8');
    const dates = Array.from({ length: 30 }, (_, i) => `2026-04-${String(i + 1).padStart(2, '0')}`);
    for (let i = 0; i < 10; i++) {
      for (const date of dates) {
        const dir = ws.path(`perf-out/job${i}/dt=${date}`);
        await mkdir(dir, { recursive: true });
        await writeFile(path.join(dir, '_manifest.json'), template.replaceAll('2026-04-01', date).replaceAll('"job0"', `"job${i}"`).replaceAll('/job0/', `/job${i}/`));
        await writeFile(path.join(dir, '_SUCCESS'), '');
      }
    }
    const perf = await startUiServer({ jobsDir: ws.path('perf-jobs'), port: 0, config: tq.config });
    try {
      const url = `${perf.url}?from=2026-04-01&to=2026-04-30`;
      const body = await (await fetch(url)).text();
      expect(body.match(/data-state="succeeded"/g)?.length).toBe(300);
      const page = await openPage(url);
      expect(await page.locator('a.cell[data-state="succeeded"]').count()).toBe(300);
      await page.close();
    } finally {
      await perf.close();
    }
    const dayOf = async (server: UiServer, job: string, date: string) => json<{ dates: Array<{ cell: string }>; notices: Array<{ scope: string; error: { code: string } }> }>(await fetch(`${server.url}api/jobs/${job}/dates?from=${date}&to=${date}`));
    // Rewritten behind the page's back, as an in-process re-run that failed would leave it.
    const markFailed = async (job: string, date: string) => {
      const dir = ws.path(`perf-out/${job}/dt=${date}`);
      const m = JSON.parse(await readFile(path.join(dir, '_manifest.json'), 'utf8')) as RunManifest;
      await writeFile(path.join(dir, '_manifest.json'), JSON.stringify({ ...m, status: 'failed', error: { code: 'TOO_FEW_ROWS', kind: 'limit', message: 'm' } }));
      await rm(path.join(dir, '_SUCCESS'));
    };
    // The cache: a finished date's output is served from memory for its TTL; the first page
    // after it is served as before while the date is looked at again, the next has the news.
    const cached = await startUiServer({ jobsDir: ws.path('perf-jobs'), port: 0, config: tq.config, cache: { finishedTtlMs: 4_000 } });
    try {
      const cellOf = async () => (await dayOf(cached, 'job3', '2026-04-15')).dates[0]!.cell;
      expect(await cellOf()).toBe('succeeded');
      await markFailed('job3', '2026-04-15');
      expect(await cellOf()).toBe('succeeded');
      await new Promise((r) => setTimeout(r, 4_100));
      expect(await cellOf()).toBe('succeeded');
      for (const deadline = Date.now() + 5_000; (await cellOf()) !== 'failed' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(await cellOf()).toBe('failed');
      // A date whose output can no longer be read is not shown as it was for as long as that
      // lasts: once a re-check has failed, the page reads it first and says why.
      const other = ws.path('perf-out/job3/dt=2026-04-16');
      const cellOn = (date: string) => dayOf(cached, 'job3', date);
      expect((await cellOn('2026-04-16')).dates[0]!.cell).toBe('succeeded');
      await rm(other, { recursive: true });
      await symlink(other, other);
      await new Promise((r) => setTimeout(r, 4_100));
      let seen: Awaited<ReturnType<typeof cellOn>>;
      for (const deadline = Date.now() + 5_000; (seen = await cellOn('2026-04-16')).dates[0]!.cell !== 'unreadable' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(seen.dates[0]!.cell).toBe('unreadable');
      expect(JSON.stringify(seen.notices)).toContain('FILE_IO');
    } finally {
      await cached.close();
    }
    // Stale only just past the TTL: an entry unread for more than twice it is read first.
    const brief = await startUiServer({ jobsDir: ws.path('perf-jobs'), port: 0, config: tq.config, cache: { finishedTtlMs: 500 } });
    try {
      const cellOf = async () => (await dayOf(brief, 'job4', '2026-04-17')).dates[0]!.cell;
      expect(await cellOf()).toBe('succeeded');
      await markFailed('job4', '2026-04-17');
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await cellOf()).toBe('failed');
    } finally {
      await brief.close();
    }
  });

  it('the manifest cache keeps within its bounds, the least recently used going first', () => {
    const cache = new BoundedCache<number>({ maxEntries: 3, maxBytes: 100 });
    for (const k of ['a', 'b', 'c']) cache.set(k, 1, 10);
    cache.get('a');
    cache.set('d', 1, 10);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.get('d')]).toEqual([1, undefined, 1, 1]);
    cache.set('e', 1, 95);
    expect(cache.size).toBe(1);
    expect(cache.get('e')).toBe(1);
  });
});
