import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Golden rows (docs/registry.md, "Golden rows"): input rows with the training library's own predictions
 * beside them, scored and compared, so a converter's silent mistake is caught before a
 * version is registered. The "library" here is the logistic regression computed in float64,
 * as scikit-learn computes it; the ONNX model computes it in float32.
 */

const WEIGHTS = [0.8, -1.3, 0.25];
const BIAS = -0.1;
const FEATURES = ['tenure', 'charges', 'calls'];

/** What scikit-learn's predict_proba gives: float64. */
function library(x: number[]): { p1: number; label: number } {
  const z = x.reduce((s, v, i) => s + v * WEIGHTS[i]!, BIAS);
  const p1 = 1 / (1 + Math.exp(-z));
  return { p1, label: p1 > 0.5 ? 1 : 0 };
}

const ROWS = Array.from({ length: 200 }, (_, i) => [((i * 7) % 23) / 5, ((i * 13) % 17) / 4 - 2, (i % 5) - 2]);

/** golden.csv as pandas writes it; `skew` changes the expected probability of some rows. */
function golden(skew: Record<number, number> = {}): string {
  const lines = ROWS.map((x, i) => {
    const { p1, label } = library(x);
    const p = p1 + (skew[i] ?? 0);
    return [...x, label, 1 - p, p].join(',');
  });
  return `${[...FEATURES, 'expected_label', 'expected_probabilities_0', 'expected_probabilities_1'].join(',')}\n${lines.join('\n')}\n`;
}

let ws: Workspace;
let env: Record<string, string>;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('model.onnx', { weights: WEIGHTS, bias: BIAS, featureNames: FEATURES });
  await ws.write('golden.csv', golden());
  // Rows 10 (line 12) and 150 (line 152) are off: 150 by far more.
  await ws.write('off.csv', golden({ 10: 0.002, 150: -0.3 }));
  env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry'), NIGHTSCORE_USER: 'ana' };
});
afterAll(async () => ws?.remove());

const cli = (...args: string[]) => runCli(['model', ...args], { env, cwd: ws.dir });

describe('nightscore model check', () => {
  it('passes a model that predicts what the library does, within the tolerance', async () => {
    const res = await cli('check', 'model.onnx', 'golden.csv');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^model\.onnx: 200 golden rows of golden\.csv match within tolerance 0\.00001 \(label, probabilities_0, probabilities_1; largest difference [\d.e-]+\)\n$/);
    const json = JSON.parse((await cli('check', 'model.onnx', 'golden.csv', '--json')).stdout);
    expect(json).toMatchObject({ passed: true, rows: 200, failed: 0, tolerance: 1e-5, columns: ['label', 'probabilities_0', 'probabilities_1'], worst: [] });
    // float32 against float64: close, not equal.
    expect(json.max_abs_diff).toBeGreaterThan(0);
    expect(json.max_abs_diff).toBeLessThan(1e-6);
  });

  it('refuses one that differs beyond it, naming the worst rows first by line, column, expected and got', async () => {
    const res = await cli('check', 'model.onnx', 'off.csv');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('nightscore: MODEL_CHECK_FAILED: model.onnx disagrees with off.csv on 2 of 200 rows beyond the tolerance 0.00001 (|got − expected| ≤ 0.00001 × (1 + |expected|)); worst: line 152 probabilities_');
    const worst = /^nightscore: MODEL_CHECK_FAILED: .*worst: (.*)$/m.exec(res.stderr)![1]!;
    const [first, second] = worst.split('; ');
    expect(first).toMatch(/^line 152 probabilities_[01]: expected [\d.]+, got [\d.]+ \(off by 0\.300\)$/);
    expect(second).toMatch(/^line 12 probabilities_[01]: expected [\d.]+, got [\d.]+ \(off by 0\.00200\)$/);
    // A looser tolerance lets the small one pass and still refuses the large one.
    const loose = await cli('check', 'model.onnx', 'off.csv', '--tolerance', '0.01');
    expect(loose.code).toBe(1);
    expect(loose.stderr).toContain('on 1 of 200 rows');
  });

  it("with --job, reads the rows as the job's binding does: its output.columns names the expected_ columns", async () => {
    const job = await ws.job('job.yaml', {
      name: 'churn',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: 'model.onnx', features: FEATURES },
      output: { uri: 'out/dt={date}/', format: 'csv', columns: { probabilities: ['p_stay', 'p_churn'] } },
    });
    const text = golden().replace('expected_label,expected_probabilities_0,expected_probabilities_1', 'ignored,expected_p_stay,expected_p_churn');
    await ws.write('renamed.csv', text);
    const res = await cli('check', 'model.onnx', 'renamed.csv', '--job', job);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('200 golden rows of renamed.csv match within tolerance 0.00001 (p_stay, p_churn;');
  });

  it('says what is wrong with a file it cannot compare (GOLDEN_INVALID, exit 2)', async () => {
    await ws.write('no-expected.csv', 'tenure,charges,calls\n1,2,3\n');
    const none = await cli('check', 'model.onnx', 'no-expected.csv');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('GOLDEN_INVALID: no-expected.csv: no column is named expected_<output column>');
    expect(none.stderr).toContain('expected_label, expected_probabilities_0, expected_probabilities_1');
    await ws.write('unknown.csv', 'tenure,charges,calls,expected_score\n1,2,3,0.5\n');
    expect((await cli('check', 'model.onnx', 'unknown.csv')).stderr).toContain('column "expected_score" names no output column of the model');
    await ws.write('text.csv', 'tenure,charges,calls,expected_label\n1,2,3,0\n1,2,3,yes\n');
    expect((await cli('check', 'model.onnx', 'text.csv')).stderr).toContain('line 3: expected_label is "yes", not a number');
  });
});

describe('nightscore model register --check', () => {
  it('registers nothing, not even a version number, when the model disagrees', async () => {
    const res = await cli('register', 'churn', 'model.onnx', '--check', 'off.csv', '--alias', 'champion');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MODEL_CHECK_FAILED');
    expect(existsSync(ws.path('registry', 'churn'))).toBe(false);
    expect((await cli('list')).stdout).toBe(`no models in ${ws.path('registry')}\n`);
  });

  it('records the check on the version when it agrees, and model check takes the registered version', async () => {
    const res = await cli('register', 'churn', 'model.onnx', '--check', 'golden.csv', '--tolerance', '1e-6');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('registered models:/churn/1');
    expect(res.stdout).toContain('200 golden rows of golden.csv match within tolerance 0.000001');
    const record = JSON.parse(await ws.read('registry/churn/versions/1/version.json'));
    expect(record.checks).toEqual([
      {
        kind: 'golden',
        file: 'golden.csv',
        sha256: createHash('sha256').update(await readFile(ws.path('golden.csv'))).digest('hex'),
        rows: 200,
        tolerance: 1e-6,
        columns: ['label', 'probabilities_0', 'probabilities_1'],
        max_abs_diff: expect.any(Number),
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    expect((await cli('show', 'churn/1')).stdout).toContain('  checked      200 golden rows of golden.csv match within tolerance 0.000001');
    const check = await cli('check', 'models:/churn/1', 'off.csv');
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('MODEL_CHECK_FAILED: models:/churn/1 disagrees with off.csv on 2 of 200 rows');
  });

  it('takes --tolerance and --job only with --check', async () => {
    const res = await cli('register', 'other', 'model.onnx', '--tolerance', '1e-3');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('BAD_OPTION: --tolerance goes with --check <golden.csv>');
  });
});
