import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'bullmq';
import { envInteger, envMilliseconds } from '../env.js';
import { NightscoreError } from '../errors.js';

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

const HOUR_MS = 3_600_000;

/** The queue's settings from the environment, each checked against the range it takes (BAD_ENV otherwise). */
export function queueConfig(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  const prefix = env.NIGHTSCORE_QUEUE_PREFIX || 'nightscore';
  // BullMQ builds every key as <prefix>:<queue>:…; a colon or a brace would change the key's shape.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(prefix)) {
    throw new NightscoreError('BAD_ENV', `NIGHTSCORE_QUEUE_PREFIX must be 1-64 characters of A-Z a-z 0-9 . _ -, got "${prefix}"`, { column: 'NIGHTSCORE_QUEUE_PREFIX', hint: 'Unset it for the default "nightscore".' });
  }
  return {
    redisUrl: env.NIGHTSCORE_REDIS_URL || 'redis://127.0.0.1:6379',
    redisCaFile: env.NIGHTSCORE_REDIS_CA_FILE || undefined,
    prefix,
    lockMs: envMilliseconds(env, 'NIGHTSCORE_LOCK_MS', 30_000, 'a chunk is taken over 30 s after its worker stops renewing', 1_000),
    stalledIntervalMs: envMilliseconds(env, 'NIGHTSCORE_STALLED_INTERVAL_MS', 30_000, 'look for stalled chunks every 30 s', 1_000),
    maxStalledCount: envInteger(env, 'NIGHTSCORE_MAX_STALLED', 3, { min: 0, max: 1_000, unit: 'stalls' }, 'a chunk may stall 3 times'),
    attempts: envInteger(env, 'NIGHTSCORE_ATTEMPTS', 5, { min: 1, max: 100, unit: 'attempts' }, '5 attempts'),
    backoffMs: envInteger(env, 'NIGHTSCORE_BACKOFF_MS', 2_000, { min: 0, max: HOUR_MS, unit: 'milliseconds' }, 'backoff from 2 s'),
    keepRuns: envInteger(env, 'NIGHTSCORE_KEEP_RUNS', 10_000, { min: 1, max: 10_000_000, unit: 'runs' }, 'keep 10,000 finished runs'),
  };
}

/** How long SIGTERM/SIGINT may take, end to end, before the worker exits whatever it was doing. */
export function shutdownTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return envMilliseconds(env, 'NIGHTSCORE_SHUTDOWN_TIMEOUT_MS', 30_000, 'SIGTERM exits within 30 s');
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
    throw new NightscoreError('BAD_REDIS_URL', `NIGHTSCORE_REDIS_URL "${text}" is not a Redis URL`, {
      hint: 'Write redis://[user:password@]host[:port][/db], or rediss:// for TLS; percent-encode special characters in the password.',
    });
  }
  return url;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new NightscoreError('REDIS_CA_FILE', `cannot read NIGHTSCORE_REDIS_CA_FILE ${file}: ${(err as Error).message}`, {
      hint: 'Point NIGHTSCORE_REDIS_CA_FILE at the PEM file of the CA that signed the Redis server certificate.',
    });
  }
}

export const QUEUES = { runs: 'runs', chunks: 'chunks' } as const;

/** A run's id is its job and date, so the same run is never enqueued twice while it exists. */
export function runId(job: string, date: string): string {
  return `${job}@${date}`;
}

/** The output lock owner of a queued run: every try of the run on this queue is the same owner. */
export function runLockOwner(prefix: string, id: string): string {
  return `queue:${prefix}:${id}`;
}

/** Chunk ids include the attempt, so a re-run of a date is not mistaken for its earlier attempt. */
export function chunkId(run: string, attempt: string, index: number): string {
  return `${run}.${attempt.slice(0, 8)}.c${index}`;
}

export function schedulerId(job: string): string {
  return `job.${job}`;
}
