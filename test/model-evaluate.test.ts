import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/registry/registry.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * nightscore model evaluate, the model CI gate: the shipped churn model on 1,000 labelled
 * customers (test/fixtures/evaluate/labelled.csv) gives scikit-learn's metrics, to 1e-9, as
 * test/fixtures/evaluate/make.py computed them from onnxruntime's predictions; a bound it misses
 * exits 1 naming it.
 */
const MODEL = path.join(REPO, 'models/churn/model.onnx');
const DATA = path.join(REPO, 'test/fixtures/evaluate/labelled.csv');
const expected = JSON.parse(readFileSync(path.join(REPO, 'test/fixtures/evaluate/expected.json'), 'utf8')) as { metrics: Record<string, number> };

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
  await new Registry(ws.path('registry')).register('churn', MODEL, { alias: 'champion' });
});
afterAll(async () => {
  await ws?.remove();
});

describe('nightscore model evaluate', () => {
  it("gives scikit-learn's metrics of the model's predictions, and counts the rows it could not evaluate", async () => {
    const res = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const got = JSON.parse(res.stdout) as { task: string; score: string; predicted: string; rows: Record<string, number>; metrics: Record<string, number>; passed: boolean };
    expect(got).toMatchObject({ task: 'classification', rows: { read: 1000, evaluated: 996, rejected: 1, unlabelled: 3 }, passed: true });
    for (const [metric, want] of Object.entries(expected.metrics)) {
      if (metric === 'rows') expect(got.rows.evaluated).toBe(want);
      else expect(Math.abs(got.metrics[metric]! - want), `${metric}: ${got.metrics[metric]} against ${want}`).toBeLessThanOrEqual(1e-9);
    }
  });

  it('exits 1 when a bound fails, naming it, and 0 when every bound holds', async () => {
    const failing = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--min', 'auc=0.9', '--max', 'log_loss=0.5']);
    expect(failing.code, failing.stderr).toBe(1);
    expect(failing.stdout).toMatch(/ {2}roc_auc {3}0\.84\d+ {2}min 0\.9: FAIL/);
    expect(failing.stdout).toMatch(/ {2}log_loss {2}0\.41\d+ {2}max 0\.5: pass/);
    expect(failing.stdout).toMatch(/1 of 2 bounds failed: roc_auc 0\.84\d+ \(min 0\.9\)/);
    const passing = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--min', 'auc=0.8', '--min', 'accuracy=0.8']);
    expect(passing.code, passing.stderr).toBe(0);
    expect(passing.stdout).toContain('every bound passed');
  });

  it('--positive 0 measures the other class: its probability, and its precision and recall', async () => {
    const res = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--positive', '0', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const got = JSON.parse(res.stdout) as { score: string; metrics: Record<string, number> };
    // The same ranking seen from the other class: the same area; accuracy does not depend on the class.
    expect(got.score).toBe('probabilities_0');
    expect(Math.abs(got.metrics.roc_auc! - expected.metrics.roc_auc!)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(got.metrics.accuracy! - expected.metrics.accuracy!)).toBeLessThanOrEqual(1e-9);
    expect(got.metrics.precision).not.toBeCloseTo(expected.metrics.precision!, 3);
  });

  it('evaluates a registered version by its reference, with the same metrics', async () => {
    const res = await runCli(['model', 'evaluate', 'models:/churn@champion', DATA, '--label', 'churned', '--registry', ws.path('registry'), '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(Math.abs((JSON.parse(res.stdout) as { metrics: Record<string, number> }).metrics.roc_auc! - expected.metrics.roc_auc!)).toBeLessThanOrEqual(1e-9);
  });

  it('--register records the metrics and verdicts on the version the reference names, which model show prints; a forged record is refused', async () => {
    const res = await runCli(['model', 'evaluate', 'models:/churn@champion', DATA, '--label', 'churned', '--registry', ws.path('registry'), '--min', 'auc=0.9', '--register']);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain(`recorded on models:/churn/1 (file://${ws.path('registry', 'churn', 'versions', '1', 'evaluation.json')})`);
    const show = await runCli(['model', 'show', 'models:/churn@champion', '--registry', ws.path('registry'), '--json']);
    expect(show.code, show.stderr).toBe(0);
    const { evaluation } = JSON.parse(show.stdout) as { evaluation: { sha256: string; metrics: Record<string, number>; bounds: unknown[]; passed: boolean; rows: { evaluated: number } } };
    expect(evaluation).toMatchObject({ passed: false, rows: { evaluated: 996 }, bounds: [{ metric: 'roc_auc', kind: 'min', value: 0.9, passed: false }] });
    expect(Math.abs(evaluation.metrics.roc_auc! - expected.metrics.roc_auc!)).toBeLessThanOrEqual(1e-9);
    const text = await runCli(['model', 'show', 'models:/churn@champion', '--registry', ws.path('registry')]);
    expect(text.stdout).toMatch(/ {2}evaluated {4}accuracy 0\.803\d*, .*roc_auc 0\.8476, log_loss 0\.4173 on \S+labelled\.csv \(996 rows\), \S+; failed min roc_auc=0\.9/);
    // A record of another model in the version's folder: not this version's evaluation.
    const file = ws.path('registry', 'churn', 'versions', '1', 'evaluation.json');
    await ws.write(path.relative(ws.dir, file), JSON.stringify({ ...evaluation, sha256: '0'.repeat(64), at: '2026-12-01T00:00:00.000Z', by: 'someone' }));
    const forged = await runCli(['model', 'show', 'models:/churn@champion', '--registry', ws.path('registry')]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toContain(`nightscore: REGISTRY_CORRUPT: file://${file}: sha256 is "${'0'.repeat(64)}", expected`);
    const onFile = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--register']);
    expect(onFile.code).toBe(2);
    expect(onFile.stderr).toContain('nightscore: BAD_OPTION: --register records the evaluation on a registered version');
  });

  it('refuses labels that are not the positive class and its other: none of them "1", or more than two classes', async () => {
    const text = readFileSync(DATA, 'utf8').split('\n');
    const relabel = (f: (label: string, i: number) => string) => [text[0], ...text.slice(1).map((l, i) => (l === '' ? l : l.replace(/,([01]?)$/, (_, y: string) => `,${y === '' ? '' : f(y, i)}`)))].join('\n');
    const words = await ws.write('words.csv', relabel((y) => (y === '1' ? 'yes' : 'no')));
    const named = await runCli(['model', 'evaluate', MODEL, words, '--label', 'churned']);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/nightscore: BAD_OPTION: no label in "churned" is the positive class "1" \(the labels are "(no|yes)", "(yes|no)"\)/);
    // The model's own label says 0 and 1: its class must then come from the score.
    const theirs = await runCli(['model', 'evaluate', MODEL, words, '--label', 'churned', '--positive', 'yes', '--score', 'probabilities_1']);
    expect(theirs.code).toBe(2);
    expect(theirs.stderr).toMatch(/nightscore: BAD_OPTION: the model's label predicts "[01]" and "[01]", and the positive class is "yes"/);
    const scored = await runCli(['model', 'evaluate', MODEL, words, '--label', 'churned', '--positive', 'yes', '--score', 'probabilities_1', '--threshold', '0.5', '--json']);
    expect(scored.code, scored.stderr).toBe(0);
    const got = (JSON.parse(scored.stdout) as { metrics: Record<string, number> }).metrics;
    for (const metric of ['accuracy', 'precision', 'recall', 'f1', 'roc_auc', 'log_loss']) expect(Math.abs(got[metric]! - expected.metrics[metric]!), metric).toBeLessThanOrEqual(1e-9);
    const three = await ws.write('three.csv', relabel((y, i) => (i % 100 === 7 ? '2' : y)));
    const many = await runCli(['model', 'evaluate', MODEL, three, '--label', 'churned']);
    expect(many.code).toBe(2);
    expect(many.stderr).toContain('nightscore: BAD_OPTION: the label column "churned" holds more than two classes');
  });

  it('refuses a bound it cannot read, or on a metric the task has not', async () => {
    const unread = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--min', 'auc']);
    expect(unread.code).toBe(2);
    expect(unread.stderr).toContain('nightscore: BAD_OPTION: --min takes metric=value, got "auc"');
    const other = await runCli(['model', 'evaluate', MODEL, DATA, '--label', 'churned', '--max', 'rmse=1']);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('nightscore: BAD_OPTION: --max rmse: a classification model is measured by accuracy, precision, recall, f1, roc_auc, log_loss');
  });
});
