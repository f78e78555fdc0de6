import type { ErrorKind } from '../errors.js';
import type { Location } from '../storage/open.js';

/** The run record every run writes as `_manifest.json`: the contract downstream readers and `status` rely on. */
export type RunStatus = 'running' | 'succeeded' | 'failed';

export interface RowCounts {
  read: number;
  scored: number;
  rejected: number;
}

export interface RunManifest {
  job: string;
  date: string;
  status: RunStatus;
  /** Unique per attempt: tells two attempts at the same date apart. */
  attempt: string;
  model: { path: string; sha256: string; features: string[]; outputs: Record<string, string[]> };
  input: { uri: string; format: string };
  output: { uri: string; format: string };
  /** Chunks the run was planned into: one part each. */
  chunks: number;
  rows: RowCounts;
  inputs: Array<{ uri: string; bytes: number; rows: number }>;
  parts: Array<{ uri: string; rows: number }>;
  rejects: Array<{ uri: string; rows: number }>;
  limits: { max_reject_rate: number; min_rows: number };
  error: { code: string; kind: ErrorKind; message: string; hint?: string } | null;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  nightscore: { version: string; host: string; pid: number };
}

/** Names of the files in a run's output folder. */
export const OUTPUT_FILES = {
  manifest: '_manifest.json',
  success: '_SUCCESS',
  rejectsDir: '_rejects',
} as const;

/** The keys chunk `index` writes in an output folder: deterministic, so a retried chunk overwrites its own. */
export function chunkFiles(out: Location, index: number, format = 'csv'): { part: string; stagedRejects: string; rejects: string } {
  const n = String(index).padStart(5, '0');
  const rejectsDir = out.storage.join(out.key, OUTPUT_FILES.rejectsDir);
  return {
    part: out.storage.join(out.key, `part-${n}.${format}`),
    stagedRejects: out.storage.join(rejectsDir, `.staged-${n}.csv`),
    rejects: out.storage.join(rejectsDir, `part-${n}.csv`),
  };
}

/**
 * Matches, relative to the output folder, every file a run owns and may remove: prediction
 * and rejects parts, staged rejects, and the temporary files of writers that died.
 */
export const OWNED_FILE_RE = /^(?:_rejects\/)?(?:part-\d{5,}\.[a-z]+|\.staged-\d{5,}\.csv|\.[^/]+\.\d+-[a-z0-9]+\.tmp)$/;
