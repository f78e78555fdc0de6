import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadJob } from '../../src/job/load.js';
import { dateRange } from '../../src/job/dates.js';
import { queueConfig, type QueueConfig } from '../../src/queue/config.js';
import { openQueues, type Queues } from '../../src/queue/queues.js';
import { readStatus, type DateStatus } from '../../src/queue/status.js';
import { readSettings } from '../../src/settings.js';
import { CLI, REPO, runCli } from './workspace.js';

/**
 * A queue of one's own on the real Redis at 127.0.0.1:6379: a random prefix, so tests never
 * see each other's jobs, and the environment that points CLI processes at it.
 */
export interface TestQueue {
  env: Record<string, string>;
  config: QueueConfig;
  queues: Queues;
  /** Starts `nightscore worker` as its own process, exactly as the container does. */
  startWorker(extraEnv?: Record<string, string>, args?: string[]): Promise<WorkerProcess>;
  status(jobFile: string, from: string, to: string): Promise<DateStatus[]>;
  /** Polls status until `done` holds for it, or fails with the last status after `timeoutMs`. */
  waitFor(jobFile: string, from: string, to: string, done: (rows: DateStatus[]) => boolean, timeoutMs?: number): Promise<DateStatus[]>;
  close(): Promise<void>;
  /** Everything the workers started so far have logged, for a failing test's message. */
  workerLogs(): string;
}

export interface WorkerProcess {
  child: ChildProcess;
  port: number;
  log: () => string;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string>;
}

export async function createTestQueue(extraEnv: Record<string, string> = {}): Promise<TestQueue> {
  const env: Record<string, string> = {
    NIGHTSCORE_REDIS_URL: 'redis://127.0.0.1:6379',
    NIGHTSCORE_QUEUE_PREFIX: `nstest-${randomUUID().slice(0, 8)}`,
    NIGHTSCORE_LOG_LEVEL: 'info',
    NIGHTSCORE_BACKOFF_MS: '200',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extraEnv,
  };
  const config = queueConfig(readSettings(env));
  // A test may stop Redis on purpose; the client reconnects, and its errors meanwhile are expected.
  const queues = openQueues(config, () => undefined);
  const workers: WorkerProcess[] = [];
  const status = async (jobFile: string, from: string, to: string) => readStatus(queues, await loadJob(jobFile), dateRange(from, to));
  return {
    env,
    config,
    queues,
    status,
    async startWorker(more = {}, args = []) {
      const child = spawn(process.execPath, [CLI, 'worker', '--port', '0', ...args], { cwd: REPO, env: { ...process.env, ...env, ...more }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
      const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setInterval(() => {
          const m = /"port":(\d+).*"msg":"worker started"/.exec(text);
          if (m) {
            clearInterval(timer);
            resolve(Number(m[1]));
          }
        }, 50);
        void exited.then((code) => {
          clearInterval(timer);
          reject(new Error(`worker exited (${code}) before starting:\n${text}`));
        });
      });
      const worker = { child, port, log: () => text, exited };
      workers.push(worker);
      return worker;
    },
    async waitFor(jobFile, from, to, done, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let rows = await status(jobFile, from, to);
      while (!done(rows)) {
        if (Date.now() > deadline) throw new Error(`timed out; last status: ${JSON.stringify(rows, null, 2)}\n${workers.map((w) => w.log()).join('\n')}`);
        await new Promise((r) => setTimeout(r, 200));
        rows = await status(jobFile, from, to);
      }
      return rows;
    },
    workerLogs: () => workers.map((w) => w.log()).join('\n'),
    async close() {
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await queues.runs.obliterate({ force: true }).catch(() => undefined);
      await queues.chunks.obliterate({ force: true }).catch(() => undefined);
      await queues.close();
      // A rejection nothing handled is a bug in the worker, whatever the test was about.
      const unhandled = workers.map((w) => w.log()).find((log) => log.includes('unhandled rejection'));
      if (unhandled) throw new Error(`a worker logged an unhandled rejection:\n${unhandled}`);
    },
  };
}

export const allIn = (states: string[]) => (rows: DateStatus[]) => rows.every((r) => states.includes(r.state));

/** Scores one date of a job on a queue of its own, with one worker process, and returns the date's final status. */
export async function runOnQueue(jobFile: string, date: string): Promise<DateStatus> {
  const tq = await createTestQueue();
  try {
    await tq.startWorker();
    const res = await runCli(['run', jobFile, '--date', date, '--queue'], { env: tq.env });
    if (res.code !== 0) throw new Error(`run --queue exited with ${res.code}: ${res.stderr}`);
    const [status] = await tq.waitFor(jobFile, date, date, allIn(['succeeded', 'failed']));
    return status!;
  } finally {
    await tq.close();
  }
}
