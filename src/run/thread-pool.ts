import { Worker } from 'node:worker_threads';
import { fromErrorRecord, NightscoreError, type ErrorRecord } from '../errors.js';
import { environment } from '../settings.js';
import type { ChunkResult, RowCounts } from './chunk-result.js';
import type { ChunkTask, CloseTask } from './chunk-thread.js';
import type { ChunkSpec } from './spec.js';

interface ThreadMessage {
  id: number;
  progress?: RowCounts;
  result?: ChunkResult;
  error?: ErrorRecord;
}

interface Waiting {
  slot: number;
  resolve: (r: ChunkResult) => void;
  reject: (e: Error) => void;
  onProgress?: (rows: RowCounts) => void;
}

/**
 * Scores chunks on `size` worker threads, for an in-process run and for a queue worker
 * alike. Failures come back as the NightscoreError the thread saw (code, kind, hint), so
 * they read exactly as a single-threaded run's would. A thread that dies (out of memory, a
 * crash) fails only its own chunk and is replaced, so a long-lived worker keeps its size.
 */
export class ChunkThreadPool {
  private readonly threads: Worker[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private closed = false;

  constructor(size: number) {
    for (let slot = 0; slot < size; slot++) this.threads.push(this.spawn(slot));
  }

  get size(): number {
    return this.threads.length;
  }

  /** Adds threads until the pool has `size`. */
  grow(size: number): void {
    while (!this.closed && this.threads.length < size) this.threads.push(this.spawn(this.threads.length));
  }

  /** Scores one chunk on thread `slot`. */
  run(slot: number, spec: ChunkSpec, onProgress?: (rows: RowCounts) => void): Promise<ChunkResult> {
    const id = this.nextId++;
    const task: ChunkTask = { id, spec };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject, onProgress });
      this.threads[slot]!.postMessage(task);
    });
  }

  /**
   * Stops every thread: its chunk stops at the next batch, and the thread exits once its
   * native calls have returned (chunk-thread.ts). A thread that has not exited after
   * `graceMs` is terminated.
   */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The chunks in flight fail now, as when their thread dies: on the queue THREAD_EXITED is
    // retried on another worker, where the thread's own RUN_INTERRUPTED would fail the run.
    this.threads.forEach((_, slot) => this.failSlot(slot, threadExited('was stopped: its process is closing')));
    await Promise.all(this.threads.map((t) => stopThread(t, graceMs)));
  }

  private spawn(slot: number): Worker {
    // A small young generation: scoring keeps its data in reused typed arrays, so what dies
    // young is small, and a thread's default nursery (tens of MB) was most of its footprint
    // (a 1-thread queue worker peaked at 213 MB with the default, 194 MB with this).
    // The thread takes this process's settings as they were read at start (chunk-thread.ts).
    const thread = new Worker(new URL('./chunk-thread.js', import.meta.url), { workerData: environment(), resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    thread.on('message', (m: ThreadMessage) => this.onMessage(m));
    thread.on('error', (err) => this.failSlot(slot, threadExited(`failed: ${err.message}`)));
    thread.on('exit', (code) => {
      this.failSlot(slot, threadExited(`exited (code ${code})`));
      if (!this.closed) this.threads[slot] = this.spawn(slot);
    });
    return thread;
  }

  private onMessage(m: ThreadMessage): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    if (m.progress) return w.onProgress?.(m.progress);
    this.waiting.delete(m.id);
    if (m.result) return w.resolve(m.result);
    w.reject(fromErrorRecord(m.error!));
  }

  private failSlot(slot: number, err: Error): void {
    for (const [id, w] of this.waiting) {
      if (w.slot !== slot) continue;
      this.waiting.delete(id);
      w.reject(err);
    }
  }
}

/** A batch's inference ends in well under this; a thread still busy after it is stuck. */
const CLOSE_GRACE_MS = 10_000;

async function stopThread(thread: Worker, graceMs: number): Promise<void> {
  if (thread.threadId === -1) return;
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  thread.postMessage({ close: true } satisfies CloseTask);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  const how = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (how === 'late') await thread.terminate();
}

/** A chunk whose thread died under it (out of memory, a native crash); the pool replaces the thread. */
function threadExited(how: string): NightscoreError {
  return new NightscoreError('THREAD_EXITED', `the scoring thread of this chunk ${how}`, {
    hint: 'On the queue the chunk is retried on a new thread; run the date again otherwise. If it keeps failing, give the process more memory, or lower chunk.rows and chunk.bytes.',
  });
}

