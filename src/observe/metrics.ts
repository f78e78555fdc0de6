import { monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The worker's Prometheus metrics; `queueDepth` is filled on each scrape. */
export interface WorkerMetrics {
  registry: Registry;
  rowsRead: Counter<'job'>;
  rowsScored: Counter<'job'>;
  rowsRejected: Counter<'job'>;
  chunkSeconds: Histogram<'job'>;
  chunksInFlight: Gauge;
  failures: Counter<'job' | 'reason'>;
  /** Set by the worker that commits a run: alert on freshness with max by (job) across workers. */
  lastSuccess: Gauge<'job'>;
  runSeconds: Gauge<'job'>;
  /**
   * Sets nightscore_drift_psi{job,column} and nightscore_drift_status{job} from the run of `job`
   * this worker last committed, in place of the job's earlier ones.
   */
  recordDrift(job: string, drift: RunDrift): void;
  /**
   * Sets nightscore_shadow_agreement{job,challenger} and nightscore_shadow_rows_compared{job,challenger}
   * from the run of `job` this worker last committed, in place of the job's earlier ones.
   */
  recordShadow(job: string, challengers: readonly RunChallenger[]): void;
  /** Longest event-loop stall of the main thread since start: the thread that renews locks. */
  eventLoopDelayMax(): number;
  stop(): void;
}

/** What /metrics exports of a committed run's drift: its overall status and the PSI of its columns. */
export interface RunDrift {
  status: 'ok' | 'warn' | 'drift' | 'inconclusive';
  psi: Array<{ column: string; psi: number }>;
}

/** What /metrics exports of a committed run's challenger. */
export interface RunChallenger {
  name: string;
  agreement: number | null;
  rows_compared: number;
}

/** A job names at most this many challengers (its shadow list): the bound of the challenger label per job. */
export const MAX_SHADOW_CHALLENGERS = 8;

/**
 * Label cardinality is bounded: the columns with the highest PSI of each job's last run
 * (wide tables have thousands of columns), and the jobs this worker most recently committed
 * (a worker may serve hundreds). Documented in docs/operations.md, "The queue: schedules, backfills, workers".
 */
export const MAX_DRIFT_COLUMNS = 20;
export const MAX_DRIFT_JOBS = 50;
/** nightscore_drift_status's value per status: one series per job, ordered by how much it asks of someone. */
export const DRIFT_STATUS_VALUE = { ok: 0, warn: 1, drift: 2, inconclusive: 3 } as const;

export function createMetrics(queueDepth: () => Promise<Array<{ queue: string; state: string; count: number }>>): WorkerMetrics {
  const registry = new Registry();
  // Node's own names already start with process_ or nodejs_: nightscore_process_cpu_seconds_total.
  collectDefaultMetrics({ register: registry, prefix: 'nightscore_' });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['job'] as const, registers: [registry] });
  // Drawn from on each scrape: a job's columns of an earlier run, or a job forgotten, leave no stale series.
  const drifts = new Map<string, RunDrift>();
  const shadows = new Map<string, readonly RunChallenger[]>();
  const metrics: WorkerMetrics = {
    registry,
    rowsRead: counter('nightscore_rows_read_total', 'Input rows read by chunks this worker scored'),
    rowsScored: counter('nightscore_rows_scored_total', 'Rows scored into prediction parts'),
    rowsRejected: counter('nightscore_rows_rejected_total', 'Rows written to rejects files'),
    chunkSeconds: new Histogram({
      name: 'nightscore_chunk_duration_seconds',
      help: 'Wall time to score one chunk',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      labelNames: ['job'] as const,
      registers: [registry],
    }),
    chunksInFlight: new Gauge({ name: 'nightscore_chunks_in_flight', help: 'Chunks being scored now', registers: [registry] }),
    failures: new Counter({ name: 'nightscore_failures_total', help: 'Failed chunk and run attempts by job and error code', labelNames: ['job', 'reason'] as const, registers: [registry] }),
    lastSuccess: new Gauge({ name: 'nightscore_last_success_timestamp_seconds', help: 'When this worker last committed a successful run of the job (Unix time)', labelNames: ['job'] as const, registers: [registry] }),
    runSeconds: new Gauge({ name: 'nightscore_run_duration_seconds', help: 'Wall time of the last run of the job this worker committed, plan to _SUCCESS', labelNames: ['job'] as const, registers: [registry] }),
    recordDrift: (job, drift) => remember(drifts, job, { status: drift.status, psi: drift.psi.slice(0, MAX_DRIFT_COLUMNS) }),
    recordShadow: (job, challengers) => remember(shadows, job, challengers.slice(0, MAX_SHADOW_CHALLENGERS)),
    eventLoopDelayMax: () => loop.max / 1e9,
    stop: () => loop.disable(),
  };
  new Gauge({
    name: 'nightscore_drift_psi',
    help: `PSI of a column against the reference profile, in the last run of the job this worker committed (the ${MAX_DRIFT_COLUMNS} highest per job)`,
    labelNames: ['job', 'column'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [job, d] of drifts) for (const { column, psi } of d.psi) this.set({ job, column }, psi);
    },
  });
  new Gauge({
    name: 'nightscore_drift_status',
    help: 'Overall drift status of the last run of the job this worker committed: 0 ok, 1 warn, 2 drift, 3 inconclusive',
    labelNames: ['job'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [job, d] of drifts) this.set({ job }, DRIFT_STATUS_VALUE[d.status]);
    },
  });
  new Gauge({
    name: 'nightscore_shadow_agreement',
    help: 'Share of compared rows on which the challenger agrees with the model, in the last run of the job this worker committed (absent when it compared none)',
    labelNames: ['job', 'challenger'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [job, list] of shadows) for (const c of list) if (c.agreement !== null) this.set({ job, challenger: c.name }, c.agreement);
    },
  });
  new Gauge({
    name: 'nightscore_shadow_rows_compared',
    help: 'Rows the challenger and the model both scored, in the last run of the job this worker committed',
    labelNames: ['job', 'challenger'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [job, list] of shadows) for (const c of list) this.set({ job, challenger: c.name }, c.rows_compared);
    },
  });
  new Gauge({
    name: 'nightscore_event_loop_delay_max_seconds',
    help: 'Longest event-loop delay of the main thread since start (lock renewal runs there)',
    registers: [registry],
    collect() {
      this.set(metrics.eventLoopDelayMax());
    },
  });
  new Gauge({
    name: 'nightscore_event_loop_delay_p99_seconds',
    help: 'p99 event-loop delay of the main thread since start',
    registers: [registry],
    collect() {
      this.set(loop.percentile(99) / 1e9);
    },
  });
  new Gauge({
    name: 'nightscore_queue_jobs',
    help: 'Jobs in the queue by state (for autoscaling on queue depth)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { queue, state, count } of await queueDepth().catch(() => [])) this.set({ queue, state }, count);
    },
  });
  return metrics;
}

/**
 * A job's last committed value, in place of its earlier one, for the MAX_DRIFT_JOBS jobs last
 * recorded: re-inserted, so the map's order is the jobs' recency and the first the one to forget.
 */
function remember<T>(map: Map<string, T>, job: string, value: T): void {
  map.delete(job);
  map.set(job, value);
  for (const old of map.keys()) {
    if (map.size <= MAX_DRIFT_JOBS) break;
    map.delete(old);
  }
}
