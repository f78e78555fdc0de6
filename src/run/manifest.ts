import type { ErrorKind } from '../errors.js';

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

/** Deterministic part name: the same chunk of the same run always writes the same key. */
export function partName(index: number, extension: string): string {
  return `part-${String(index).padStart(5, '0')}.${extension}`;
}

/** Matches the part files a run owns (prediction and rejects parts), relative to the output folder. */
export const OWNED_PART_RE = /^(?:_rejects\/)?part-\d{5,}\.[a-z]+$/;
