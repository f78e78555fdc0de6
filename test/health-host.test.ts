import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueue, type TestQueue, type WorkerProcess } from './support/queue.js';
import { runCli } from './support/workspace.js';

/**
 * The worker's health server answers only requests addressed to a host it may be reached by,
 * as the UI does: a web page elsewhere that points its own name at the worker's address (DNS
 * rebinding) must not read /metrics, /backlog or /readyz from a browser that can reach it.
 * Bound to loopback: loopback names only. Bound wide (0.0.0.0, as in Kubernetes and compose):
 * IP literals too (probes and scrapes address the pod by IP), and the names listed in
 * NIGHTSCORE_HTTP_ALLOWED_HOSTS (the metrics Service's, which KEDA polls).
 */

const PATHS = ['/healthz', '/readyz', '/metrics', '/backlog'];
const SERVICE = 'nightscore-worker-metrics.nightscore.svc.cluster.local';

let tq: TestQueue;
let loopback: WorkerProcess;
let wide: WorkerProcess;

/** GET `path` from the worker's port on 127.0.0.1 with the Host header `host` (none: no header at all). */
function get(worker: WorkerProcess, path: string, host: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: worker.port, path, setHost: false, headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function statusesFor(worker: WorkerProcess, host: string | undefined): Promise<number[]> {
  return Promise.all(PATHS.map(async (p) => (await get(worker, p, host)).status));
}

beforeAll(async () => {
  tq = await createTestQueue();
  loopback = await tq.startWorker();
  wide = await tq.startWorker({ NIGHTSCORE_HTTP_HOST: '0.0.0.0', NIGHTSCORE_HTTP_ALLOWED_HOSTS: `${SERVICE}, metrics.example` });
}, 60_000);

afterAll(async () => {
  await tq?.close();
});

describe('the health server answers only for hosts it may be addressed by', () => {
  it('bound to loopback: loopback names only', async () => {
    for (const host of [`127.0.0.1:${loopback.port}`, `localhost:${loopback.port}`, `[::1]:${loopback.port}`, 'LOCALHOST']) {
      expect(await statusesFor(loopback, host), host).toEqual([200, 200, 200, 200]);
    }
    for (const host of [`attacker.example:${loopback.port}`, `127.0.0.1.attacker.example:${loopback.port}`, `10.244.1.7:${loopback.port}`, SERVICE, '']) {
      expect(await statusesFor(loopback, host), host).toEqual([421, 421, 421, 421]);
    }
    // Without a Host header Node's server refuses an HTTP/1.1 request before the worker sees it.
    expect(await statusesFor(loopback, undefined)).toEqual([400, 400, 400, 400]);
  });

  it('refuses with the error record, naming the host and what to do', async () => {
    const res = await get(loopback, '/metrics', `attacker.example:${loopback.port}`);
    expect(res.status).toBe(421);
    expect(JSON.parse(res.body)).toEqual({
      error: {
        code: 'HTTP_HOST_REFUSED',
        kind: 'usage',
        message: `a request for host "attacker.example:${loopback.port}": the health server on 127.0.0.1 answers only requests for localhost, 127.0.0.1, [::1] or a name in NIGHTSCORE_HTTP_ALLOWED_HOSTS`,
        hint: 'Address it by IP (or as 127.0.0.1 on this machine); to reach it by a DNS name, list that name in NIGHTSCORE_HTTP_ALLOWED_HOSTS.',
      },
    });
    expect(res.body).not.toContain('nightscore_');
  });

  it('bound wide: IP literals (a probe or scrape by pod IP), loopback names and the listed names; no other name', async () => {
    for (const host of [`10.244.1.7:${wide.port}`, '10.244.1.7', `[fd00::7]:${wide.port}`, `127.0.0.1:${wide.port}`, `localhost:${wide.port}`, `${SERVICE}:${wide.port}`, `METRICS.example:${wide.port}`]) {
      expect(await statusesFor(wide, host), host).toEqual([200, 200, 200, 200]);
    }
    expect((await get(wide, '/readyz', `10.244.1.7:${wide.port}`)).body).toBe('ready\n');
    for (const host of [`attacker.example:${wide.port}`, `10.244.1.7.nip.io:${wide.port}`, `nightscore-worker-metrics:${wide.port}`, '']) {
      expect(await statusesFor(wide, host), host).toEqual([421, 421, 421, 421]);
    }
  });

  it('a worker with NIGHTSCORE_HTTP_ALLOWED_HOSTS that lists something other than host names does not start', async () => {
    const res = await runCli(['worker', '--port', '0'], { env: { ...tq.env, NIGHTSCORE_HTTP_ALLOWED_HOSTS: 'http://metrics.example:9464' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('BAD_ENV: NIGHTSCORE_HTTP_ALLOWED_HOSTS must be DNS names without scheme or port, separated by commas (e.g. nightscore-worker-metrics.nightscore.svc.cluster.local), or * for any, got "http://metrics.example:9464"');
  });
});
