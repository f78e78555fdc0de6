/**
 * The read-only web UI as a server of its own (`nightscore ui`) or beside a worker
 * (`nightscore worker --ui`): it opens its own read-only use of the queues and reads the
 * output folders; it never enqueues, removes or writes anything.
 */
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { NightscoreError } from '../errors.js';
import { loadJobsDir } from '../job/load.js';
import { queueConfig, type QueueConfig } from '../queue/config.js';
import { openQueues } from '../queue/queues.js';
import { checkRedis } from '../queue/redis-check.js';
import { redactSecrets } from '../redact.js';
import { environment } from '../settings.js';
import { within } from '../within.js';
import { createUiApp } from './app.js';
import { requiredToken } from './auth.js';
import { UiContext } from './context.js';
import type { OutputCacheOptions } from './output.js';

export interface UiServerOptions {
  /** The folder of job files whose dates the UI shows. @defaultValue "jobs" */
  jobsDir?: string;
  /** Port to listen on; 0 picks a free one. @defaultValue 8080 */
  port?: number;
  /** Address to listen on; beyond loopback a token is required (see auth.ts). @defaultValue 127.0.0.1 */
  host?: string;
  /** The queue to read. @defaultValue queueConfig of the process's settings */
  config?: QueueConfig;
  /** The bearer token requests must carry. @defaultValue NIGHTSCORE_UI_TOKEN of the process's settings */
  token?: string;
  /** Pages reload themselves this often. @defaultValue 30 */
  refreshSeconds?: number;
  /** How long a Redis call may take before a page goes on without it. @defaultValue 2000 ms */
  redisTimeoutMs?: number;
  /** The manifest cache: its bounds, and how long a date's output is served before it is looked at again (see output.ts). */
  cache?: OutputCacheOptions;
  log?: Logger;
}

export interface UiServer {
  port: number;
  /** http://host:port/ as a browser on this machine would open it. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the UI. Refuses to start (UI_TOKEN_REQUIRED) on an address other machines can
 * reach without a token, on job files that do not validate, and on Redis credentials or
 * certificates that are wrong; a Redis that does not answer yet is a banner on the pages.
 */
export async function startUiServer(opts: UiServerOptions = {}): Promise<UiServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const token = requiredToken(host, opts.token ?? environment().settings.NIGHTSCORE_UI_TOKEN);
  const config = opts.config ?? queueConfig(environment().settings);
  // Every job file is read and checked before Redis is touched.
  const jobsDir = opts.jobsDir ?? 'jobs';
  const jobs = await loadJobsDir(jobsDir);
  try {
    await checkRedis(config, 3_000);
  } catch (err) {
    if (!(err instanceof NightscoreError) || err.code !== 'REDIS_UNAVAILABLE') throw err;
    opts.log?.warn({ err: err.message }, 'ui: Redis is not reachable; pages show the output folders only until it is');
  }
  // BullMQ reconnects on its own; one line a minute says Redis is still away.
  let lastReported = 0;
  const queues = openQueues(config, (err) => {
    if (Date.now() - lastReported < 60_000) return;
    lastReported = Date.now();
    opts.log?.warn({ err: err.message }, 'ui: Redis connection error');
  });
  try {
    const ctx = new UiContext({ jobsDir, queues, redisTimeoutMs: opts.redisTimeoutMs, outputs: opts.cache });
    await ctx.init(jobs);
    const app = createUiApp({ ctx, token, refreshSeconds: opts.refreshSeconds, log: opts.log });
    const server = createAdaptorServer({ fetch: app.fetch, hostname: host }) as Server;
    const bound = await listen(server, host, port);
    const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    const url = `http://${shown}:${bound}/`;
    opts.log?.info({ url, host, port: bound, token: token !== undefined, redis: redactSecrets(config.redisUrl), prefix: config.prefix }, 'ui started');
    // The first page pays for every date's output read and the models loaded for the stale
    // check; read the default page once now, so the first visitor does not. What fails here
    // fails again, and is shown, on a real request.
    void Promise.resolve(app.fetch(new Request('http://127.0.0.1/', { headers: { accept: 'text/html', ...(token ? { authorization: `Bearer ${token}` } : {}) } }))).catch(() => undefined);
    let closing: Promise<void> | undefined;
    return {
      port: bound,
      url,
      close: () =>
        (closing ??= (async () => {
          // A browser's keep-alive connection would hold close() open until it times out.
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await within(queues.close(), 2_000);
        })()),
    };
  } catch (err) {
    await within(queues.close(), 2_000);
    throw err;
  }
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new NightscoreError('HTTP_PORT_IN_USE', `cannot serve the UI on ${host}:${port}: the port is in use`, { hint: 'Pick another port with --port (0 picks a free one), or stop what holds it.', cause: err })
          : new NightscoreError('HTTP_LISTEN', `cannot serve the UI on ${host}:${port}: ${err.message}`, { hint: 'Check --host (an address of this machine, 127.0.0.1 by default) and --port.', cause: err }),
      );
    });
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}
