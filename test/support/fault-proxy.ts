import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * - slowdown / error500: a 503 SlowDown or a 500 InternalError instead of the object;
 * - reset: half the body, then the connection is destroyed;
 * - truncate: half the body behind a matching Content-Length (a lying server);
 * - stall: the request is accepted and nothing is ever sent back;
 * - stall-body: the headers and half the body are sent, then nothing more.
 * Stalled connections stay open until the client gives up or the proxy closes.
 */
export type Fault = 'slowdown' | 'error500' | 'reset' | 'truncate' | 'stall' | 'stall-body';

/**
 * An HTTP proxy in front of the S3 server that injects faults into object reads (GETs of
 * a key): `plan(n, path)` says what the n-th such read (0-based, of `path`) gets, undefined
 * passes it through. Lists, writes and deletes always pass.
 */
export interface FaultProxy {
  endpoint: string;
  /** Object reads seen so far, and the faults injected. */
  reads: number;
  injected: Fault[];
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string, plan: (n: number, path: string) => Fault | undefined): Promise<FaultProxy> {
  const target = new URL(upstream);
  const state = { reads: 0, injected: [] as Fault[] };
  const server: Server = createServer((req, res) => {
    const isRead = req.method === 'GET' && !/[?&](list-type|uploads|location)=?/.test(req.url ?? '') && (req.url ?? '/').split('?')[0]!.split('/').length > 2;
    const fault = isRead ? plan(state.reads++, decodeURIComponent((req.url ?? '/').split('?')[0]!)) : undefined;
    if (fault) state.injected.push(fault);
    if (fault === 'slowdown' || fault === 'error500') {
      req.resume();
      const code = fault === 'slowdown' ? 503 : 500;
      res.writeHead(code, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault === 'slowdown' ? 'SlowDown' : 'InternalError'}</Code><Message>injected</Message></Error>`);
      return;
    }
    if (fault === 'stall') {
      req.resume();
      return;
    }
    const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (upRes: IncomingMessage) => {
      if (fault === 'truncate' || fault === 'reset' || fault === 'stall-body') {
        const chunks: Buffer[] = [];
        upRes.on('data', (d: Buffer) => chunks.push(d));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          const half = body.subarray(0, Math.floor(body.length / 2));
          if (fault === 'truncate') {
            // A lying server: a short body with a matching Content-Length, so HTTP sees no error.
            res.writeHead(upRes.statusCode ?? 200, { ...upRes.headers, 'content-length': String(half.length) });
            res.end(half);
          } else if (fault === 'reset') {
            res.writeHead(upRes.statusCode ?? 200, upRes.headers);
            res.write(half, () => res.socket?.destroy());
          } else {
            res.writeHead(upRes.statusCode ?? 200, upRes.headers);
            res.write(half);
          }
        });
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get reads() {
      return state.reads;
    },
    get injected() {
      return state.injected;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
