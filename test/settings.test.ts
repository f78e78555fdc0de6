import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_AS_IS, readSettings, setting, SETTING_NAMES, type SettingName } from '../src/settings.js';
import { section } from './support/docs.js';
import { REPO, startCli, Workspace, type CliResult } from './support/workspace.js';

/**
 * Settings: every environment variable nightscore reads has a form, checked when the process
 * starts. A bad value stops any command before it does any work (BAD_ENV, exit 2, naming the
 * variable, the value and the form), rather than a worker that starts and then fails every
 * run, or drops every alert, on it.
 */

const THIS_FILE = fileURLToPath(import.meta.url);

/** Per variable: a good value and what it reads as, then values that must be refused. */
const CASES: Record<SettingName, { good: [string, unknown]; bad: string[] }> = {
  NIGHTSCORE_REDIS_URL: { good: ['rediss://:pw@redis:6380/2', 'rediss://:pw@redis:6380/2'], bad: ['http://127.0.0.1:6379', 'redis://h/x', 'not a url'] },
  NIGHTSCORE_REDIS_CA_FILE: { good: [THIS_FILE, THIS_FILE], bad: ['/no/such/ca.pem', tmpdir()] },
  NIGHTSCORE_QUEUE_PREFIX: { good: ['team-a.prod', 'team-a.prod'], bad: ['a:b', '{x}', 'x'.repeat(65)] },
  NIGHTSCORE_LOCK_MS: { good: ['2000', 2000], bad: ['abc', '999', '86400001', '1.5'] },
  NIGHTSCORE_STALLED_INTERVAL_MS: { good: ['1000', 1000], bad: ['0'] },
  NIGHTSCORE_MAX_STALLED: { good: ['0', 0], bad: ['-1', '1001'] },
  NIGHTSCORE_ATTEMPTS: { good: ['1', 1], bad: ['0', '101'] },
  NIGHTSCORE_BACKOFF_MS: { good: ['0', 0], bad: ['-1', '3600001'] },
  NIGHTSCORE_KEEP_RUNS: { good: ['10', 10], bad: ['0'] },
  NIGHTSCORE_SHUTDOWN_TIMEOUT_MS: { good: ['300', 300], bad: ['-5', '99'] },
  NIGHTSCORE_SCHEDULE_WATCH_MS: { good: ['200', 200], bad: ['10s'] },
  NIGHTSCORE_OUTPUT_LEASE_MS: { good: ['6000', 6000], bad: ['2m'] },
  NIGHTSCORE_S3_TIMEOUT_MS: { good: ['500', 500], bad: ['30s'] },
  NIGHTSCORE_HTTP_PORT: { good: ['0', 0], bad: ['70000', 'http'] },
  NIGHTSCORE_HTTP_HOST: { good: ['::', '::'], bad: ['not a host', '[::1]', 'http://0.0.0.0'] },
  NIGHTSCORE_HTTP_ALLOWED_HOSTS: { good: ['Metrics.ns.svc, *', ['metrics.ns.svc', '*']], bad: ['http://metrics', 'metrics:9464', 'a b'] },
  NIGHTSCORE_MODEL_CACHE: { good: ['/tmp/nightscore-models', '/tmp/nightscore-models'], bad: ['cache', 's3://bucket/cache/'] },
  NIGHTSCORE_MODEL_CACHE_BYTES: { good: ['4294967296', 4294967296], bad: ['8GB', '0', '1e9', '8589934592.5'] },
  NIGHTSCORE_REGISTRY_URI: { good: ['s3://models/registry/', 's3://models/registry/'], bad: ['registry', 'http://models/', 's3://'] },
  NIGHTSCORE_USER: { good: ['ana', 'ana'], bad: ['ana\nbob', 'x'.repeat(257)] },
  NIGHTSCORE_ALERT_WEBHOOK: { good: ['https://hooks.example.com/T/B/x', 'https://hooks.example.com/T/B/x'], bad: ['not-a-url', 'ftp://hooks.example.com/x', 'file:///etc/passwd', 'hooks.example.com/x'] },
  NIGHTSCORE_LOG_LEVEL: { good: ['debug', 'debug'], bad: ['loud', 'INFO'] },
  NIGHTSCORE_UI_TOKEN: { good: ['0123456789abcdef', '0123456789abcdef'], bad: ['short'] },
  AWS_ENDPOINT_URL_S3: { good: ['http://minio:9000', 'http://minio:9000'], bad: ['localhost:9000', 'minio'] },
  AWS_ENDPOINT_URL: { good: ['https://s3.example.com', 'https://s3.example.com'], bad: ['127.0.0.1:9000'] },
  AWS_REGION: { good: ['eu-west-1', 'eu-west-1'], bad: ['us east 1', 'us-east-1.'] },
  AWS_DEFAULT_REGION: { good: ['garage', 'garage'], bad: ['eu_west_1'] },
  AWS_MAX_ATTEMPTS: { good: ['1', 1], bad: ['abc', '0'] },
};

// The codes with a message of their own; every other bad setting is BAD_ENV.
const CODE: Partial<Record<SettingName, string>> = { NIGHTSCORE_REDIS_URL: 'BAD_REDIS_URL', NIGHTSCORE_REDIS_CA_FILE: 'REDIS_CA_FILE' };

const rows = Object.entries(CASES).flatMap(([name, c]) => c.bad.map((value) => [name as SettingName, value] as const));

async function sources(dir: string): Promise<string[]> {
  return (await sourceFiles(dir)).map(([, text]) => text);
}

/** Every .ts file under `dir`: its path relative to the repository, and its text. */
async function sourceFiles(dir: string): Promise<Array<[string, string]>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (file) => [path.relative(REPO, file).split(path.sep).join('/'), await readFile(file, 'utf8')] as [string, string]));
}

/** The process's entry point reads the environment; everything else takes its values from it. */
const READS_ENV = ['src/cli.ts', 'src/settings.ts'];

describe('the settings table', () => {
  it('holds every variable src/ names, or lists it as read as it is; and this test has cases for each', async () => {
    const named = new Set<string>();
    for (const text of await sources(path.join(REPO, 'src'))) {
      for (const m of text.matchAll(/\b(?:NIGHTSCORE|AWS)_[A-Z0-9_]+\b|\benv\.([A-Z][A-Z0-9_]*)|\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]/g)) named.add(m[1] ?? m[2] ?? m[0]);
    }
    const known = new Set<string>([...SETTING_NAMES, ...READ_AS_IS]);
    expect([...named].filter((n) => !known.has(n)).sort()).toEqual([]);
    expect(Object.keys(CASES).sort()).toEqual([...SETTING_NAMES].sort());
  });

  it('is read from the environment at the entry point alone: no other module of src/ names process.env', async () => {
    const readers = (await sourceFiles(path.join(REPO, 'src'))).filter(([, text]) => text.includes('process.env')).map(([file]) => file);
    expect(readers.filter((file) => !READS_ENV.includes(file)).sort()).toEqual([]);
    // The rule is not empty: the entry point does read it.
    expect(readers).toContain('src/cli.ts');
  });

  it('documents every setting where the settings are: docs/operations.md, "Queue settings" and "S3 configuration"', () => {
    const documented = section('docs/operations.md', 'Queue settings') + section('docs/operations.md', 'S3 configuration');
    expect(SETTING_NAMES.filter((n) => !documented.includes(`\`${n}\``))).toEqual([]);
  });

  it.each(rows)('%s=%j is refused, naming the variable, the value and the form', (name, value) => {
    const error = (() => {
      try {
        readSettings({ [name]: value });
      } catch (err) {
        return err as { code: string; message: string; column: string };
      }
      throw new Error(`${name}=${JSON.stringify(value)} was accepted`);
    })();
    expect(error.code).toBe(CODE[name] ?? 'BAD_ENV');
    expect(error.column).toBe(name);
    expect(error.message).toContain(name);
    if (name === 'NIGHTSCORE_UI_TOKEN') expect(error.message).toBe(`NIGHTSCORE_UI_TOKEN must be at least 16 characters, got ${value.length} characters`);
    else if (!CODE[name]) {
      expect(error.message.startsWith(`${name} must be `)).toBe(true);
      expect(error.message.endsWith(`, got ${JSON.stringify(value)}`)).toBe(true);
    }
    // The reader a command uses later parses it the same way.
    expect(() => setting({ [name]: value }, name)).toThrow(error.message);
  });

  it('reads each good value, and unset or empty as the default', () => {
    const env = Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, c.good[0]]));
    expect(readSettings(env)).toEqual(Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, c.good[1]])));
    const defaults = readSettings({});
    expect(readSettings(Object.fromEntries(SETTING_NAMES.map((n) => [n, '']))) as unknown).toEqual(defaults);
    expect(defaults).toMatchObject({ NIGHTSCORE_REDIS_URL: 'redis://127.0.0.1:6379', NIGHTSCORE_MODEL_CACHE_BYTES: 8 * 1024 ** 3, NIGHTSCORE_ALERT_WEBHOOK: undefined, AWS_MAX_ATTEMPTS: 5 });
  });

  it('names every bad setting at once', () => {
    expect(() => readSettings({ NIGHTSCORE_MODEL_CACHE_BYTES: '8GB', NIGHTSCORE_ALERT_WEBHOOK: 'not-a-url' })).toThrow(
      'NIGHTSCORE_MODEL_CACHE_BYTES must be a whole number of bytes from 1 to 9007199254740991, got "8GB"; NIGHTSCORE_ALERT_WEBHOOK must be an http:// or https:// URL, got "not-a-url"',
    );
  });
});

/** A TCP server standing in for Redis, S3 and the webhook: it counts connections and drops them. */
let tripwire: Server;
let port: number;
let connections = 0;
let ws: Workspace;
let job: string;
beforeAll(async () => {
  tripwire = createServer((socket: Socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => tripwire.listen(0, '127.0.0.1', r));
  port = (tripwire.address() as AddressInfo).port;
  ws = await Workspace.create();
  await ws.write('in/dt=2026-06-01/a.csv', 'id,x\n1,1\n');
  // A model in object storage and a webhook, both the tripwire: a run that starts connects to it.
  job = await ws.job('remote.yaml', {
    name: 'remote',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { uri: 's3://models/m.onnx' },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    alerts: { webhook: `http://127.0.0.1:${port}/hook`, on: ['failed', 'succeeded'] },
  });
});
afterAll(async () => {
  await new Promise((r) => tripwire?.close(r));
  await ws?.remove();
});

/** Starts the CLI with `env` pointing Redis and S3 at the tripwire; kills it if it has not exited within `ms`. */
async function startWith(args: string[], env: Record<string, string>, ms = 10_000): Promise<CliResult> {
  const cli = startCli(args, {
    NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${port}`,
    NIGHTSCORE_QUEUE_PREFIX: 'nstest-settings',
    NIGHTSCORE_HTTP_PORT: '0',
    NIGHTSCORE_MODEL_CACHE: ws.path('cache'),
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    AWS_ACCESS_KEY_ID: 'k',
    AWS_SECRET_ACCESS_KEY: 's',
    AWS_MAX_ATTEMPTS: '1',
    ...env,
  });
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), ms);
  try {
    return await cli.done;
  } finally {
    clearTimeout(timer);
  }
}

const commands: Array<[string, () => string[]]> = [
  ['worker', () => ['worker']],
  ['run', () => ['run', job, '--date', '2026-06-01']],
];

describe('a process started with a bad setting', () => {
  it.each(commands.flatMap(([command, args]) => [
    [command, 'NIGHTSCORE_MODEL_CACHE_BYTES', '8GB', args] as const,
    [command, 'NIGHTSCORE_ALERT_WEBHOOK', 'not-a-url', args] as const,
  ]))('%s with %s=%s exits 2 with BAD_ENV naming it, before connecting anywhere', async (_, name, value, args) => {
    connections = 0;
    const res = await startWith(args(), { [name]: value });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(new RegExp(`^nightscore: BAD_ENV: ${name} must be .*, got "${value}"$`, 'm'));
    expect(connections).toBe(0);
  }, 30_000);

  const everyBad = () => Object.fromEntries(rows.filter(([name], i) => rows.findIndex(([n]) => n === name) === i));
  it.each([...commands, ['ui', () => ['ui', '--port', '0']], ['schedule sync --watch', () => ['schedule', 'sync', ws.path('jobs'), '--watch']], ['model list', () => ['model', 'list']]] as Array<[string, () => string[]]>)(
    '%s with every setting bad names each of them, and starts nothing',
    async (_, args) => {
      connections = 0;
      const res = await startWith(args(), everyBad());
      expect(res.code, res.stderr).toBe(2);
      const line = res.stderr.split('\n').find((l) => l.startsWith('nightscore: '));
      expect(line).toMatch(/^nightscore: BAD_ENV: /);
      expect(SETTING_NAMES.filter((n) => !line!.includes(n))).toEqual([]);
      expect(connections).toBe(0);
    },
    30_000,
  );
});
