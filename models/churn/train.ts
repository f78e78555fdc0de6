/**
 * Trains the example churn model and exports it to ONNX: logistic regression fitted by
 * gradient descent on synthetic customers, standardisation folded into the weights.
 * Run: npm run build:models  (writes model.onnx and MODEL_CARD.md beside this file)
 */
import { writeFileSync } from 'node:fs';
import { CHURN_FEATURES, drawCustomer, rng, type ChurnRow } from '../../src/demo/churn-data.js';
import { logisticModel } from '../../scripts/onnx-builder.js';

const here = new URL('.', import.meta.url);
const draw = (n: number, seed: number): ChurnRow[] => {
  const next = rng(seed);
  return Array.from({ length: n }, (_, i) => drawCustomer(next, i));
};
const train = draw(40_000, 42);
const test = draw(10_000, 43);
const F = CHURN_FEATURES.length;

const mean = new Array<number>(F).fill(0);
const std = new Array<number>(F).fill(0);
for (const r of train) r.features.forEach((v, j) => (mean[j]! += v / train.length));
for (const r of train) r.features.forEach((v, j) => (std[j]! += (v - mean[j]!) ** 2 / train.length));
for (let j = 0; j < F; j++) std[j] = Math.sqrt(std[j]!) || 1;
const X = train.map((r) => r.features.map((v, j) => (v - mean[j]!) / std[j]!));

// Full-batch gradient descent with a little L2; converges in a few hundred steps on standardised data.
const w = new Array<number>(F).fill(0);
let b = 0;
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
for (let step = 0; step < 400; step++) {
  const gw = new Array<number>(F).fill(0);
  let gb = 0;
  X.forEach((x, i) => {
    const err = sigmoid(x.reduce((s, v, j) => s + v * w[j]!, b)) - train[i]!.churned;
    x.forEach((v, j) => (gw[j]! += (err * v) / X.length));
    gb += err / X.length;
  });
  for (let j = 0; j < F; j++) w[j]! -= 0.5 * (gw[j]! + 1e-4 * w[j]!);
  b -= 0.5 * gb;
}
// Fold standardisation in: w·(x-m)/s + b = (w/s)·x + (b - Σ w m / s).
const weights = w.map((wj, j) => wj / std[j]!);
const bias = b - w.reduce((s, wj, j) => s + (wj * mean[j]!) / std[j]!, 0);

const scores = test.map((r) => sigmoid(r.features.reduce((s, v, j) => s + v * weights[j]!, bias)));
const accuracy = scores.filter((p, i) => (p > 0.5 ? 1 : 0) === test[i]!.churned).length / test.length;
const auc = (() => {
  const ranked = scores.map((p, i) => ({ p, y: test[i]!.churned })).sort((a, c) => a.p - c.p);
  let pos = 0;
  let sum = 0;
  ranked.forEach(({ y }, rank) => {
    if (y) {
      pos++;
      sum += rank + 1;
    }
  });
  const neg = ranked.length - pos;
  return (sum - (pos * (pos + 1)) / 2) / (pos * neg);
})();
const churnRate = test.reduce((s, r) => s + r.churned, 0) / test.length;

writeFileSync(
  new URL('model.onnx', here),
  logisticModel({
    weights,
    bias,
    featureNames: [...CHURN_FEATURES],
    metadata: { model_name: 'churn-example', training_rows: String(train.length), holdout_auc: auc.toFixed(4) },
  }),
);
writeFileSync(
  new URL('MODEL_CARD.md', here),
  `# churn-example (model card)

**What it is.** A binary logistic-regression churn classifier, exported to ONNX (opset 17) by
\`models/churn/train.ts\`. It exists to demonstrate nightscore end to end; it was trained on
synthetic customers (\`src/demo/churn-data.ts\`), not on real people.

**Input.** \`input\`: float32 \`[N, ${F}]\`, features in this order (also stored in the model's
\`feature_names\` metadata property, so jobs need not list them):
${CHURN_FEATURES.map((f) => `\`${f}\``).join(', ')}.

**Outputs.** \`label\`: int64 \`[N]\` (1 = predicted to churn, threshold 0.5);
\`probabilities\`: float32 \`[N, 2]\` (stay, churn) — the shape skl2onnx exports with \`zipmap=False\`.

**Training.** ${train.length.toLocaleString('en-US')} synthetic customers (seed 42), standardised features,
400 steps of full-batch gradient descent with L2 1e-4; standardisation folded into the weights.

**Holdout** (${test.length.toLocaleString('en-US')} customers, seed 43): AUC ${auc.toFixed(3)}, accuracy ${accuracy.toFixed(3)},
churn base rate ${churnRate.toFixed(3)}.

**Limits.** Synthetic data only; no fairness or calibration analysis; do not use for decisions.
`,
);
console.log(`model.onnx written: holdout AUC ${auc.toFixed(3)}, accuracy ${accuracy.toFixed(3)}`);
