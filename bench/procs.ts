/**
 * The processes the benchmark measures: CLI commands under GNU time (wall time, peak RSS),
 * and `nightscore worker` processes on a queue prefix of their own, with their peak RSS
 * (VmHWM) and event-loop delay read from outside, as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(REPO, 'dist', 'cli.js');

/**
 * The node flags the Docker image runs nightscore with (its ENTRYPOINT, between "node" and
 * the script), so the benchmark measures the CLI and workers as they are deployed.
 */
export const NODE_FLAGS: string[] = (() => {
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
  const argv = entry ? (JSON.parse(entry[1]!) as string[]) : [];
  return argv.slice(1, argv.findIndex((a) => a.endsWith('cli.js')));
})();

/** `node <NODE_FLAGS> dist/cli.js`, less the node: the start of every CLI command the benchmark runs. */
export const CLI_ARGS = [...NODE_FLAGS, CLI];
const TIME = '/usr/bin/time';
const QUIET = { NIGHTSCORE_LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

export interface Timed {
  seconds: number;
  peakRssMb: number;
  /** User and system CPU seconds of the command and the children it waited for, as GNU time counts them. */
  cpuSeconds: number;
  stdout: string;
}

/** Fails early, naming the fix, when GNU time (for peak RSS) is missing. */
export function checkTools(): void {
  if (!existsSync(TIME)) throw new Error(`${TIME} not found: the benchmark reads peak RSS from GNU time (apt-get install time)`);
}

/**
 * Runs `node <args>` under GNU time and resolves with its wall time (measured here, to the
 * millisecond) and peak RSS. A non-zero exit rejects with the command's stderr. `abort`
 * rejecting (a worker died) kills the command and rejects with that reason.
 */
export function timeNode(args: string[], env: Record<string, string> = {}, abort?: Promise<never>): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(TIME, ['-f', '%e %M %U %S', process.execPath, ...args], { cwd: REPO, env: { ...process.env, ...QUIET, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    abort?.catch((err: Error) => {
      child.kill('SIGKILL');
      reject(err);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const lines = stderr.trimEnd().split('\n');
      const last = lines.pop() ?? '';
      if (code !== 0) return reject(new Error(`\`node ${args.map((a) => path.relative(REPO, a) || a).join(' ')}\` exited ${code}:\n${lines.slice(-30).join('\n')}`));
      const [, kb, user, system] = last.split(' ').map(Number);
      resolve({ seconds, peakRssMb: kb! / 1024, cpuSeconds: user! + system!, stdout });
    });
  });
}

/** One `nightscore worker` process. */
export interface BenchWorker {
  child: ChildProcess;
  port: number;
  /** Peak resident memory so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** Gauges from /metrics, by name. */
  metrics(): Promise<Record<string, number>>;
  logTail(): string;
}

/** Workers on one queue prefix of their own, and what they need to be watched. */
export interface WorkerGroup {
  env: Record<string, string>;
  workers: BenchWorker[];
  /** Rejects as soon as any worker exits while the group is running. */
  died: Promise<never>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
// Whatever ends the benchmark (an error, Ctrl-C), its workers do not outlive it.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/** Fails with what to do when Redis does not answer at `url`. */
export async function checkRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 3_000 });
  let first: Error | undefined;
  client.on('error', (err: Error) => (first ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(`Redis does not answer at ${url} (${(first ?? (err as Error)).message}). The queue cases need it: start redis-server, set NIGHTSCORE_REDIS_URL, or leave the queue cases out with --only run,ort,parse`);
  } finally {
    client.disconnect();
  }
}

/** Deletes every key under a prefix (the benchmark's queues when a case is over). */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/**
 * Starts `count` workers on a fresh queue prefix and waits until each serves /metrics.
 * `concurrency` is passed as --concurrency when set (the default is one chunk per CPU).
 */
export async function startWorkers(count: number, redisUrl: string, concurrency?: number): Promise<WorkerGroup> {
  const env = { NIGHTSCORE_REDIS_URL: redisUrl, NIGHTSCORE_QUEUE_PREFIX: `nsbench-${randomUUID().slice(0, 8)}` };
  const workers: BenchWorker[] = [];
  let stopping = false;
  let fail: (err: Error) => void = () => undefined;
  const died = new Promise<never>((_, reject) => (fail = reject));
  died.catch(() => undefined);
  const stop = async () => {
    stopping = true;
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null || w.child.signalCode !== null) return;
        const exited = new Promise((resolve) => w.child.once('exit', resolve));
        w.child.kill('SIGTERM');
        const timer = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await dropPrefix(redisUrl, env.NIGHTSCORE_QUEUE_PREFIX).catch(() => undefined);
  };
  try {
    for (let i = 0; i < count; i++) {
      const worker = await startWorker(env, concurrency);
      workers.push(worker);
      worker.child.once('exit', (code, signal) => {
        live.delete(worker.child);
        if (!stopping) fail(new Error(`worker ${i + 1} of ${count} (pid ${worker.child.pid}) exited (${code ?? signal}) during the benchmark; its last log lines:\n${worker.logTail()}`));
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, workers, died, stop };
}

async function startWorker(env: Record<string, string>, concurrency?: number): Promise<BenchWorker> {
  const args = [...CLI_ARGS, 'worker', '--port', '0', ...(concurrency ? ['--concurrency', String(concurrency)] : [])];
  // Info level: the "worker started" line carries the port; chunk lines are few.
  const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...QUIET, NIGHTSCORE_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-64 * 1024));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /"port":(\d+)[^\n]*"msg":"worker started"/.exec(log);
      if (m) done(() => resolve(Number(m[1])));
    }, 50);
    const deadline = setTimeout(() => done(() => reject(new Error(`worker did not start within 30 s:\n${log.slice(-4000)}`))), 30_000);
    const onExit = (code: number | null) => done(() => reject(new Error(`worker exited (${code}) before starting:\n${log.slice(-4000)}`)));
    const done = (then: () => void) => {
      clearInterval(timer);
      clearTimeout(deadline);
      child.off('exit', onExit);
      then();
    };
    child.once('exit', onExit);
  });
  return {
    child,
    port,
    peakRssMb: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024,
    metrics: async () => parseGauges(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    logTail: () => log.split('\n').slice(-20).join('\n'),
  };
}

/** Unlabelled samples of a Prometheus text exposition. */
function parseGauges(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
