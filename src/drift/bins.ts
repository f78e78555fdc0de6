/**
 * Bin layouts: where a column's values are counted, fitted once on the reference and then
 * shared by every run, so that a run's counts and a reference's line up bin for bin and add up
 * exactly. Each layout is a plain-JSON value (it lives in the profile); binnerFor turns one into
 * the function a chunk calls per value.
 */

/** Numeric values on the reference's percentiles: counts are `[underflow, bin 0 … bin 99, overflow]`. */
export interface NumericBins {
  kind: 'numeric';
  /** The reference quantiles at 0%, 1%, …, 100% (see fitNumeric); equal neighbours are allowed. */
  edges: number[];
}

/** A numeric column with few distinct reference values (flags, tiers): counts are `[v0 … vk-1, other]`. */
export interface DiscreteBins {
  kind: 'discrete';
  /** Every distinct reference value, ascending. */
  values: number[];
}

/** Strings: counts are `[v0 … vk-1, OTHER, UNSEEN]`. */
export interface CategoricalBins {
  kind: 'categorical';
  /** The most frequent reference values, most frequent first (ties in code-unit order). */
  values: string[];
  /**
   * Every other distinct reference value, in code-unit order, so that a run value can be told to
   * be OTHER (seen in the reference) or UNSEEN; null when the reference had too many to keep,
   * and then every value outside `values` counts as OTHER and unseen is unknown.
   */
  vocabulary: string[] | null;
}

/** Probabilities on fixed bins: counts are `[under 0, bin 0 … bin 19, over 1]`, bin b holding [b/20, (b+1)/20), and 1 in bin 19. */
export interface ProbabilityBins {
  kind: 'probability';
}

export type Bins = NumericBins | DiscreteBins | CategoricalBins | ProbabilityBins;

/** Numeric bins between the 101 percentile edges. */
export const NUMERIC_BINS = 100;
/** A numeric column with at most this many distinct reference values is discrete. */
export const MAX_DISCRETE_VALUES = 20;
/** Categorical values with a bin of their own. */
export const MAX_CATEGORIES = 100;
/** The most other reference values a categorical layout keeps to tell OTHER from UNSEEN. */
export const MAX_VOCABULARY = 10_000;
/** Fixed probability bins, each 1/20 wide. */
export const PROBABILITY_BINS = 20;

/**
 * The layout for a numeric column, fitted on its finite values (NaN and infinities are ignored:
 * they are counted apart). At most MAX_DISCRETE_VALUES distinct values give discrete bins (none
 * at all give discrete bins with no value, where everything is other). Otherwise the edges are
 * the lower quantiles: with the n values sorted ascending as v, the edge at p% is
 * `v[floor(p * (n - 1) / 100)]`, so edge 0 is the minimum, edge 100 the maximum and every edge a
 * reference value. -0 counts as 0.
 */
export function fitNumeric(values: Float64Array | number[]): NumericBins | DiscreteBins {
  const kept: number[] = [];
  for (const x of values) if (Number.isFinite(x)) kept.push(x === 0 ? 0 : x);
  const finite = Float64Array.from(kept).sort();
  const distinct: number[] = [];
  for (let i = 0; i < finite.length && distinct.length <= MAX_DISCRETE_VALUES; i++) {
    if (i === 0 || finite[i] !== finite[i - 1]) distinct.push(finite[i]!);
  }
  if (distinct.length <= MAX_DISCRETE_VALUES) return { kind: 'discrete', values: distinct };
  const last = finite.length - 1;
  const edges: number[] = [];
  for (let p = 0; p <= NUMERIC_BINS; p++) {
    // Integer arithmetic, so no rounding can move an edge by one rank.
    const rank = p * last;
    edges.push(finite[(rank - (rank % NUMERIC_BINS)) / NUMERIC_BINS]!);
  }
  return { kind: 'numeric', edges };
}

/**
 * The layout for a string column from its reference counts: the MAX_CATEGORIES most frequent
 * values (ties in code-unit order), and the rest as vocabulary when there are at most
 * MAX_VOCABULARY of them.
 */
export function fitCategorical(counts: Map<string, number>): CategoricalBins {
  const byFrequency = [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)! || compareCodeUnits(a, b));
  const rest = byFrequency.slice(MAX_CATEGORIES).sort(compareCodeUnits);
  return { kind: 'categorical', values: byFrequency.slice(0, MAX_CATEGORIES), vocabulary: rest.length <= MAX_VOCABULARY ? rest : null };
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How many counts a layout has (its bins, with underflow, overflow, other and unseen). */
export function binCount(bins: Bins): number {
  switch (bins.kind) {
    case 'numeric': return NUMERIC_BINS + 2;
    case 'discrete': return bins.values.length + 1;
    case 'categorical': return bins.values.length + 2;
    case 'probability': return PROBABILITY_BINS + 2;
  }
}

/**
 * The function that gives a value's index in the layout's counts, built once per layout (its
 * lookups are a binary search or a Map). Numeric: below edge 0 is underflow, above edge 100
 * overflow, and otherwise the value is in bin i for the last i with `edges[i] <= x`, capped at
 * 99, so edge 100 itself is in bin 99 and of equal edges only the last bin fills.
 */
export function binnerFor(bins: CategoricalBins): (s: string) => number;
export function binnerFor(bins: NumericBins | DiscreteBins | ProbabilityBins): (x: number) => number;
export function binnerFor(bins: Bins): ((s: string) => number) | ((x: number) => number);
export function binnerFor(bins: Bins): ((s: string) => number) | ((x: number) => number) {
  switch (bins.kind) {
    case 'numeric': return numericBinner(bins.edges);
    case 'discrete': return discreteBinner(bins.values);
    case 'categorical': return categoricalBinner(bins);
    case 'probability': return probabilityBin;
  }
}

function numericBinner(edges: readonly number[]): (x: number) => number {
  const e = Float64Array.from(edges);
  const top = e.length - 1;
  return (x) => {
    if (x < e[0]!) return 0;
    if (x > e[top]!) return top + 1;
    // The last i with e[i] <= x: e[lo] <= x holds throughout, and e[hi] > x or hi is past the end.
    let lo = 0;
    let hi = top + 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (e[mid]! <= x) lo = mid;
      else hi = mid;
    }
    return Math.min(lo, top - 1) + 1;
  };
}


/**
 * A number layout as plain data, so that a loop over a whole column finds each value's bin with
 * binColumn (or binOf), rather than through a closure per value. `search`: the numeric
 * edges; `exact`: the discrete values, strictly ascending; `probability`: fixed twentieths.
 */
export interface NumberLookup {
  mode: 'search' | 'exact' | 'probability';
  table: Float64Array;
  /**
   * `search` on ascending edges: the span from edge 0 to the last edge cut into equal cells,
   * and for each cell's start the last edge at or below it, so that a value's search starts
   * between the edges around its cell. `exact` on whole values close together: for each whole
   * number from the first value, the index of the value it would be. Otherwise empty.
   */
  cells: Int32Array;
  /** The first edge or value, and cells per unit. */
  low: number;
  scale: number;
  /**
   * `search` only: the span from edge 0 to the last edge cut into FINE_CELLS cells, each with
   * the one bin every value in it has, or AMBIGUOUS where an edge lies in or near the cell (those
   * values are searched). Empty when the layout has more bins than a byte holds.
   */
  fine: Uint8Array;
  fineScale: number;
  /** `search` with fine cells: the bin below each edge (binsBelow). */
  below: Uint8Array;
  /** The layout's bins (binCount): binColumn's slots for NaN and the infinities come after them. */
  bins: number;
}

/** binColumn's slots, past the layout's bins, for the values that have no bin. */
export const NAN_SLOT = 0;
export const NEG_INF_SLOT = 1;
export const POS_INF_SLOT = 2;

/** Cells of a numeric lookup: a few per bin, so that most values have one or two edges to compare with. */
const SEARCH_CELLS = 512;
/** The widest span of whole discrete values looked up by cell rather than searched. */
const MAX_EXACT_CELLS = 4096;
/**
 * Fine cells of a numeric lookup: on 100 quantile bins a value lands in a cell an edge touches
 * about once in a hundred, so binColumn finds nearly every value's bin with one load.
 */
const FINE_CELLS = 16384;
const AMBIGUOUS = 255;
/** Fine cells from here up name the one edge in them (fineCells). */
const ONE_EDGE = 128;

/**
 * The lookup of a number layout; null for strings, and for discrete values that are not
 * strictly ascending (a profile not written by fitNumeric), whose first-match-wins Map
 * (binnerFor) a binary search would not reproduce.
 */
export function lookupFor(bins: Bins): NumberLookup | null {
  let lookup = lookups.get(bins);
  if (lookup === undefined) {
    lookup = buildLookup(bins);
    if (lookup) lookup.bins = binCount(bins);
    lookups.set(bins, lookup);
  }
  return lookup;
}

/** Per layout object: a thread keeps a profile for its run's chunks, and builds each lookup once. */
const lookups = new WeakMap<Bins, NumberLookup | null>();

function buildLookup(bins: Bins): NumberLookup | null {
  switch (bins.kind) {
    case 'numeric': return searchLookup(Float64Array.from(bins.edges));
    case 'discrete': return bins.values.every((v, i) => i === 0 || v > bins.values[i - 1]!) ? exactLookup(Float64Array.from(bins.values)) : null;
    case 'probability': return lookupOf('probability', new Float64Array(0));
    case 'categorical': return null;
  }
}

/** Every lookup built alike, so that the loops that read them see one shape (V8 keeps them monomorphic). */
function lookupOf(mode: NumberLookup['mode'], table: Float64Array, cells = new Int32Array(0), low = 0, scale = 0, fine: Uint8Array = new Uint8Array(0), fineScale = 0): NumberLookup {
  const below = mode === 'search' && fine.length > 0 ? binsBelow(table) : new Uint8Array(0);
  return { mode, table, cells, low, scale, fine, fineScale, below, bins: 0 };
}

function searchLookup(edges: Float64Array): NumberLookup {
  const top = edges.length - 1;
  const ascending = edges.every((v, i) => i === 0 || v >= edges[i - 1]!);
  const low = edges[0]!;
  const scale = SEARCH_CELLS / (edges[top]! - low);
  if (top < 1 || !ascending || !(scale > 0 && scale < Infinity)) return lookupOf('search', edges);
  const cells = new Int32Array(SEARCH_CELLS + 1);
  for (let c = 0, i = 0; c <= SEARCH_CELLS; c++) {
    // The cell bounds are rounded; binOf checks the edges around a value before it trusts them.
    const start = low + c / scale;
    while (i < top && edges[i + 1]! <= start) i++;
    cells[c] = i;
  }
  const fineScale = FINE_CELLS / (edges[top]! - low);
  return lookupOf('search', edges, cells, low, scale, fineCells(edges, low, fineScale), fineScale);
}

/**
 * Each fine cell of a numeric lookup: the bin every value in it has (below ONE_EDGE); or, when
 * one edge value lies in or near it (once or repeated), ONE_EDGE plus that edge's last index
 * k, a value's bin then being min(k, top − 1) + 1 from e[k] up and the bin below e[k]
 * otherwise (columns of few decimals have their edges on the very values they hold); or
 * AMBIGUOUS where several edge values are (those values are searched). A cell's bounds are
 * widened by a thousandth of a cell, far more than the rounding of `(x - low) * fineScale` can
 * move a value. Found by walking the edges once alongside the cells. Empty when an edge index
 * does not fit below AMBIGUOUS - ONE_EDGE.
 */
function fineCells(edges: Float64Array, low: number, fineScale: number): Uint8Array {
  const top = edges.length - 1;
  if (top >= AMBIGUOUS - ONE_EDGE) return new Uint8Array(0);
  // Indexes go to FINE_CELLS (the last edge itself) and one past, for safety at the top.
  const fine = new Uint8Array(FINE_CELLS + 2);
  // The last edge at or below a bound, as searchBin finds it; -1 below the first edge.
  let atA = -1;
  let atB = -1;
  for (let c = 0; c < fine.length; c++) {
    const a = low + (c - 0.001) / fineScale;
    const b = low + (c + 1.001) / fineScale;
    while (atA < top && edges[atA + 1]! <= a) atA++;
    while (atB < top && edges[atB + 1]! <= b) atB++;
    if (atB === atA) fine[c] = atA < 0 ? 0 : Math.min(atA, top - 1) + 1;
    else if (edges[atA + 1] === edges[atB]) fine[c] = ONE_EDGE + atB;
    else fine[c] = AMBIGUOUS;
  }
  return fine;
}

/** For each edge index k, the bin of the values just below e[k]: the bin of the last edge below it. */
function binsBelow(edges: Float64Array): Uint8Array {
  const top = edges.length - 1;
  const below = new Uint8Array(edges.length);
  for (let k = 0, first = 0; k <= top; k++) {
    if (k > 0 && edges[k] !== edges[k - 1]) first = k;
    below[k] = first === 0 ? 0 : Math.min(first - 1, top - 1) + 1;
  }
  return below;
}

/**
 * For discrete values, each fine cell's one candidate: the index of the one value in or near
 * it, or `values.length` (other) when none is, or AMBIGUOUS when several are. Bounds are
 * widened as in fineCells.
 */
function candidateCells(values: Float64Array, low: number, fineScale: number): Uint8Array {
  const n = values.length;
  const fine = new Uint8Array(FINE_CELLS + 2);
  // The number of values at or below a bound.
  let atA = 0;
  let atB = 0;
  for (let c = 0; c < fine.length; c++) {
    const a = low + (c - 0.001) / fineScale;
    const b = low + (c + 1.001) / fineScale;
    while (atA < n && values[atA]! <= a) atA++;
    while (atB < n && values[atB]! <= b) atB++;
    fine[c] = atB === atA ? n : atB === atA + 1 ? atA : AMBIGUOUS;
  }
  return fine;
}

function exactLookup(values: Float64Array): NumberLookup {
  const n = values.length;
  const low = values[0]!;
  const whole = n > 0 && values.every((v) => Number.isSafeInteger(v)) && values[n - 1]! - low < MAX_EXACT_CELLS;
  if (!whole) {
    const fineScale = FINE_CELLS / (values[n - 1]! - low);
    if (n < 2 || n >= AMBIGUOUS || !(fineScale > 0 && fineScale < Infinity)) return lookupOf('exact', values);
    return lookupOf('exact', values, undefined, low, 0, candidateCells(values, low, fineScale), fineScale);
  }
  // Gaps point past the values: other.
  const cells = new Int32Array(values[n - 1]! - low + 1).fill(n);
  values.forEach((v, i) => (cells[v - low] = i));
  return lookupOf('exact', values, cells, low, 1);
}

/** The index of `x` (finite, -0 as 0) in the counts of the layout `lookup` was made from: what binnerFor's function gives. */
export function binOf(lookup: NumberLookup, x: number): number {
  if (lookup.mode === 'search') return searchBin(lookup, x);
  if (lookup.mode === 'exact') return exactBin(lookup, x);
  return probabilityBin(x);
}

/**
 * The slot of `values[offset + r * stride]` for each r below `rows`, into `out[r]`: for a
 * finite value its bin (what binOf gives), for NaN and the infinities `lookup.bins` plus
 * NAN_SLOT, NEG_INF_SLOT or POS_INF_SLOT. One loop per kind of layout, its lookup's fields in
 * locals; the values without a bin are told apart only on the branch they already take.
 */
export function binColumn(lookup: NumberLookup, values: Float32Array, stride: number, offset: number, rows: number, out: Int32Array): void {
  const e = lookup.table;
  const cells = lookup.cells;
  const nb = lookup.bins;
  if (lookup.mode === 'search' && lookup.fine.length > 0) {
    const top = e.length - 1;
    const first = e[0]!;
    const last = e[top]!;
    const { low, fine, fineScale, below } = lookup;
    for (let r = 0, i = offset; r < rows; r++, i += stride) {
      const x = values[i]!;
      if (x < first) out[r] = x === -Infinity ? nb + NEG_INF_SLOT : 0;
      else if (x > last) out[r] = x === Infinity ? nb + POS_INF_SLOT : top + 1;
      else if (x === x) {
        // x - low is at least 0 and (x - low) * fineScale at most FINE_CELLS (plus rounding): an int32 within fine.
        const b = fine[((x - low) * fineScale) | 0]!;
        if (b < ONE_EDGE) out[r] = b;
        else if (b !== AMBIGUOUS) {
          const k = b - ONE_EDGE;
          out[r] = x >= e[k]! ? Math.min(k, top - 1) + 1 : below[k]!;
        } else out[r] = searchBin(lookup, x);
      } else out[r] = nb + NAN_SLOT;
    }
  } else if (lookup.mode === 'exact' && cells.length > 0) {
    const { low } = lookup;
    const n = e.length;
    for (let r = 0, i = offset; r < rows; r++, i += stride) {
      const x = values[i]!;
      const d = x - low;
      const j = d >= 0 && d < cells.length ? cells[d | 0]! : n;
      out[r] = j < n && e[j] === x ? j : x - x === 0 ? n : specialSlot(x, nb);
    }
  } else if (lookup.mode === 'exact' && lookup.fine.length > 0) {
    const { low, fine, fineScale } = lookup;
    const n = e.length;
    const last = e[n - 1]!;
    for (let r = 0, i = offset; r < rows; r++, i += stride) {
      const x = values[i]!;
      if (x >= low && x <= last) {
        const j = fine[((x - low) * fineScale) | 0]!;
        out[r] = j === AMBIGUOUS ? exactBin(lookup, x) : j < n && e[j] === x ? j : n;
      } else out[r] = x - x === 0 ? n : specialSlot(x, nb);
    }
  } else if (lookup.mode === 'probability') {
    // Not through binOf, whose branches on the layout's mode would be taken again per value.
    for (let r = 0, i = offset; r < rows; r++, i += stride) {
      const x = values[i]!;
      out[r] = x - x === 0 ? probabilityBin(x) : specialSlot(x, nb);
    }
  } else {
    for (let r = 0, i = offset; r < rows; r++, i += stride) {
      const x = values[i]!;
      out[r] = x - x === 0 ? binOf(lookup, x) : specialSlot(x, nb);
    }
  }
}

/** The slot past `bins` of a value that is not finite. */
function specialSlot(x: number, bins: number): number {
  return bins + (x === Infinity ? POS_INF_SLOT : x === -Infinity ? NEG_INF_SLOT : NAN_SLOT);
}

function searchBin(lookup: NumberLookup, x: number): number {
  const e = lookup.table;
  const top = e.length - 1;
  if (x < e[0]!) return 0;
  if (x > e[top]!) return top + 1;
  // The last i with e[i] <= x: e[lo] <= x holds throughout, and e[hi] > x or hi is past the end.
  let lo = 0;
  let hi = top + 1;
  const cells = lookup.cells;
  if (cells.length > 0) {
    const c = Math.min(Math.floor((x - lookup.low) * lookup.scale), SEARCH_CELLS - 1);
    const a = cells[c]!;
    const b = cells[c + 1]! + 1;
    // On ascending edges the answer is then the same, found in fewer steps.
    if (e[a]! <= x && (b > top || e[b]! > x)) {
      lo = a;
      hi = b;
    }
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (e[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return Math.min(lo, top - 1) + 1;
}

function exactBin(lookup: NumberLookup, x: number): number {
  const e = lookup.table;
  const cells = lookup.cells;
  if (cells.length > 0) {
    // A value equal to one of them is a whole number, its distance from the first exact; any
    // other lands on a cell whose value differs from it.
    const d = x - lookup.low;
    if (!(d >= 0 && d < cells.length)) return e.length;
    const i = cells[d | 0]!;
    return i < e.length && e[i] === x ? i : e.length;
  }
  let lo = 0;
  let hi = e.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (e[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < e.length && e[lo] === x ? lo : e.length;
}

function discreteBinner(values: readonly number[]): (x: number) => number {
  const index = new Map(values.map((v, i) => [v, i]));
  const other = values.length;
  return (x) => index.get(x) ?? other;
}

function categoricalBinner(bins: CategoricalBins): (s: string) => number {
  const other = bins.values.length;
  const index = new Map<string, number>(bins.values.map((v, i) => [v, i]));
  for (const v of bins.vocabulary ?? []) index.set(v, other);
  const outside = bins.vocabulary === null ? other : other + 1;
  return (s) => index.get(s) ?? outside;
}

/** A probability's bin: below 0, each 0.05 of [0, 1], above 1. */
function probabilityBin(x: number): number {
  if (x < 0) return 0;
  if (x > 1) return PROBABILITY_BINS + 1;
  // The bin is what flooring x * 20 in doubles says, so every reader of the layout agrees on it.
  return Math.min(Math.floor(x * PROBABILITY_BINS), PROBABILITY_BINS - 1) + 1;
}
