/**
 * A model's quality on labelled data (nightscore model evaluate): the metrics scikit-learn
 * reports, defined as scikit-learn defines them, so a team's notebook and its CI gate agree.
 * Every sum is exact (exact-sum.ts) and rounded once, so a metric does not depend on the order
 * rows were read in; scikit-learn's own sums (numpy's pairwise summation) differ from these by
 * a few units in the last place, far below the 1e-9 the tests hold them to.
 */
import { ExactSum, sumValue } from '../drift/exact-sum.js';

export interface BinaryMetrics {
  rows: number;
  /** Rows whose label is the positive class. */
  positives: number;
  accuracy: number;
  /** 0 when nothing was predicted positive, as scikit-learn's zero_division default gives. */
  precision: number;
  /** 0 when no row is positive. */
  recall: number;
  f1: number;
  /** null when the labels hold one class only: the area is then undefined (scikit-learn raises). */
  roc_auc: number | null;
  log_loss: number;
}

export interface RegressionMetrics {
  rows: number;
  rmse: number;
  mae: number;
  r2: number;
}

/** float64's machine epsilon: scikit-learn clips probabilities to [eps, 1 − eps] of their dtype, and these are doubles. */
const EPS = 2 ** -52;

/**
 * Binary classification metrics. `labels[i]` is 1 for the positive class, `scores[i]` the
 * model's probability of it, and `predicted[i]` the class the model predicted (1 or 0).
 */
export function binaryMetrics(labels: Uint8Array, scores: Float64Array, predicted: Uint8Array): BinaryMetrics {
  const rows = labels.length;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  const loss = new ExactSum();
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    const yhat = predicted[i]!;
    if (y === 1 && yhat === 1) tp++;
    else if (y === 0 && yhat === 1) fp++;
    else if (y === 1) fn++;
    else tn++;
    // As scikit-learn turns one column of probabilities into two: [1 − p, p], then clips both.
    const p = scores[i]!;
    const chosen = y === 1 ? p : 1 - p;
    loss.add(-Math.log(Math.min(Math.max(chosen, EPS), 1 - EPS)));
  }
  const positives = tp + fn;
  return {
    rows,
    positives,
    accuracy: (tp + tn) / rows,
    precision: tp + fp === 0 ? 0 : tp / (tp + fp),
    recall: positives === 0 ? 0 : tp / positives,
    // scikit-learn's form: 2·TP over (TP + FN) + (TP + FP), one rounding.
    f1: tp === 0 ? 0 : (2 * tp) / (positives + tp + fp),
    roc_auc: rocAuc(labels, scores),
    log_loss: sumValue(loss.partials) / rows,
  };
}

/**
 * The area under the ROC curve as the probability that a random positive scores above a random
 * negative, ties counting one half (Mann–Whitney): the area scikit-learn's trapezoids enclose,
 * computed from whole counts and divided once.
 */
export function rocAuc(labels: Uint8Array, scores: Float64Array): number | null {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let negatives = 0;
  // Twice the count of (negative below positive) pairs plus tied pairs: a whole number.
  let twiceWins = 0;
  let negativesBelow = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    let tiedPositives = 0;
    let tiedNegatives = 0;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) {
      if (labels[order[end]!] === 1) tiedPositives++;
      else tiedNegatives++;
      end++;
    }
    twiceWins += tiedPositives * (2 * negativesBelow + tiedNegatives);
    negativesBelow += tiedNegatives;
    positives += tiedPositives;
    negatives += tiedNegatives;
    start = end;
  }
  if (positives === 0 || negatives === 0) return null;
  return twiceWins / (2 * positives * negatives);
}

/** Regression metrics of `predicted` against `truth`, as scikit-learn's mean_squared_error (root), mean_absolute_error and r2_score. */
export function regressionMetrics(truth: Float64Array, predicted: Float64Array): RegressionMetrics {
  const rows = truth.length;
  const squares = new ExactSum();
  const absolute = new ExactSum();
  const sum = new ExactSum();
  for (let i = 0; i < rows; i++) {
    const d = truth[i]! - predicted[i]!;
    squares.add(d * d);
    absolute.add(Math.abs(d));
    sum.add(truth[i]!);
  }
  const mean = sumValue(sum.partials) / rows;
  const total = new ExactSum();
  for (let i = 0; i < rows; i++) {
    const d = truth[i]! - mean;
    total.add(d * d);
  }
  const residual = sumValue(squares.partials);
  const spread = sumValue(total.partials);
  return {
    rows,
    rmse: Math.sqrt(residual / rows),
    mae: sumValue(absolute.partials) / rows,
    // scikit-learn's force_finite: a constant truth gives 1 when predicted exactly, else 0.
    r2: spread === 0 ? (residual === 0 ? 1 : 0) : 1 - residual / spread,
  };
}
