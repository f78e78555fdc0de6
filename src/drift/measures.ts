/**
 * The distances between two distributions given as counts on the same bins, and the noise
 * floors that say how large a distance chance alone makes at a given number of values. Pure
 * functions of integer counts: the same counts give the same doubles on every machine.
 */

/** The share an empty bin is given in PSI, in both distributions alike, so that its logarithm is finite. */
export const PSI_EPSILON = 1e-4;

/** Decile d of a numeric layout: percentile bins 10d … 10d+9, with underflow in decile 0 and overflow in decile 9. */
export function rollUpDeciles(bins: readonly number[]): number[] {
  const deciles = new Array<number>(10).fill(0);
  const last = bins.length - 1;
  bins.forEach((count, i) => {
    const percentile = Math.min(Math.max(i - 1, 0), last - 2);
    deciles[Math.floor(percentile / 10)]! += count;
  });
  return deciles;
}

/**
 * Population stability index `Σ (q − p) ln(q / p)` over the bins, p the reference's shares and q
 * the run's; a share of 0 becomes PSI_EPSILON (in either distribution, with no renormalising),
 * so a bin empty on both sides adds 0. Both need at least one value.
 */
export function psi(ref: readonly number[], run: readonly number[]): number {
  const nRef = total(ref);
  const nRun = total(run);
  let sum = 0;
  for (let i = 0; i < ref.length; i++) {
    const p = ref[i]! / nRef || PSI_EPSILON;
    const q = run[i]! / nRun || PSI_EPSILON;
    sum += (q - p) * Math.log(q / p);
  }
  return sum;
}

/**
 * Jensen-Shannon distance, base 2: the square root of `½ KL(p‖m) + ½ KL(q‖m)` with m the mean
 * of the two distributions, between 0 and 1. Empty bins add nothing (no epsilon is needed).
 */
export function jsDistance(ref: readonly number[], run: readonly number[]): number {
  const nRef = total(ref);
  const nRun = total(run);
  let divergence = 0;
  for (let i = 0; i < ref.length; i++) {
    const p = ref[i]! / nRef;
    const q = run[i]! / nRun;
    const m = (p + q) / 2;
    if (p > 0) divergence += (p / 2) * Math.log2(p / m);
    if (q > 0) divergence += (q / 2) * Math.log2(q / m);
  }
  // Rounding can leave a hair below 0 where the distributions agree.
  return Math.sqrt(Math.max(0, divergence));
}

/** Binned Kolmogorov-Smirnov D: the largest difference between the two cumulative shares, bin by bin in layout order. */
export function ksDistance(ref: readonly number[], run: readonly number[]): number {
  const nRef = total(ref);
  const nRun = total(run);
  let cumRef = 0;
  let cumRun = 0;
  let d = 0;
  for (let i = 0; i < ref.length; i++) {
    cumRef += ref[i]!;
    cumRun += run[i]!;
    d = Math.max(d, Math.abs(cumRef / nRef - cumRun / nRun));
  }
  return d;
}

/**
 * The Wasserstein-1 distance between the two distributions with each bin's values placed at
 * `positions[i]` (ascending): `Σ |F_ref − F_run| × (positions[i+1] − positions[i])`, F the
 * cumulative share through bin i. For percentile bins placed at their lower edges this is the
 * gap of the cumulative shares at each bin's upper edge times the bin's width.
 */
export function wasserstein(ref: readonly number[], run: readonly number[], positions: readonly number[]): number {
  const nRef = total(ref);
  const nRun = total(run);
  let cumRef = 0;
  let cumRun = 0;
  let w = 0;
  for (let i = 0; i < ref.length - 1; i++) {
    cumRef += ref[i]!;
    cumRun += run[i]!;
    w += Math.abs(cumRef / nRef - cumRun / nRun) * (positions[i + 1]! - positions[i]!);
  }
  return w;
}

/** The bins holding a value on either side: the degrees of freedom of the noise, plus one. */
export function occupiedBins(ref: readonly number[], run: readonly number[]): number {
  let b = 0;
  for (let i = 0; i < ref.length; i++) if (ref[i]! > 0 || run[i]! > 0) b++;
  return b;
}

/**
 * The PSI chance gives two samples of one distribution, on `bins` occupied bins: for small
 * differences d = q − p, PSI ≈ Σ d² / p, and scaled by 1 / (1/n_ref + 1/n_run) that is a
 * chi-square with `bins − 1` degrees of freedom, whose mean is `bins − 1`.
 */
export function psiFloor(bins: number, nRef: number, nRun: number): number {
  return Math.max(0, bins - 1) * (1 / nRef + 1 / nRun);
}

/**
 * The JS distance chance gives, matching psiFloor: with m = p + d/2, KL(p‖m) ≈ Σ (d/2)² / (2p) =
 * Σ d² / (8p) nats, and KL(q‖m) the same to that order, so the divergence is about PSI / 8
 * nats, PSI / (8 ln 2) bits; the distance is its square root.
 */
export function jsFloor(bins: number, nRef: number, nRun: number): number {
  return Math.sqrt(psiFloor(bins, nRef, nRun) / (8 * Math.LN2));
}

/**
 * The standard error of a difference of two shares under no change (pooled share), the floor
 * of the missing share's change: `k` of `n` values in each sample.
 */
export function shareFloor(kRef: number, nRef: number, kRun: number, nRun: number): number {
  const p = (kRef + kRun) / (nRef + nRun);
  return Math.sqrt(p * (1 - p) * (1 / nRef + 1 / nRun));
}

function total(counts: readonly number[]): number {
  let n = 0;
  for (const c of counts) n += c;
  return n;
}
