import type { DriftSummary } from '../drift/report.js';
import type { ShadowSummary } from '../shadow/report.js';
import { NightscoreError, type ErrorRecord } from '../errors.js';
import type { Location } from '../storage/open.js';
import type { ChunkPlan } from './plan.js';
import type { ChunkResult, RowCounts } from './chunk-result.js';
import type { UnwrappedOutput } from '../model/zipmap.js';
import type { CanarySpec, ModelSpec, RunSpec } from './spec.js';

/** A canary run's split, its model and the rows each model published (the part's model_version column says which row). */
export interface CanarySummary extends CanarySpec {
  model: { sha256: string; ref: string | null; version: number | null };
  rows: { champion: number; canary: number };
}

/** The most chunks a run plans into (each a queue job and a part file); what a manifest read back may claim to own. */
export const MAX_CHUNKS = 100_000;

export type RunStatus = 'running' | 'succeeded' | 'failed';

/** The run record every run writes as `_manifest.json`: the contract downstream readers and `status` rely on. */
export interface RunManifest {
  job: string;
  date: string;
  status: RunStatus;
  /** Unique per attempt: tells two attempts at the same date apart. */
  attempt: string;
  /**
   * The model that wrote the parts (the champion of `models`): `ref` as the job named it (a
   * models:/ reference, or the location), and for a registry version its name, version and
   * the alias it went through (else null); `uri` and `path` where its bytes were read.
   */
  model: {
    ref: string;
    name: string | null;
    version: number | null;
    alias: string | null;
    sha256: string;
    uri: string;
    path: string;
    features: string[];
    outputs: Record<string, string[]>;
    /** Outputs scored from the tensor behind a ZipMap, with its class labels in column order (absent in older manifests). */
    unwrapped?: UnwrappedOutput[];
  };
  /** The run spec's models: every file with its sha256 and size, the binding, the outputs and the engine settings. */
  models: ModelSpec[];
  /**
   * A failed run's plan and the results of the chunks that succeeded, which `nightscore
   * retry` keeps when the plan still holds (their parts stay where they are).
   */
  retry?: { spec: RunSpec; chunks: ChunkPlan[]; completed: ChunkResult[] };
  input: { uri: string; format: string };
  output: { uri: string; format: string };
  /** Chunks the run was planned into: one part each. */
  chunks: number;
  rows: RowCounts;
  inputs: Array<{ uri: string; bytes: number; rows: number }>;
  /** Objects under the input prefix that were not read, and why (names starting with _ or . are not listed). */
  skipped: Array<{ uri: string; reason: string }>;
  parts: Array<{ uri: string; rows: number }>;
  rejects: Array<{ uri: string; rows: number }>;
  limits: { max_reject_rate: number; min_rows: number };
  /** The run's drift against its profile, when it measures one: the overall status and the columns that matter (the rest in `_drift.json`). */
  drift?: DriftSummary;
  /** The run's challengers compared with the champion, when the job names any: the figures at a glance (the rest in `_shadow.json`). */
  shadow?: ShadowSummary;
  /** The sticky canary's split and the rows each model published, when the job has a canary. */
  canary?: CanarySummary;
  /** With a price per CPU hour (cost:): each model's inference seconds over the run's chunks and their cost, and the total. */
  cost?: { per_cpu_hour: number; models: Array<{ role: string; seconds: number; cost: number }>; total: number };
  error: ErrorRecord | null;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  nightscore: { version: string; host: string; pid: number };
  /**
   * The part names this folder's attempts have used, as chunk counts per part format: this
   * attempt's and every earlier one's, so that a commit removes exactly what nightscore
   * wrote there (see OutputNames), even a part an earlier attempt was still writing.
   */
  owns: Record<string, number>;
}

/** Names of the files in a run's output folder. */
export const OUTPUT_FILES = {
  manifest: '_manifest.json',
  success: '_SUCCESS',
  rejectsDir: '_rejects',
  /** In a rejects folder of its own (output.rejects_uri): the output folder it belongs to. */
  rejectsOwner: '_OWNER.json',
  /** A run's drift against its profile (drift/report.ts). */
  drift: '_drift.json',
  /** A run's comparison of its challengers with its champion (shadow/report.ts). */
  shadow: '_shadow.json',
} as const;

/** The keys chunk `index` writes in an output folder: deterministic, so a retried chunk overwrites its own. */
export function chunkFiles(out: Location, index: number, format = 'csv'): { part: string; stagedRejects: string } {
  const names = chunkNames(index, format);
  return {
    part: out.storage.join(out.key, names.part),
    stagedRejects: out.storage.join(out.storage.join(out.key, OUTPUT_FILES.rejectsDir), names.stagedRejects),
  };
}

/** Whether the rejects go to a folder of their own (output.rejects_uri), rather than `_rejects/` of the output folder. */
export function rejectsApart(output: { uri: string; rejects_uri: string }): boolean {
  return output.rejects_uri !== `${output.uri}${OUTPUT_FILES.rejectsDir}/`;
}

/** The key of chunk `index`'s rejects file in the rejects folder (`_rejects/` of the output, or output.rejects_uri). */
export function rejectsFile(rejects: Location, index: number): string {
  return rejects.storage.join(rejects.key, chunkNames(index, 'csv').rejects);
}

/** The names nightscore owns in a rejects folder of its own (output.rejects_uri): the rejects files of every chunk index `owns` records, and their temporary siblings. */
export function isOwnedRejects(relative: string, owns: Record<string, number>): boolean {
  const tmp = TMP_RE.exec(relative);
  const name = tmp ? `${tmp[1] ?? ''}${tmp[2]}` : relative;
  const m = /^part-(\d{5,})\.csv$/.exec(name);
  return m !== null && Number(m[1]) < Math.max(0, ...Object.values(owns));
}

/** The names chunk `index` writes: the part in the output folder, the other two in its `_rejects/`. */
function chunkNames(index: number, format: string): { part: string; stagedRejects: string; rejects: string } {
  const n = String(index).padStart(5, '0');
  return { part: `part-${n}.${format}`, stagedRejects: `.staged-${n}.csv`, rejects: `part-${n}.csv` };
}

/**
 * The files nightscore owns in an output folder, relative to it: the markers, the lock, and
 * part-<i>.<format>, _rejects/part-<i>.csv and _rejects/.staged-<i>.csv for every chunk index
 * an attempt recorded in `owns`, and the temporary siblings of any of them (a writer that
 * died). A commit removes only these; anything else in the folder is left as it was.
 */
export class OutputNames {
  private readonly names = new Set<string>();

  constructor(readonly owns: Record<string, number>) {
    for (const [format, chunks] of Object.entries(owns)) {
      for (let i = 0; i < chunks; i++) {
        const names = chunkNames(i, format);
        this.names.add(names.part);
        this.names.add(`${OUTPUT_FILES.rejectsDir}/${names.rejects}`);
        this.names.add(`${OUTPUT_FILES.rejectsDir}/${names.stagedRejects}`);
      }
    }
  }

  /** A part file of this attempt or an earlier one (not a marker): the commit may remove it. */
  isPart(relative: string): boolean {
    if (this.names.has(relative)) return true;
    const tmp = TMP_RE.exec(relative);
    return tmp !== null && (this.names.has(`${tmp[1] ?? ''}${tmp[2]}`) || MARKER_RE.test(tmp[2]!));
  }
}

/** A temporary sibling (storage/file.ts): `<dir/>.<name>.<pid>-<random>.tmp`. */
const TMP_RE = /^((?:[^/]+\/)*)\.([^/]+)\.\d+-[a-z0-9]+\.tmp$/;
const MARKER_RE = /^(?:_manifest\.json|_SUCCESS|_LOCK\.\d{16})$/;

/** Names that look like nightscore's parts: in a folder whose manifests do not own them, nightscore stops rather than guess. */
export const PART_LIKE_RE = /^(?:_rejects\/)?part-\d{5,}\.(?:csv|parquet)$/;

/** The chunk counts per format an earlier manifest owns; manifests older than `owns` by their chunks and parts. */
export function ownsOf(manifest: Partial<RunManifest>, source: string): Record<string, number> {
  // Read back, so checked: a count someone else wrote (10^12, say) must not become a loop over it.
  let owns = ownedCounts(manifest.owns ?? {}, 'owns', source);
  if (manifest.output?.format && manifest.chunks !== undefined) owns = mergeOwns(owns, ownedCounts({ [manifest.output.format]: manifest.chunks }, 'output.format and chunks', source));
  for (const [i, part] of (Array.isArray(manifest.parts) ? manifest.parts : []).entries()) {
    const m = typeof part?.uri === 'string' ? /part-(\d{5,})\.([a-z]+)$/.exec(part.uri) : null;
    if (m) owns = mergeOwns(owns, ownedCounts({ [m[2]!]: Number(m[1]) + 1 }, `parts[${i}].uri`, source));
  }
  return owns;
}

const OWNED_FORMATS = new Set(['csv', 'parquet']);

/** `owns` as a manifest read back states it: formats nightscore writes, each a chunk count no run exceeds; else MANIFEST_INVALID. */
function ownedCounts(value: unknown, at: string, source: string): Record<string, number> {
  const ok = value !== null && typeof value === 'object' && !Array.isArray(value)
    && Object.entries(value).every(([format, n]) => OWNED_FORMATS.has(format) && Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_CHUNKS);
  if (ok) return value as Record<string, number>;
  throw new NightscoreError('MANIFEST_INVALID', `${source}: ${at} is not what nightscore writes: chunk counts of csv or parquet parts, at most ${MAX_CHUNKS} (it says ${JSON.stringify(value).slice(0, 200)}); the run changed nothing in the folder`, {
    source,
    column: at,
    hint: 'Something other than nightscore wrote or damaged the manifest. Move the output folder aside (or remove its _manifest.json after checking which part files are nightscore\'s), then run the date again; find out who else writes to the output folder.',
  });
}

/** Both attempts' names: the larger chunk count of each format. */
export function mergeOwns(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const owns = { ...a };
  for (const [format, chunks] of Object.entries(b)) owns[format] = Math.max(owns[format] ?? 0, chunks);
  return owns;
}
