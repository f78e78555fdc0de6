import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { environment } from '../settings.js';
import { ALLOWED_HOSTS_ENV, answersHost, isLoopback } from './host.js';

export interface HealthServerOptions {
  host: string;
  port: number;
  /** Resolves to the reason the worker is not ready, or undefined when it is. */
  notReady: () => Promise<string | undefined>;
  registry: Registry;
  /** The queue's backlog as JSON (/backlog), for an autoscaler: see queueBacklog. */
  backlog: () => Promise<unknown>;
  /** Host names answered besides loopback names and (off loopback) IP literals: see host.ts. @defaultValue NIGHTSCORE_HTTP_ALLOWED_HOSTS of the process's settings */
  allowedHosts?: readonly string[];
}

/**
 * /healthz: the process is alive. /readyz: Redis answers and the models load. /metrics:
 * Prometheus text. /backlog: the chunks waiting or being scored, as JSON. Binds to loopback
 * unless told otherwise, so metrics are not exposed by accident; answers only requests for a
 * host it may be addressed by (host.ts), so a page elsewhere cannot rebind its name to it.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<{ server: Server; port: number }> {
  const allowed = opts.allowedHosts ?? environment().settings.NIGHTSCORE_HTTP_ALLOWED_HOSTS;
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (!answersHost(opts.host, req.headers.host, allowed)) {
      return reply(421, `${JSON.stringify({ error: hostRefused(opts.host, req.headers.host).toJSON() })}\n`, 'application/json');
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return reply(200, 'ok\n');
    if (path === '/readyz') {
      opts.notReady().then(
        (reason) => (reason ? reply(503, `not ready: ${reason}\n`) : reply(200, 'ready\n')),
        (err: Error) => reply(503, `not ready: ${err.message}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => reply(200, text, opts.registry.contentType),
        (err: Error) => reply(500, `${err.message}\n`),
      );
      return;
    }
    if (path === '/backlog') {
      opts.backlog().then(
        (backlog) => reply(200, `${JSON.stringify(backlog)}\n`, 'application/json'),
        (err: unknown) => reply(503, `${JSON.stringify({ error: toNightscoreError(err).toJSON() })}\n`, 'application/json'),
      );
      return;
    }
    reply(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, opts.host, opts.port)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function hostRefused(bound: string, host: string | undefined): NightscoreError {
  const answered = isLoopback(bound) ? 'localhost, 127.0.0.1, [::1]' : 'an IP address, localhost';
  return new NightscoreError('HTTP_HOST_REFUSED', `a request for host "${(host ?? '').slice(0, 200)}": the health server on ${bound} answers only requests for ${answered} or a name in ${ALLOWED_HOSTS_ENV}`, {
    hint: `Address it by IP (or as 127.0.0.1 on this machine); to reach it by a DNS name, list that name in ${ALLOWED_HOSTS_ENV}.`,
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number) {
  if (err.code === 'EADDRINUSE') {
    return new NightscoreError('HTTP_PORT_IN_USE', `cannot serve /healthz and /metrics on ${host}:${port}: the port is in use (another worker on this host?)`, {
      hint: 'Give each worker on a host its own port: --port, or NIGHTSCORE_HTTP_PORT (0 picks a free one).',
      cause: err,
    });
  }
  return new NightscoreError('HTTP_LISTEN', `cannot serve /healthz and /metrics on ${host}:${port}: ${err.message}`, {
    hint: 'Check --host / NIGHTSCORE_HTTP_HOST (an address of this machine) and --port / NIGHTSCORE_HTTP_PORT.',
    cause: err,
  });
}
