import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Credentials never reach stderr (logs or error text), whatever fails. Every secret below is
 * configured the way a deployment configures it, and every test runs the real CLI or worker
 * with debug logs and asserts that none of them appears in what the process printed.
 */
const AWS = {
  AWS_ACCESS_KEY_ID: 'AKIANIGHTSCORETEST01',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzz9secret',
  AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjSessionTokenValue/+=42',
};
const REDIS_PASS = 'r3dis-Pa55word';
const SIGNATURE = '5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7';
const SIGNED_URL =
  'https://features.s3.amazonaws.com/churn/day.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
  `&X-Amz-Credential=${AWS.AWS_ACCESS_KEY_ID}%2F20261122%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261122T020000Z` +
  `&X-Amz-Expires=3600&X-Amz-Security-Token=${encodeURIComponent(AWS.AWS_SESSION_TOKEN)}&X-Amz-SignedHeaders=host&X-Amz-Signature=${SIGNATURE}`;

/** Every form a secret could be printed in: as is, percent-encoded, JSON-escaped. */
function expectNoSecrets(text: string, secrets: string[]): void {
  for (const s of secrets) {
    for (const form of new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])) {
      expect(text.includes(form), `"${form}" leaked in:\n${text}`).toBe(false);
    }
  }
}

const ALL = [AWS.AWS_ACCESS_KEY_ID, AWS.AWS_SECRET_ACCESS_KEY, AWS.AWS_SESSION_TOKEN, REDIS_PASS, SIGNATURE];

let ws: Workspace;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await ws?.remove();
});

describe('credentials never in logs', () => {
  it('the logger scrubs URL passwords, signed-URL parameters and the process’s secrets, in messages and error causes', () => {
    // The real logger, in a process of its own with secrets in its environment, fed what
    // careless code might log: URLs in messages, errors with causes, credential fields.
    const script = `
      import { createLogger } from ${JSON.stringify(path.join(REPO, 'src/observe/log.ts'))};
      import { secretsFromEnv, useSecrets } from ${JSON.stringify(path.join(REPO, 'src/redact.ts'))};
      // What a process's entry point does first (cli.ts): its secrets, from its environment.
      useSecrets(secretsFromEnv(process.env));
      const log = createLogger({ interactive: false });
      const cause = new Error('GET ${SIGNED_URL} failed');
      const err = new Error('connect to redis://ops:${REDIS_PASS}@10.0.0.5:6380/0 failed', { cause });
      log.error({ err }, 'cannot reach redis://:${REDIS_PASS}@10.0.0.5:6380');
      log.warn({ config: { password: '${REDIS_PASS}', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY } }, 'config');
      log.info({ env: { ...process.env } }, 'environment');
      log.info('key ' + process.env.AWS_SECRET_ACCESS_KEY + ' token ' + JSON.stringify(process.env.AWS_SESSION_TOKEN));
    `;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, ...AWS, NIGHTSCORE_REDIS_URL: `redis://ops:${REDIS_PASS}@10.0.0.5:6380`, NIGHTSCORE_LOG_LEVEL: 'debug' },
      encoding: 'utf8',
    });
    expect(res.status).toBe(0);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines) JSON.parse(line); // still JSON lines
    expectNoSecrets(res.stderr, [AWS.AWS_SECRET_ACCESS_KEY, AWS.AWS_SESSION_TOKEN, REDIS_PASS, SIGNATURE, `${AWS.AWS_ACCESS_KEY_ID}%2F20261122`]);
    expect(res.stderr).toContain('redis://ops:[redacted]@10.0.0.5:6380');
    expect(res.stderr).toContain('X-Amz-Signature=[redacted]');
    expect(res.stderr).toContain('caused by'); // the cause is logged, scrubbed
  });

  it('nightscore run: a presigned URL pasted as the input fails with an error that names it, scrubbed', async () => {
    const job = await ws.job('signed.yaml', {
      name: 'signed',
      input: { uri: SIGNED_URL, format: 'csv' },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'out/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['run', job, '--date', '2026-05-01'], { env: { ...AWS, NIGHTSCORE_LOG_LEVEL: 'debug' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('nightscore: JOB_INVALID: ');
    expect(res.stderr).toContain('https://features.s3.amazonaws.com/churn/day.csv?');
    expectNoSecrets(res.stdout + res.stderr, ALL);
  });

  describe('with a password-protected Redis', () => {
    let server: RedisServer;
    let tq: TestQueue | undefined;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--requirepass', REDIS_PASS] });
    });
    afterEach(async () => {
      await tq?.close();
      tq = undefined;
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('a worker and the CLI log the Redis URL and a failed run without the password or AWS secrets', async () => {
      tq = await createTestQueue({ ...AWS, NIGHTSCORE_REDIS_URL: `redis://default:${REDIS_PASS}@127.0.0.1:${server.port}`, NIGHTSCORE_LOG_LEVEL: 'debug', NIGHTSCORE_ATTEMPTS: '1' });
      // The run fails on the worker (the day has a feature column missing), so the worker logs the failure.
      await ws.write('in/dt=2026-05-02/a.csv', csvOf(20, 1).replace('tenure_months', 'tenure'));
      const job = await ws.job('creds.yaml', {
        name: 'creds',
        input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
        model: { path: `${REPO}/models/churn/model.onnx` },
        output: { uri: 'out/dt={date}/', format: 'csv' },
      });
      const worker = await tq.startWorker();
      const res = await runCli(['run', job, '--date', '2026-05-02', '--queue', '--wait'], { env: tq.env });
      expect(res.code).toBe(1);
      expect(res.stdout).toContain('INPUT_MISSING_COLUMN');
      await tq.close();
      tq = undefined;
      expect(worker.log()).toContain(`"redis":"redis://default:[redacted]@127.0.0.1:${server.port}"`);
      expect(worker.log()).toContain('run failed');
      expectNoSecrets(worker.log() + res.stdout + res.stderr, ALL);
    });

    it('a wrong password: the worker and the CLI say so without printing it, or the command that carried it', async () => {
      const wrong = 'stale-Pa55word-from-last-rotation';
      const env = { ...AWS, NIGHTSCORE_REDIS_URL: `redis://default:${wrong}@127.0.0.1:${server.port}`, NIGHTSCORE_LOG_LEVEL: 'debug' };
      const job = await ws.job('creds.yaml', { name: 'creds', input: { uri: 'in/', format: 'csv' }, model: { path: 'm.onnx', features: ['a'] }, output: { uri: 'out/', format: 'csv' } });
      for (const args of [['worker', '--port', '0'], ['run', job, '--date', '2026-05-03', '--queue'], ['backfill', job, '--from', '2026-05-01', '--to', '2026-05-03']]) {
        const res = await runCli(args, { env });
        expect(res.code, res.stderr).toBe(2);
        expect(res.stderr).toContain('REDIS_AUTH');
        expectNoSecrets(res.stdout + res.stderr, [...ALL, wrong]);
      }
    });
  });
});
