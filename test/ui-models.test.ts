import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { launchChromium, pageAt } from './support/browser.js';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * The models view of the page, in a real browser: each registered model's versions, where
 * each alias points, the alias history with the promotion gate's report beside the move it
 * made (and the reports that moved nothing), and the challenger's agreement per day, checked
 * against the registry's own files.
 */

let ws: Workspace;
let tq: TestQueue;
let ui: UiServer;
let browser: Browser;
const DAYS = ['2026-05-01', '2026-05-02', '2026-05-03'];

beforeAll(async () => {
  ws = await Workspace.create();
  tq = await createTestQueue();
  const env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry') };
  await ws.write('v1.onnx', driftModel(-0.2));
  await ws.write('v2.onnx', driftModel(-0.15));
  for (const [file, alias] of [['v1.onnx', 'champion'], ['v2.onnx', 'challenger']] as const) {
    expect((await runCli(['model', 'register', 'm', ws.path(file), '--alias', alias, '--metric', 'auc=0.81'], { env })).code).toBe(0);
  }
  const job = await ws.job('jobs/daily.yaml', {
    name: 'daily',
    registry: '../registry',
    input: { uri: '../in/dt={date}/', format: 'csv', key: ['id'] },
    model: { uri: 'models:/m@champion', inputs: { num: FEATURES, region: 'region' } },
    output: { uri: '../out/dt={date}/', format: 'csv' },
    shadow: [{ uri: 'models:/m@challenger' }],
  });
  for (const [i, date] of DAYS.entries()) {
    await ws.write(`in/dt=${date}/a.csv`, day(1500, 40 + i));
    const run = await runCli(['run', job, '--date', date]);
    expect(run.code, run.stderr).toBe(0);
  }
  await ws.write('gate.yaml', 'min_days: 3\nagreement: { min: 0.9 }\n');
  const promote = (date: string) => runCli(['model', 'promote', 'm', '--from', 'challenger', '--to', 'champion', '--gate', ws.path('gate.yaml'), '--job', job, '--date', date]);
  expect((await promote('2026-05-04')).code).toBe(3);
  const passed = await promote('2026-05-03');
  expect(passed.code, passed.stderr).toBe(0);
  ui = await startUiServer({ jobsDir: ws.path('jobs'), port: 0, config: tq.config });
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await ui?.close();
  await tq?.close();
  await ws?.remove();
});

describe('the models view', () => {
  it('shows versions, aliases, the history with the gate report beside its move, and the agreement chart, as the registry\'s files say', async () => {
    const page = await pageAt(browser, `${ui.url}models?to=2026-05-04`);
    const section = page.locator('section.model[data-model="m"]');
    expect(await section.count()).toBe(1);

    const aliases = JSON.parse(await ws.read('registry/m/aliases.json')) as { generation: number; aliases: Record<string, number> };
    const shown = await section.locator('[data-alias]').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-alias'), Number(e.getAttribute('data-version'))])));
    expect(shown).toEqual(aliases.aliases);

    const versions = (await ws.list('registry/m/versions')).filter((f) => /^\d+$/.test(f)).map(Number).sort((a, b) => b - a);
    expect(await section.locator('tr[data-version]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-version'))))).toEqual(versions);
    for (const v of versions) {
      const record = JSON.parse(await ws.read(`registry/m/versions/${v}/version.json`)) as { sha256: string };
      const row = section.locator(`tr[data-version="${v}"]`);
      expect(await row.locator('code').getAttribute('title')).toBe(record.sha256);
      expect(await row.textContent()).toContain('auc=0.81');
    }

    // Every move in the events, in generation order; the promotion's with its gate report.
    const events = await Promise.all((await ws.list('registry/m/events')).map(async (f) => JSON.parse(await ws.read(`registry/m/events/${f}`)) as { kind: string; generation?: number; moved?: number | null; verdict?: string }));
    const moves = events.filter((e) => e.kind === 'alias').map((e) => e.generation!).sort((a, b) => a - b);
    expect(await section.locator('tr[data-move]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-move'))))).toEqual(moves);
    const gates = events.filter((e) => e.kind === 'gate');
    const pass = gates.find((g) => g.verdict === 'pass')!;
    const moveRow = section.locator(`tr[data-move="${pass.moved}"]`);
    expect(await moveRow.getAttribute('data-gate')).toBe('pass');
    expect(await moveRow.locator('tr[data-condition]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-condition')} ${e.getAttribute('data-result')}`))).toEqual(['min_days pass', 'min_rows pass', 'agreement pass']);
    // The inconclusive judgement moved nothing, and is listed as such.
    const unmoved = section.locator('[data-gate-report="inconclusive"]');
    expect(await unmoved.count()).toBe(1);
    expect(await unmoved.textContent()).toContain('2026-05-04: no run');

    const chart = section.locator('[data-agreement] > svg');
    expect(await chart.count()).toBe(1);
    const texts = await chart.locator('text').allTextContents();
    expect(texts.some((t) => t.includes('agreement')), texts.join(' | ')).toBe(true);
    expect(texts.some((t) => t.includes('models:/m@challenger (daily)')), texts.join(' | ')).toBe(true);
    expect(await page.locator('script').count()).toBe(0);
    await page.close();

    // A scored date's run page lists its challenger as the manifest says.
    const run = await pageAt(browser, `${ui.url}runs/daily/${DAYS[0]}`);
    const manifest = JSON.parse(await ws.read(`out/dt=${DAYS[0]}/_manifest.json`)) as { shadow: { challengers: Array<{ name: string; status: string; agreement: number }> } };
    expect(await run.locator('#shadow tr[data-challenger]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-challenger'), e.getAttribute('data-status'), Number(e.getAttribute('data-agreement'))]))).toEqual(manifest.shadow.challengers.map((c) => [c.name, c.status, c.agreement]));
    await run.close();

    const api = (await (await fetch(`${ui.url}api/models?to=2026-05-04`)).json()) as { models: Array<{ name: string; agreement: Array<{ dates: string[]; values: Array<number | null> }> }> };
    const series = api.models.find((m) => m.name === 'm')!.agreement[0]!;
    // Of the fourteen days ending on 05-04, the three scored compared the challenger; the others have no comparison.
    expect(series.dates.slice(-4)).toEqual([...DAYS, '2026-05-04']);
    expect(series.values.map((v) => v !== null)).toEqual([...new Array<boolean>(10).fill(false), true, true, true, false]);
    expect(series.values.slice(-4, -1).every((v) => v! > 0.9 && v! <= 1)).toBe(true);
  });
});
