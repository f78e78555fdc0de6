import { CHURN_FEATURES } from '../../src/demo/churn-data.js';

/** A clean CSV with the example job's columns: `n` rows, deterministic per seed. */
export function csvOf(n: number, seed: number): string {
  const lines = [['customer_id', ...CHURN_FEATURES].join(',')];
  for (let i = 0; i < n; i++) lines.push([`K${seed}-${i}`, ...CHURN_FEATURES.map((_, j) => ((seed + i * 31 + j * 17) % 50) / 5)].join(','));
  return `${lines.join('\n')}\n`;
}
