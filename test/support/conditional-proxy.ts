import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy in front of s3rver that enforces conditional writes as AWS S3 and MinIO do,
 * which s3rver itself ignores: a PutObject with `If-None-Match: *` is refused (412) when the
 * key exists, one with `If-Match: <etag>` when the key's ETag is another (or there is none).
 * Conditional writes are checked and forwarded one at a time, so a check and its write are
 * atomic as on a real server; `holdMs` keeps each one waiting first, so that racing writers
 * have all read before the first one lands. Everything else passes through untouched.
 */
export interface ConditionalProxy {
  endpoint: string;
  /** Conditional writes let through, and refused with 412. */
  passed: number;
  refused: number;
  /** The path of every GET seen (object reads and lists), in order. */
  gets: string[];
  close(): Promise<void>;
}

export async function startConditionalProxy(upstream: string, client: S3Client, opts: { holdMs?: number } = {}): Promise<ConditionalProxy> {
  const target = new URL(upstream);
  const state = { passed: 0, refused: 0, gets: [] as string[] };
  let queue: Promise<void> = Promise.resolve();
  const forward = (req: IncomingMessage, res: import('node:http').ServerResponse, body?: Buffer) =>
    new Promise<void>((resolve) => {
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on('end', resolve);
        upRes.on('error', () => resolve());
      });
      up.on('error', () => {
        res.destroy();
        resolve();
      });
      if (body) up.end(body);
      else req.pipe(up);
    });
  const etagOf = async (path: string): Promise<string | undefined> => {
    const [, bucket, ...rest] = decodeURIComponent(path).split('/');
    try {
      return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: rest.join('/') }))).ETag;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  };
  const server: Server = createServer((req, res) => {
    const ifMatch = req.headers['if-match'];
    const ifNoneMatch = req.headers['if-none-match'];
    const [path, query = ''] = (req.url ?? '/').split('?');
    const conditionalPut = req.method === 'PUT' && (ifMatch !== undefined || ifNoneMatch !== undefined) && !/(^|&)(uploadId|partNumber)=/.test(query);
    if (!conditionalPut) {
      if (req.method === 'GET') state.gets.push(decodeURIComponent(path!));
      void forward(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const turn = queue.then(async () => {
        if (opts.holdMs) await new Promise((r) => setTimeout(r, opts.holdMs));
        const etag = await etagOf(path!);
        const refuse = ifNoneMatch === '*' ? etag !== undefined : etag !== ifMatch;
        if (refuse) {
          state.refused++;
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
          return;
        }
        state.passed++;
        await forward(req, res, Buffer.concat(chunks));
      });
      queue = turn.catch(() => {
        res.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get passed() {
      return state.passed;
    },
    get refused() {
      return state.refused;
    },
    get gets() {
      return state.gets;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
