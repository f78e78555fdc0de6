/**
 * When a column, and a run, counts as drifted: the thresholds a job may set, with defaults
 * taken from common practice for PSI and Jensen-Shannon distance.
 */

/** A statistic's two thresholds: at `warn` a column warns, at `drift` it drifts. */
export interface Thresholds {
  warn: number;
  drift: number;
}

/** The thresholds that apply to one column. */
export interface ColumnPolicy {
  /** On PSI, the primary statistic of numeric and discrete columns. */
  psi: Thresholds;
  /** On the Jensen-Shannon distance (base 2), primary for categorical columns, labels and probabilities. */
  js: Thresholds;
  /** The absolute change in the share of missing (null or NaN) values that makes a column drift. */
  missing_delta: number;
  /** The share of values never seen in the reference that makes a column drift. */
  unseen: number;
}

/** A job's override for one column: any threshold, the others keep the job's. */
export interface ColumnPolicyOverride {
  psi?: Partial<Thresholds>;
  js?: Partial<Thresholds>;
  missing_delta?: number;
  unseen?: number;
}

/** A job's drift policy. */
export interface DriftPolicy extends ColumnPolicy {
  /**
   * `off` measures nothing, `warn` reports, `enforce` fails a run whose overall status is drift
   * (acting on the mode is the run's; the functions here only measure and judge).
   * @defaultValue 'warn'
   */
  mode: 'off' | 'warn' | 'enforce';
  /** The share of feature columns that must drift for the run to drift. */
  max_drifted_share: number;
  /** Overrides by column name. */
  columns: Record<string, ColumnPolicyOverride>;
}

/**
 * The defaults: PSI 0.1 / 0.25 are the thresholds credit scoring has long used for "some" and
 * "major" population shift; for small shifts the JS distance is about sqrt(PSI / (8 ln 2)), so
 * 0.1 / 0.2 sit near that pair; missing share moving by 0.05, or 1% of
 * values never seen, break pipelines before they move a score; and a run drifts when half its
 * features do (or its prediction does), so one noisy feature does not page anyone.
 */
export const DEFAULT_POLICY: DriftPolicy = {
  mode: 'warn',
  psi: { warn: 0.1, drift: 0.25 },
  js: { warn: 0.1, drift: 0.2 },
  missing_delta: 0.05,
  unseen: 0.01,
  max_drifted_share: 0.5,
  columns: {},
};

/** The thresholds for `column`: the policy's, with the column's overrides on top, threshold by threshold. */
export function policyFor(policy: DriftPolicy, column: string): ColumnPolicy {
  const own = Object.hasOwn(policy.columns, column) ? policy.columns[column]! : {};
  return {
    psi: { ...policy.psi, ...own.psi },
    js: { ...policy.js, ...own.js },
    missing_delta: own.missing_delta ?? policy.missing_delta,
    unseen: own.unseen ?? policy.unseen,
  };
}
