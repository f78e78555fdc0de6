import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A free loopback port (closed again, so a server of the test's own can take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server owned by one test: its own port, folder and settings. */
export interface RedisServer {
  port: number;
  dir: string;
  /** Runs redis-cli against it with `args` (auth and TLS options included), returning stdout. */
  cli(...args: string[]): string;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Extra redis-server arguments (`--requirepass`, `--user`, TLS files…). */
  args?: string[];
  /** Serve TLS on the port instead of plain TCP (the TLS files go in `args`). */
  tls?: boolean;
  /** redis-cli arguments to authenticate and, for TLS, to trust the server. */
  cliArgs?: string[];
  /** Listen on this port (a server started again in place of one stopped); a free one otherwise. */
  port?: number;
}

/** Starts redis-server on a free loopback port; resolves once it accepts connections. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'nightscore-redis-'));
  const listen = opts.tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  const child: ChildProcess = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    port,
    dir,
    cli: (...args) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...(opts.cliArgs ?? []), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
