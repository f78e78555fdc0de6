import { Worker } from 'node:worker_threads';
import { NightscoreError, type ErrorKind } from '../errors.js';
import type { JobDefinition } from '../job/load.js';
import type { RowCounts } from './manifest.js';
import type { ChunkPlan } from './plan.js';
import type { ChunkResult } from './score-chunk.js';
import type { ChunkTask } from './chunk-thread.js';

interface ThreadMessage {
  id: number;
  progress?: RowCounts;
  result?: ChunkResult;
  error?: { code: string; kind: ErrorKind; message: string; hint?: string; source?: string; line?: number; column?: string; retryable: boolean };
}

/**
 * Scores chunks on `size` worker threads. Failures come back as the NightscoreError the
 * thread saw (code, kind, hint), so an in-process run reports them exactly as a
 * single-threaded one would.
 */
export class ChunkThreadPool {
  private readonly threads: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: ChunkResult) => void; reject: (e: Error) => void; onProgress?: (rows: RowCounts) => void }>();
  private nextId = 0;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const thread = new Worker(new URL('./chunk-thread.js', import.meta.url));
      thread.on('message', (m: ThreadMessage) => this.onMessage(m));
      thread.on('error', (err) => this.failAll(err));
      this.threads.push(thread);
    }
  }

  get size(): number {
    return this.threads.length;
  }

  /** Scores one chunk on thread `slot`. */
  run(slot: number, job: JobDefinition, date: string, outputUri: string, chunk: ChunkPlan, onProgress?: (rows: RowCounts) => void): Promise<ChunkResult> {
    const id = this.nextId++;
    const task: ChunkTask = { id, job, date, outputUri, chunk };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onProgress });
      this.threads[slot]!.postMessage(task);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  private onMessage(m: ThreadMessage): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    if (m.progress) return w.onProgress?.(m.progress);
    this.waiting.delete(m.id);
    if (m.result) return w.resolve(m.result);
    const e = m.error!;
    w.reject(new NightscoreError(e.kind, e.code, e.message, { hint: e.hint, source: e.source, line: e.line, column: e.column, retryable: e.retryable }));
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
