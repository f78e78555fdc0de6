import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { launchChromium, pageAt } from './support/browser.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Drift on the page of runs, in a real browser: a job with a profile, a date like its
 * reference and a date that drifted. The grid marks each date's cell with its drift status
 * (the cell's state stays what the run was), each job shows its run health, and the run page
 * lists the columns by PSI with a reference-vs-run histogram each, drawn on the server as SVG.
 * A damaged `_drift.json` is a notice; a replaced profile leaves the run's counts alone.
 */

const SAME = '2026-06-01';
const SHIFTED = '2026-06-02';
const DAMAGED = '2026-06-03';
const FROM = '2026-06-01';
const TO = '2026-06-04';
const ARTIFACTS = path.join(REPO, 'test-artifacts/ui-drift');

let ws: Workspace;
let tq: TestQueue;
let ui: UiServer;
let browser: Browser;

/** `rows` rows of x (spread over [-1, 1), moved by `shift`) and tier (0 to 3, or all `tier`). */
function day(rows: number, seed: number, shift = 0, tier?: number): string {
  const lines = ['id,x,tier'];
  for (let i = 0; i < rows; i++) lines.push(`r${seed}-${i},${(((i * 7919 + seed) % rows) / rows) * 2 - 1 + shift},${tier ?? i % 4}`);
  return `${lines.join('\n')}\n`;
}

beforeAll(async () => {
  ws = await Workspace.create();
  tq = await createTestQueue();
  await ws.model('m.onnx', { weights: [0.8, 0.5], bias: 0, featureNames: ['x', 'tier'] });
  // Enough rows that the probability bins' noise floor lets a date like the reference be ok.
  await ws.write('reference.csv', day(8000, 1));
  await ws.write(`in/dt=${SAME}/a.csv`, day(4000, 2));
  await ws.write(`in/dt=${SHIFTED}/a.csv`, day(2000, 3, 1.5, 3));
  // Too few rows to tell for the probabilities: inconclusive.
  await ws.write(`in/dt=${DAMAGED}/a.csv`, day(200, 4));
  const job = (drift: Record<string, unknown> | undefined) => ({ name: 'scored', input: { uri: '../in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: '../m.onnx' }, output: { uri: '../out/dt={date}/', format: 'csv' }, ...(drift ? { drift } : {}) });
  const build = await ws.job('build.yaml', { ...job(undefined), input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' } });
  const built = await runCli(['profile', 'build', build, ws.path('reference.csv'), '-o', ws.path('profile.json')]);
  expect(built.code, built.stderr).toBe(0);
  const jobFile = await ws.job('jobs/scored.yaml', job({ profile: '../profile.json', mode: 'warn' }));
  for (const date of [SAME, SHIFTED, DAMAGED]) {
    const run = await runCli(['run', jobFile, '--date', date]);
    expect(run.code, run.stderr).toBe(0);
  }
  const damaged = JSON.parse(await ws.read(`out/dt=${DAMAGED}/_drift.json`)) as Record<string, unknown>;
  await ws.write(`out/dt=${DAMAGED}/_drift.json`, JSON.stringify({ ...damaged, columns: 'not a list' }));
  ui = await startUiServer({ jobsDir: ws.path('jobs'), port: 0, config: tq.config });
  browser = await launchChromium();
  await mkdir(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await ui?.close();
  await tq?.close();
  await ws?.remove();
});

const openPage = (url: string): Promise<Page> => pageAt(browser, url);

describe('drift on the page of runs', () => {
  it('marks each date\'s cell with its drift status, beside its state, and the API says it too', async () => {
    const page = await openPage(`${ui.url}?from=${FROM}&to=${TO}`);
    const cells = await page.$$eval('section.job[data-job="scored"] a.cell', (els) => els.map((e) => ({ date: e.getAttribute('data-date'), state: e.getAttribute('data-state'), drift: e.getAttribute('data-drift'), mark: e.querySelector('[data-drift-mark]')?.getAttribute('data-drift-mark') ?? null, title: e.getAttribute('title') })));
    const byDate = Object.fromEntries(cells.map((c) => [c.date, c]));
    expect(cells.map((c) => [c.date, c.state, c.drift, c.mark])).toEqual([
      [SAME, 'succeeded', 'ok', 'ok'],
      [SHIFTED, 'succeeded', 'drift', 'drift'],
      [DAMAGED, 'succeeded', 'inconclusive', 'inconclusive'],
      ['2026-06-04', 'missing', null, null],
    ]);
    expect(byDate[SHIFTED]!.title).toMatch(/succeeded · .*drifted \(drifted: .*x/);
    // The mark is drawn: a dot in the cell's corner, not just an attribute.
    const box = await page.locator(`a.cell[data-date="${SHIFTED}"] [data-drift-mark]`).boundingBox();
    expect(box!.width).toBeGreaterThan(5);
    const totals = await page.$$eval('section.job[data-job="scored"] [data-total-drift]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-total-drift'), Number(e.getAttribute('data-count'))])));
    expect(totals).toEqual({ drift: 1, inconclusive: 1, ok: 1 });
    const api = (await (await fetch(`${ui.url}api/dates?from=${FROM}&to=${TO}`)).json()) as { jobs: Array<{ dates: Array<{ date: string; drift?: { status: string; drifted: string[] } }> }> };
    expect(api.jobs[0]!.dates.map((d) => d.drift?.status ?? null)).toEqual(['ok', 'drift', 'inconclusive', null]);
    expect(api.jobs[0]!.dates[1]!.drift!.drifted).toContain('x');
    await page.screenshot({ path: path.join(ARTIFACTS, 'grid.png'), fullPage: true });
    await page.close();
  });

  it('draws each job\'s rows read, reject rate and duration per date, inline and without script', async () => {
    const page = await openPage(`${ui.url}?from=${FROM}&to=${TO}`);
    const health = page.locator('section.job[data-job="scored"] [data-health] > svg');
    expect(await health.count()).toBe(1);
    const texts = await health.locator('text').allTextContents();
    expect(texts).toEqual(expect.arrayContaining(['rows read', 'reject rate', 'duration', '200']));
    expect(await page.locator('script').count()).toBe(0);
    await page.close();
  });

  it('lists the drifted run\'s columns by PSI, each with its statistics and a histogram of the reference against the run', async () => {
    const page = await openPage(`${ui.url}runs/scored/${SHIFTED}`);
    expect(await page.locator('#drift').getAttribute('data-drift-status')).toBe('drift');
    const rows = await page.$$eval('#drift tr[data-drift-column]', (els) => els.map((e) => ({ name: e.getAttribute('data-drift-column'), status: e.getAttribute('data-status'), psi: Number(e.getAttribute('data-psi')), svgs: e.querySelectorAll('td.hist svg').length })));
    const report = JSON.parse(await ws.read(`out/dt=${SHIFTED}/_drift.json`)) as { columns: Array<{ name: string; psi: number }> };
    expect(rows.map((r) => r.name).sort()).toEqual(report.columns.map((c) => c.name).sort());
    expect(rows.map((r) => r.psi)).toEqual([...rows.map((r) => r.psi)].sort((a, b) => b - a));
    expect(rows.find((r) => r.name === 'x')!.status).toBe('drift');
    expect(rows.every((r) => r.svgs === 1)).toBe(true);
    // Bins people can read: x on its deciles (from the profile's edges), tier on its values.
    const labels = async (column: string) => page.locator(`tr[data-drift-column="${column}"] svg g[aria-label="x-axis tick label"] text`).allTextContents();
    expect((await labels('x'))[0]).toMatch(/^-?[\d.]+–-?[\d.]+$/);
    expect(await labels('tier')).toEqual(expect.arrayContaining(['0', '3']));
    // Probabilities on their fixed steps, labels on their values.
    expect(await labels('probabilities_1')).toEqual(expect.arrayContaining(['0.00–0.05']));
    expect((await labels('label')).sort()).toEqual(['0', '1']);
    // Both sides drawn: the reference's bars are there, not the run's alone.
    expect(await page.locator('[data-reference-problem]').count()).toBe(0);
    const x = page.locator('tr[data-drift-column="x"] svg');
    expect(await x.locator('title').first().textContent()).toMatch(/reference \d+\.\d%, run \d+\.\d%/);
    expect(await page.locator('script').count()).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-drift.png'), fullPage: true });
    await page.close();
  });

  it('a run like its reference is ok, column by column', async () => {
    const page = await openPage(`${ui.url}runs/scored/${SAME}`);
    expect(await page.locator('#drift').getAttribute('data-drift-status')).toBe('ok');
    const statuses = await page.$$eval('#drift tr[data-drift-column]', (els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses.length).toBeGreaterThan(1);
    expect(new Set(statuses)).toEqual(new Set(['ok']));
    await page.close();
  });

  it('a damaged _drift.json is a notice naming it, and the rest of the page shows', async () => {
    const page = await openPage(`${ui.url}runs/scored/${DAMAGED}`);
    const notice = page.locator('[data-notice="MANIFEST_INVALID"]');
    expect(await notice.textContent()).toMatch(/_drift\.json is not a drift report nightscore writes: columns/);
    expect(await page.locator('#drift').getAttribute('data-drift-section')).toBe('unreadable');
    expect(await page.locator('[data-field="rows.read"]').getAttribute('data-value')).toBe('200');
    await page.close();
  });

  it('a profile replaced since the run leaves the run\'s counts alone on the chart, and says why', async () => {
    await ws.write('profile.json', `${await ws.read('profile.json')} `);
    const page = await openPage(`${ui.url}runs/scored/${SHIFTED}`);
    expect(await page.locator('[data-reference-problem]').textContent()).toContain('PROFILE_CHANGED');
    expect(await page.locator('#drift tr[data-drift-column] td.hist svg').count()).toBeGreaterThan(1);
    expect(await page.locator('tr[data-drift-column="x"] svg title').first().textContent()).toMatch(/reference 0\.0%/);
    await page.close();
  });
});
