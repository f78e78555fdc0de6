import { spawn } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daysEnding } from '../src/job/dates.js';
import type { RunManifest } from '../src/run/manifest.js';
import { resetStorageCache } from '../src/storage/open.js';
import { startConditionalProxy, type ConditionalProxy } from './support/conditional-proxy.js';
import { composeConfig } from './support/compose.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { CLI, REPO, type CliResult } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * The compose stack without Docker: its services' own commands and environment, read from
 * `docker-compose config`, run by the CLI (the image's entry point) against the suite's S3
 * server and Redis. Only the addresses change: the jobs mount is the repo's deploy/jobs, MinIO
 * is s3rver (behind a proxy that does conditional writes as MinIO does), Redis a queue of the
 * test's own. As root, the processes run as an unprivileged user that can write nowhere but a
 * temp folder: the image needs no write access outside its data folders.
 */
const { services } = composeConfig();
const JOBS = path.join(REPO, 'deploy/jobs');
const DATES = daysEnding(new Date(Date.now() - 86_400_000).toISOString().slice(0, 10), 7);
const asUser = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : {};

let s3: S3Server;
let proxy: ConditionalProxy;
let tq: TestQueue;
let scratch: string;
let env: Record<string, string>;

beforeAll(async () => {
  s3 = await startS3(['features', 'scores', 'models']);
  proxy = await startConditionalProxy(s3.endpoint, s3.client);
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
  useEnvironment(readEnvironment(process.env));
  resetStorageCache();
  tq = await createTestQueue();
  scratch = await mkdtemp(path.join(tmpdir(), 'nightscore-compose-'));
  if (asUser.uid !== undefined) await chown(scratch, asUser.uid, asUser.gid);
  env = {
    // The names compose sets, pointed at this test's servers.
    ...services.seed!.environment,
    NIGHTSCORE_REDIS_URL: tq.env.NIGHTSCORE_REDIS_URL!,
    NIGHTSCORE_QUEUE_PREFIX: tq.env.NIGHTSCORE_QUEUE_PREFIX!,
    AWS_ENDPOINT_URL_S3: proxy.endpoint,
    AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY!,
    NIGHTSCORE_MODEL_CACHE: path.join(scratch, 'models'),
    TMPDIR: scratch,
    HOME: scratch,
  };
});
afterAll(async () => {
  await tq?.close();
  await proxy?.close();
  await s3?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A compose service's command, with the jobs mount mapped to the repo's folder. */
function commandOf(service: string): string[] {
  return services[service]!.command.map((a) => (a.startsWith('/etc/nightscore/jobs') ? path.join(JOBS, path.relative('/etc/nightscore/jobs', a)) : a));
}

function start(args: string[], extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: scratch, env: { PATH: process.env.PATH!, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'], ...asUser });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

describe('the compose stack, service by service', () => {
  it('seeds a week into s3://features, registers churn@production once, its backfill scores every day to s3://scores on two workers, and the page shows them', async () => {
    const seed = await start(commandOf('seed')).done;
    expect(seed.code, seed.stderr).toBe(0);
    expect(seed.stderr).toContain('registered the example model as churn/1 (churn@production) in s3://models/registry/');
    expect(seed.stdout).toMatch(/^demo input written for 7 of 7 date\(s\); score them with: nightscore backfill /);
    for (const date of DATES) expect(await s3.keys('features', `churn/dt=${date}/`)).toEqual([`churn/dt=${date}/customers-000.csv`, `churn/dt=${date}/customers-001.csv`]);
    // A second `docker compose up` seeds again: the input there and the version the alias
    // points to stay as they are (workers may be scoring those dates).
    const again = await start(commandOf('seed')).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('registered');
    expect(again.stderr).not.toContain('writing a demo day');
    expect(again.stdout).toMatch(/^demo input written for 0 of 7 date\(s\)/);
    expect(again.stderr.match(/: input already there \(s3:\/\/features\/churn\/dt=.*\/\); left as it is$/gm)).toHaveLength(7);

    const workers = ['worker-a', 'worker-b'].map((name) => start([...commandOf(name), '--port', '0'], { ...services[name]!.environment, ...env, NIGHTSCORE_HTTP_PORT: '0', NIGHTSCORE_LOG_LEVEL: 'info' }));
    try {
      const backfill = await start(commandOf('backfill')).done;
      expect(backfill.code, `${backfill.stderr}\n${workers.map((w) => w.output()).join('\n')}`).toBe(0);
      expect(backfill.stderr).toMatch(/7 succeeded of 7 dates/);
      for (const date of DATES) {
        const keys = await s3.keys('scores', `churn/dt=${date}/`);
        expect(keys).toContain(`churn/dt=${date}/_SUCCESS`);
        const manifest = JSON.parse(await s3.get('scores', `churn/dt=${date}/_manifest.json`)) as RunManifest;
        expect(manifest).toMatchObject({ status: 'succeeded', input: { uri: `s3://features/churn/dt=${date}/` }, model: { ref: 'models:/churn@production', name: 'churn', version: 1, alias: 'production' } });
        expect(manifest.rows.read).toBe(50_000);
        expect(manifest.rows.scored + manifest.rows.rejected).toBe(50_000);
        expect(manifest.rows.rejected).toBeGreaterThan(0);
      }
      // Both workers took chunks: the stack scales by adding workers.
      for (const w of workers) expect(w.output()).toContain('"msg":"chunk scored"');

      // The page, as compose runs it (every address, so its token), shows the week scored.
      const ui = start(commandOf('ui').map((a, i, all) => (all[i - 1] === '--port' ? '0' : a)), { ...services.ui!.environment, ...env, NIGHTSCORE_LOG_LEVEL: 'info' });
      try {
        const deadline = Date.now() + 20_000;
        let url: string | undefined;
        while (!(url = /"url":"([^"]+)".*"msg":"ui started"/.exec(ui.output())?.[1]) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(url, ui.output()).toBeDefined();
        const token = services.ui!.environment.NIGHTSCORE_UI_TOKEN!;
        expect((await fetch(`${url}api/dates?from=${DATES[0]}&to=${DATES.at(-1)}`)).status).toBe(401);
        const body = (await (await fetch(`${url}api/dates?from=${DATES[0]}&to=${DATES.at(-1)}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { jobs: Array<{ job: string; dates: Array<{ date: string; cell: string }> }> };
        expect(body.jobs.map((j) => j.job)).toEqual(['churn-daily']);
        expect(body.jobs[0]!.dates.map((d) => [d.date, d.cell])).toEqual(DATES.map((d) => [d, 'succeeded']));
      } finally {
        ui.child.kill('SIGTERM');
        expect((await ui.done).code, ui.output()).toBe(0);
      }
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
      const ends = await Promise.all(workers.map((w) => w.done));
      // Nothing tried to write outside the temp folder (it would have failed, and said so).
      for (const end of ends) expect(`${end.stdout}${end.stderr}`).not.toMatch(/EACCES|EROFS|permission denied/i);
    }
  }, 180_000);

  it('a model cache it cannot write is a clear error naming NIGHTSCORE_MODEL_CACHE, not INTERNAL', async () => {
    const readOnly = path.join(scratch, 'read-only');
    await mkdir(readOnly, { mode: 0o555 });
    const job = path.join(JOBS, 'churn-daily.yaml');
    const res = await start(['run', job, '--date', DATES[0]!], { NIGHTSCORE_MODEL_CACHE: path.join(readOnly, 'models') }).done;
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`nightscore: MODEL_CACHE_UNWRITABLE: cannot write the model cache ${path.join(readOnly, 'models')}: EACCES`);
    expect(res.stderr).toContain('Set NIGHTSCORE_MODEL_CACHE to a folder this process can write');
  });
});
