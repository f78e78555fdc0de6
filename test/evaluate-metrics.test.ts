import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { binaryMetrics, regressionMetrics, rocAuc } from '../src/evaluate/metrics.js';

/**
 * The metrics of `model evaluate` equal scikit-learn's on the same predictions, to 1e-9:
 * test/fixtures/metrics/cases.json holds labelled predictions and what scikit-learn computed on
 * them (test/fixtures/metrics/make.py wrote it).
 */
interface Fixture {
  scikit_learn: string;
  cases: Array<
    | { name: string; kind: 'binary'; labels: number[]; scores: number[]; predicted: number[]; expected: Record<string, number> }
    | { name: string; kind: 'regression'; truth: number[]; predicted: number[]; expected: Record<string, number> }
  >;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/metrics/cases.json', import.meta.url), 'utf8')) as Fixture;

describe(`model evaluate's metrics, against scikit-learn ${fixture.scikit_learn}`, () => {
  for (const c of fixture.cases) {
    it(c.name, () => {
      const got: Record<string, number | null> =
        c.kind === 'binary'
          ? { ...binaryMetrics(Uint8Array.from(c.labels), Float64Array.from(c.scores), Uint8Array.from(c.predicted)) }
          : { ...regressionMetrics(Float64Array.from(c.truth), Float64Array.from(c.predicted)) };
      for (const [metric, want] of Object.entries(c.expected)) {
        expect(Math.abs((got[metric] as number) - want), `${metric}: ${got[metric]} against ${want}`).toBeLessThanOrEqual(1e-9);
      }
    });
  }

  it('says the ROC area is undefined when the labels hold one class, and precision 0 when nothing is predicted positive', () => {
    expect(rocAuc(Uint8Array.of(1, 1, 1), Float64Array.of(0.2, 0.5, 0.9))).toBeNull();
    const m = binaryMetrics(Uint8Array.of(1, 0, 1), Float64Array.of(0.2, 0.1, 0.4), Uint8Array.of(0, 0, 0));
    expect(m).toMatchObject({ precision: 0, recall: 0, f1: 0, accuracy: 1 / 3, roc_auc: 1 });
  });
});
