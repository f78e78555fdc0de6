import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'bullmq';
import { configError } from '../errors.js';

/** Where the queue lives and how it behaves; every field comes from the environment (README "Queue settings"). */
export interface QueueConfig {
  /** Redis URL: redis://, rediss:// (TLS), with user:password when the server needs them. */
  redisUrl: string;
  /** PEM file of the CA that signed a `rediss://` server's certificate, when the system CAs do not know it. */
  redisCaFile: string | undefined;
  /** Key prefix for every BullMQ key; one prefix per deployment (or per test). */
  prefix: string;
  /** How long a worker holds a chunk's lock before another may take it; renewed at half. */
  lockMs: number;
  /** How often workers look for chunks whose lock expired (a crashed worker). */
  stalledIntervalMs: number;
  /** How many times a chunk may stall (its worker died) before it fails. */
  maxStalledCount: number;
  /** Attempts for transient failures (storage 5xx, timeouts), with exponential backoff from backoffMs. */
  attempts: number;
  backoffMs: number;
  /** Finished runs Redis keeps, completed and failed each (oldest trimmed first); manifests keep the rest. */
  keepRuns: number;
}

const num = (value: string | undefined, fallback: number) => (value === undefined || value === '' ? fallback : Number(value));

export function queueConfig(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  return {
    redisUrl: env.NIGHTSCORE_REDIS_URL || 'redis://127.0.0.1:6379',
    redisCaFile: env.NIGHTSCORE_REDIS_CA_FILE || undefined,
    prefix: env.NIGHTSCORE_QUEUE_PREFIX || 'nightscore',
    lockMs: num(env.NIGHTSCORE_LOCK_MS, 30_000),
    stalledIntervalMs: num(env.NIGHTSCORE_STALLED_INTERVAL_MS, 30_000),
    maxStalledCount: num(env.NIGHTSCORE_MAX_STALLED, 3),
    attempts: num(env.NIGHTSCORE_ATTEMPTS, 5),
    backoffMs: num(env.NIGHTSCORE_BACKOFF_MS, 2_000),
    keepRuns: num(env.NIGHTSCORE_KEEP_RUNS, 10_000),
  };
}

/**
 * BullMQ connection options from a Redis URL. `maxRetriesPerRequest: null` is what BullMQ
 * requires of worker connections: a command waits for Redis to come back instead of failing
 * the job. `rediss://` connects with TLS, verifying the server against the system CAs, or
 * against NIGHTSCORE_REDIS_CA_FILE alone when it is set.
 */
export function connectionOptions(config: QueueConfig): RedisOptions {
  const url = parseRedisUrl(config.redisUrl);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(url.port || 6379),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: config.redisCaFile ? { ca: readCa(config.redisCaFile) } : {} } : {}),
    maxRetriesPerRequest: null,
  };
}

function parseRedisUrl(text: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // falls through to the error below
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname))) {
    throw configError('BAD_REDIS_URL', `NIGHTSCORE_REDIS_URL "${text}" is not a Redis URL`, {
      hint: 'Write redis://[user:password@]host[:port][/db], or rediss:// for TLS; percent-encode special characters in the password.',
    });
  }
  return url;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw configError('REDIS_CA_FILE', `cannot read NIGHTSCORE_REDIS_CA_FILE ${file}: ${(err as Error).message}`, {
      hint: 'Point NIGHTSCORE_REDIS_CA_FILE at the PEM file of the CA that signed the Redis server certificate.',
    });
  }
}

export const QUEUES = { runs: 'runs', chunks: 'chunks' } as const;

/** A run's id is its job and date, so the same run is never enqueued twice while it exists. */
export function runId(job: string, date: string): string {
  return `${job}@${date}`;
}

/** Chunk ids include the attempt, so a re-run of a date is not mistaken for its earlier attempt. */
export function chunkId(run: string, attempt: string, index: number): string {
  return `${run}.${attempt.slice(0, 8)}.c${index}`;
}

export function schedulerId(job: string): string {
  return `job.${job}`;
}
