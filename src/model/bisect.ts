/**
 * Scoring a batch the model fails on: the rows it fails on alone are found by halving the
 * batch, and the rest are scored. One out-of-range index among 50,000 rows then costs about
 * 2 × log2(50,000) ≈ 32 extra calls, and a batch that scores costs nothing extra.
 */
import type { Tensor, TensorData } from '../engine/engine.js';
import type { FeatureBatch } from './features.js';

/** A row of a batch the model failed on when given that row alone. */
export interface RowFailure {
  /** The row's index in the batch. */
  row: number;
  /** The engine's message, first line. */
  message: string;
}

/** One inference call over rows [from, to) of a batch: the selected outputs in order, or the error the engine threw. */
export type RunRows = (from: number, to: number) => Promise<Tensor[] | { failed: string }>;

/** Rows [from, to) that scored in one call, and what the call gave. */
interface Piece {
  from: number;
  to: number;
  values: Tensor[];
}

/**
 * Scores rows [0, rows) with `run`, halving any range the model fails on down to single rows.
 * `onFailure` hears of each failing row as it is found, in row order, and may throw to stop
 * (a reject limit certain to be exceeded). A range that fails while both its halves score is
 * the batch's failure, not a row's: `batchFailed` makes the error thrown. Returns the outputs
 * of the rows that scored, in row order, each the concatenation of the calls' outputs (so bit
 * for bit what those calls gave), and the rows that failed.
 */
export async function scoreBisecting(
  rows: number,
  run: RunRows,
  onFailure: (failure: RowFailure) => void,
  batchFailed: (rows: number, message: string) => Error,
): Promise<{ data: TensorData[]; failed: RowFailure[] }> {
  const pieces: Piece[] = [];
  const failed: RowFailure[] = [];
  // Depth first, left half first: failures are found (and reported) in row order. Returns
  // whether a row of the range failed.
  const visit = async (from: number, to: number): Promise<boolean> => {
    const got = await run(from, to);
    if (Array.isArray(got)) {
      pieces.push({ from, to, values: got });
      return false;
    }
    if (to - from === 1) {
      const failure = { row: from, message: got.failed };
      failed.push(failure);
      onFailure(failure);
      return true;
    }
    const mid = from + Math.ceil((to - from) / 2);
    const left = await visit(from, mid);
    const right = await visit(mid, to);
    // A row the model fails on fails every range holding it: rows that score in halves but
    // not together fail as a batch (a graph built for one row, memory), and halving on would
    // score them one call a row, without a word.
    if (!left && !right) throw batchFailed(to - from, got.failed);
    return left || right;
  };
  if (rows > 0) await visit(0, rows);
  const outputs = pieces[0]?.values.length ?? 0;
  const data = Array.from({ length: outputs }, (_, o) => concat(pieces.map((p) => p.values[o]!.data)));
  return { data, failed };
}

/** Arrays of one kind end to end; one array is returned as it is. */
function concat(parts: TensorData[]): TensorData {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as string[][]).flat();
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = new (first.constructor as new (n: number) => Exclude<TensorData, string[]>)(length);
  let at = 0;
  for (const p of parts as Array<Exclude<TensorData, string[]>>) {
    (out as Float32Array).set(p as Float32Array, at);
    at += p.length;
  }
  return out;
}

/** Rows [from, to) of a batch, as a batch of their own (typed columns are views, not copies). */
export function sliceBatch(batch: FeatureBatch, from: number, to: number, floats: number): FeatureBatch {
  return {
    rows: to - from,
    features: batch.features.subarray(from * floats, to * floats),
    columns: batch.columns.map((values) => (values === undefined ? undefined : Array.isArray(values) ? values.slice(from, to) : values.subarray(from, to))),
  };
}
