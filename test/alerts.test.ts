import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * alerts: a webhook receiver started here gets exactly one small JSON post per failed run
 * (Slack-compatible `text`), and a receiver that is down, or answers 500, does not fail or
 * change the run.
 */

interface Post {
  status: number;
  body: Record<string, unknown>;
}

let ws: Workspace;
let tq: TestQueue;
let server: Server;
let url: string;
const posts: Post[] = [];
let answer = 200;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      posts.push({ status: answer, body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  // Object storage that never answers: a failure the queue tries three times.
  tq = await createTestQueue({ NIGHTSCORE_ATTEMPTS: '3', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' });
  await tq.startWorker();
});
afterAll(async () => {
  await tq?.close();
  await new Promise((r) => server?.close(r));
  await ws?.remove();
});

const job = (name: string, alerts: Record<string, unknown>, limits?: Record<string, unknown>) =>
  ws.job(`${name}.yaml`, { name, input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: `out/${name}/dt={date}/`, format: 'csv' }, alerts, ...(limits ? { limits } : {}) });

describe('alerts', () => {
  it('posts once per failed run on the queue, with the job, date, error, rows and manifest; a limit breach as limits', async () => {
    posts.length = 0;
    const file = await job('alerted', { webhook: url });
    expect((await runCli(['run', file, '--date', '2026-03-01', '--queue', '--wait'], { env: tq.env })).code).toBe(1);
    await ws.write('in/dt=2026-03-02/a.csv', 'id,x\n1,1\n2,oops\n3,2\n');
    const limited = await job('limited', { webhook: url, on: ['limits'] }, { max_reject_rate: 0 });
    expect((await runCli(['run', limited, '--date', '2026-03-02', '--queue', '--wait'], { env: tq.env })).code).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(posts.map((p) => [p.body.job, p.body.date, (p.body.error as { code: string }).code])).toEqual([
      ['alerted', '2026-03-01', 'INPUT_NOT_FOUND'],
      ['limited', '2026-03-02', 'REJECT_RATE_EXCEEDED'],
    ]);
    expect(posts[0]!.body).toMatchObject({ status: 'failed', text: expect.stringMatching(/^nightscore: alerted 2026-03-01 failed: INPUT_NOT_FOUND: no input for 2026-03-01/), rows: null, manifest_uri: null });
    expect(posts[1]!.body).toMatchObject({ rows: { read: 3, scored: 2, rejected: 1 }, manifest_uri: expect.stringMatching(/\/out\/limited\/dt=2026-03-02\/_manifest\.json$/) });
  });

  it('a run the queue tries three times, failing each time, is alerted once, at the end', async () => {
    posts.length = 0;
    const file = await ws.job('flaky.yaml', { name: 'flaky', input: { uri: 's3://gone/dt={date}/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/flaky/dt={date}/', format: 'csv' }, alerts: { webhook: url } });
    expect((await runCli(['run', file, '--date', '2026-03-05', '--queue', '--wait'], { env: tq.env })).code).toBe(1);
    const [status] = await tq.status(file, '2026-03-05', '2026-03-05');
    expect(status).toMatchObject({ state: 'failed', attempts: 3, error: expect.stringMatching(/^S3_UNAVAILABLE/) });
    await new Promise((r) => setTimeout(r, 500));
    expect(posts.map((p) => (p.body.error as { code: string }).code)).toEqual(['S3_UNAVAILABLE']);
  }, 60_000);

  it('a receiver that answers 500 is tried again, a few times, and the run is not affected; one that is down neither', async () => {
    posts.length = 0;
    answer = 500;
    await ws.write('in/dt=2026-03-03/a.csv', 'id,x\n1,1\n');
    const file = await job('noisy', { webhook: url, on: ['succeeded'] });
    const res = await runCli(['run', file, '--date', '2026-03-03', '--queue', '--wait'], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);
    await tq.waitFor(file, '2026-03-03', '2026-03-03', allIn(['succeeded']));
    // The worker says so after its last try: then, and not before, every try has been posted.
    for (const deadline = Date.now() + 15_000; !tq.workerLogs().includes('alert not delivered') && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect(tq.workerLogs()).toContain('alert not delivered (the run is not affected)');
    expect(posts.length).toBe(3);
    answer = 200;

    // An env webhook that is not even a URL stops the command at start, before it runs anything
    // (every alert would be lost); see settings.test.ts.
    const plain = await ws.job('plain.yaml', { name: 'plain', input: { uri: 'in/dt={date}/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/plain/dt={date}/', format: 'csv' } });
    const broken = await runCli(['run', plain, '--date', '2026-03-09'], { env: { NIGHTSCORE_LOG_LEVEL: 'warn', NIGHTSCORE_ALERT_WEBHOOK: 'not a url' } });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('nightscore: BAD_ENV: NIGHTSCORE_ALERT_WEBHOOK must be an http:// or https:// URL, got "not a url"');
    expect(broken.stderr).not.toContain('INPUT_NOT_FOUND');

    const down = await job('down', { webhook: 'http://127.0.0.1:9/hook', on: ['succeeded'] });
    const inProcess = await runCli(['run', down, '--date', '2026-03-03'], { env: { NIGHTSCORE_LOG_LEVEL: 'warn' } });
    expect(inProcess.code, inProcess.stderr).toBe(0);
    expect(inProcess.stderr).toContain('alert not delivered (the run is not affected)');
    expect(inProcess.stderr).not.toContain('/hook');
  }, 60_000);
});

/** An HTTP server that records each request it gets and answers it with `answer`. */
function recorder(answer: (res: ServerResponse) => void): Promise<{ server: Server; url: string; hits: Array<{ method: string; body: string }> }> {
  const hits: Array<{ method: string; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', body });
      answer(res);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits })));
}

describe('alerts to a webhook that redirects', () => {
  // Where every redirect points: it must never hear from nightscore.
  let elsewhere: Awaited<ReturnType<typeof recorder>>;
  const redirectors: Server[] = [];
  beforeAll(async () => {
    elsewhere = await recorder((res) => res.writeHead(200).end());
  });
  afterAll(async () => {
    await Promise.all(redirectors.map((r) => new Promise((done) => r.close(done))));
    await new Promise((r) => elsewhere?.server.close(r));
  });

  it.each([301, 302, 307, 308])('a webhook answering %i is a failed delivery naming where it points, tried once; nothing follows it', async (status) => {
    const { server, url: origin, hits } = await recorder((res) => res.writeHead(status, { location: `${elsewhere.url}/stolen` }).end());
    redirectors.push(server);
    await ws.write(`in/dt=2026-03-1${status % 10}/a.csv`, 'id,x\n1,1\n');
    const file = await job(`moved${status}`, { webhook: `${origin}/hook`, on: ['succeeded'] });
    const res = await runCli(['run', file, '--date', `2026-03-1${status % 10}`], { env: { NIGHTSCORE_LOG_LEVEL: 'info' } });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => /^alert/.test(String(l.msg)))).toEqual([
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/^alert not delivered: the webhook answered with a redirect, which is not followed/), status, location: elsewhere.url, webhook: origin }),
    ]);
    expect(hits.map((h) => h.method)).toEqual(['POST']);
    expect(elsewhere.hits).toEqual([]);
    // The webhook's path may be its secret, and so may the one it moved to.
    expect(res.stderr).not.toContain('/hook');
    expect(res.stderr).not.toContain('/stolen');
  });
});
