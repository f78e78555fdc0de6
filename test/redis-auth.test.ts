import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { inputKeys, outputKeys } from './support/keys.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';
import { makeTlsFiles, type TlsFiles } from './support/tls.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

// Passwords with characters that must be percent-encoded in a URL.
const DEFAULT_PASS = 'def@ult:pass/42';
const USER = 'nightly';
const USER_PASS = 'us3r-pa%ss';
const enc = encodeURIComponent;

let ws: Workspace;
let tq: TestQueue | undefined;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await tq?.close();
  tq = undefined;
  await ws?.remove();
});

/** A small day in three chunks, scored through the queue; its output keys must equal its input's. */
async function scoreOneDay(env: Record<string, string>, date: string): Promise<void> {
  tq = await createTestQueue(env);
  await ws.write(`in/dt=${date}/a.csv`, csvOf(120, 3));
  const job = await ws.job('auth.yaml', {
    name: 'auth',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    chunk: { rows: 50, bytes: 3000 },
  });
  const worker = await tq.startWorker({}, ['--concurrency', '1']);
  const res = await runCli(['run', job, '--date', date, '--queue', '--wait'], { env: tq.env });
  expect(res.code, `${res.stdout}${res.stderr}\n${worker.log()}`).toBe(0);
  expect(res.stdout).toContain(`${date}  succeeded`);
  expect((await ws.manifest(`out/dt=${date}`)).chunks).toBeGreaterThan(1);
  expect(await outputKeys(ws.path(`out/dt=${date}`))).toEqual(await inputKeys(ws.path(`in/dt=${date}`)));
  await tq.close();
  tq = undefined;
}

/** What a user sees when the credentials are wrong: one error with code and hint, no stack trace. */
function expectCleanError(res: { code: number; stderr: string }, code: string, secrets: string[]): void {
  expect(res.stderr).toContain(`nightscore: ${code}: `);
  expect(res.stderr).toContain('hint: ');
  expect(res.stderr).not.toMatch(/^\s+at /m);
  for (const s of secrets) {
    expect(res.stderr).not.toContain(s);
    expect(res.stderr).not.toContain(enc(s));
  }
}

describe('password-protected Redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer({ args: ['--requirepass', DEFAULT_PASS, '--user', USER, 'on', `>${USER_PASS}`, '~*', '&*', '+@all'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a queued run goes end to end with redis://:password@ and with redis://user:password@', async () => {
    await scoreOneDay({ NIGHTSCORE_REDIS_URL: `redis://:${enc(DEFAULT_PASS)}@127.0.0.1:${server.port}` }, '2026-04-01');
    await scoreOneDay({ NIGHTSCORE_REDIS_URL: `redis://${USER}:${enc(USER_PASS)}@127.0.0.1:${server.port}/0` }, '2026-04-02');
  });

  it('a wrong password is one clear REDIS_AUTH error from the CLI and the worker, which exits', async () => {
    const wrong = 'not-the-pass-7781';
    const env = { NIGHTSCORE_REDIS_URL: `redis://${USER}:${wrong}@127.0.0.1:${server.port}`, NIGHTSCORE_LOG_LEVEL: 'info' };
    const job = await ws.job('auth.yaml', { name: 'auth', input: { uri: 'in/', format: 'csv' }, model: { path: 'm.onnx', features: ['a'] }, output: { uri: 'out/', format: 'csv' } });
    const status = await runCli(['status', job, '--from', '2026-04-01'], { env });
    expect(status.code).toBe(2);
    expectCleanError(status, 'REDIS_AUTH', [wrong]);
    expect(status.stderr).toContain(`Redis at redis://${USER}:[redacted]@127.0.0.1:${server.port} refused the credentials`);

    const worker = await runCli(['worker', '--port', '0'], { env });
    expect(worker.code).toBe(2);
    expectCleanError(worker, 'REDIS_AUTH', [wrong]);
    expect(worker.stderr).not.toContain('worker started');
  });
});

describe('TLS: rediss://', () => {
  let server: RedisServer;
  let tls: TlsFiles;
  const dir = mkdtempSync(path.join(tmpdir(), 'nightscore-tls-'));
  beforeAll(async () => {
    tls = makeTlsFiles(dir);
    server = await startRedisServer({
      tls: true,
      args: ['--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--requirepass', DEFAULT_PASS],
    });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a queued run goes end to end over TLS, trusting the CA in NIGHTSCORE_REDIS_CA_FILE', async () => {
    await scoreOneDay({ NIGHTSCORE_REDIS_URL: `rediss://:${enc(DEFAULT_PASS)}@127.0.0.1:${server.port}`, NIGHTSCORE_REDIS_CA_FILE: tls.ca }, '2026-04-03');
  });

  it('an untrusted certificate, or plain redis:// to a TLS port, is a clear error that says what to set', async () => {
    const job = await ws.job('auth.yaml', { name: 'auth', input: { uri: 'in/', format: 'csv' }, model: { path: 'm.onnx', features: ['a'] }, output: { uri: 'out/', format: 'csv' } });
    const url = `rediss://:${enc(DEFAULT_PASS)}@127.0.0.1:${server.port}`;
    const untrusted: Array<Record<string, string>> = [{ NIGHTSCORE_REDIS_URL: url }, { NIGHTSCORE_REDIS_URL: url, NIGHTSCORE_REDIS_CA_FILE: tls.otherCa }];
    for (const env of untrusted) {
      const res = await runCli(['status', job, '--from', '2026-04-01'], { env });
      expect(res.code).toBe(2);
      expectCleanError(res, 'REDIS_TLS', [DEFAULT_PASS]);
      expect(res.stderr).toContain('NIGHTSCORE_REDIS_CA_FILE');
    }
    const missing = await runCli(['status', job, '--from', '2026-04-01'], { env: { NIGHTSCORE_REDIS_URL: url, NIGHTSCORE_REDIS_CA_FILE: path.join(dir, 'nope.pem') } });
    expect(missing.code).toBe(2);
    expectCleanError(missing, 'REDIS_CA_FILE', [DEFAULT_PASS]);

    const plain = await runCli(['status', job, '--from', '2026-04-01'], { env: { NIGHTSCORE_REDIS_URL: url.replace('rediss:', 'redis:') } });
    expect(plain.code).toBe(1);
    expectCleanError(plain, 'REDIS_UNAVAILABLE', [DEFAULT_PASS]);
    expect(plain.stderr).toContain('rediss://');
  });
});
