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
  /** Longest event-loop stall of the main thread since start: the thread that renews locks. */
  eventLoopDelayMax(): number;
  stop(): void;
}

export function createMetrics(queueDepth: () => Promise<Array<{ queue: string; state: string; count: number }>>): WorkerMetrics {
  const registry = new Registry();
  // Node's own names already start with process_ or nodejs_: nightscore_process_cpu_seconds_total.
  collectDefaultMetrics({ register: registry, prefix: 'nightscore_' });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['job'] as const, registers: [registry] });
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
    eventLoopDelayMax: () => loop.max / 1e9,
    stop: () => loop.disable(),
  };
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
