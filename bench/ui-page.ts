/**
 * The page of runs by date, as its own process: `--jobs` job files with `--dates` succeeded
 * dates each (one real manifest, copied), in local folders or on an S3 server (s3rver, started
 * here), served by the UI on a Redis queue prefix of its own. Prints JSON (seconds):
 *   cold         the default page requested as the server starts (the start's own read of it
 *                is under way: the request shares it)
 *   warm         median of --requests pages once the manifests are cached
 *   revalidate   median of --requests pages whose cache has lapsed (every date looked at again)
 *
 *   tsx bench/ui-page.ts --storage file|s3 [--jobs 10] [--dates 30] [--requests 7] [--redis redis://127.0.0.1:6379]
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { queueConfig } from '../src/queue/config.js';
import { readEnvironment, readSettings, useEnvironment } from '../src/settings.js';
import { openLocation } from '../src/storage/open.js';
import { createS3Client } from '../src/storage/s3.js';
import { readText } from '../src/storage/storage.js';
import { startUiServer } from '../src/ui/server.js';
import { CLI, REPO } from './procs.js';

const { values } = parseArgs({
  options: {
    storage: { type: 'string', default: 'file' },
    jobs: { type: 'string', default: '10' },
    dates: { type: 'string', default: '30' },
    requests: { type: 'string', default: '7' },
    redis: { type: 'string', default: process.env.NIGHTSCORE_REDIS_URL || 'redis://127.0.0.1:6379' },
  },
});
const jobs = Number(values.jobs);
const days = Number(values.dates);
const requests = Number(values.requests);
const s3 = values.storage === 's3';
const root = path.join(REPO, '.bench', 'out', `ui-${values.storage}`);
rmSync(root, { recursive: true, force: true });
mkdirSync(path.join(root, 'jobs'), { recursive: true });

// The default page: the dates ending at yesterday, the logical date of a nightly job.
const DAY = 86_400_000;
const dates = Array.from({ length: days }, (_, i) => new Date(Date.now() - (days - i) * DAY).toISOString().slice(0, 10));
const model = path.join(REPO, 'models', 'churn', 'model.onnx');
const features = [...CHURN_FEATURES];

let server: S3rver | undefined;
const env: Record<string, string> = {};
if (s3) {
  server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: path.join(root, 's3'), configureBuckets: [] });
  const { port } = (await server.run()) as { port: number };
  Object.assign(env, { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
  Object.assign(process.env, env);
}
// This process reads the manifests and serves the UI: it is an entry point, so it reads its settings here.
useEnvironment(readEnvironment(process.env));
const outputOf = (job: number) => (s3 ? `s3://scores/job${job}/dt={date}/` : `${path.join(root, 'out', `job${job}`)}/dt={date}/`);
for (let j = 0; j < jobs; j++) {
  writeFileSync(
    path.join(root, 'jobs', `job${j}.yaml`),
    `name: job${j}\ninput: { uri: ${JSON.stringify(`${root}/in/dt={date}/`)}, format: csv, key: [customer_id] }\nmodel: { path: ${JSON.stringify(model)} }\noutput: { uri: ${JSON.stringify(outputOf(j))}, format: csv }\n`,
  );
}

// One real run; its manifest, renamed, stands for every date of every job.
mkdirSync(path.join(root, 'in', `dt=${dates[0]}`), { recursive: true });
const rows = Array.from({ length: 1_000 }, (_, i) => [`c${i}`, ...features.map((_, f) => ((i * 7 + f * 3) % 40) / 4)].join(','));
writeFileSync(path.join(root, 'in', `dt=${dates[0]}`, 'a.csv'), `customer_id,${features.join(',')}\n${rows.join('\n')}\n`);
const client = s3 ? createS3Client(readSettings(process.env)) : undefined;
if (client) await client.send(new CreateBucketCommand({ Bucket: 'scores' }));
// Asynchronously: the S3 server answering it runs in this process.
await promisify(execFile)(process.execPath, [CLI, 'run', path.join(root, 'jobs', 'job0.yaml'), '--date', dates[0]!], { env: { ...process.env, ...env, NIGHTSCORE_LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
const written = openLocation(`${outputOf(0).replace('{date}', dates[0]!)}_manifest.json`);
const first = await readText(written.storage, written.key);
const puts: Array<Promise<unknown>> = [];
for (let j = 0; j < jobs; j++) {
  for (const date of dates) {
    const body = first.replaceAll(dates[0]!, date).replaceAll('"job0"', `"job${j}"`).replaceAll('/job0/', `/job${j}/`);
    if (client) {
      puts.push(client.send(new PutObjectCommand({ Bucket: 'scores', Key: `job${j}/dt=${date}/_manifest.json`, Body: body, ContentLength: Buffer.byteLength(body) })));
      puts.push(client.send(new PutObjectCommand({ Bucket: 'scores', Key: `job${j}/dt=${date}/_SUCCESS`, Body: '', ContentLength: 0 })));
    } else {
      const dir = path.join(root, 'out', `job${j}`, `dt=${date}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, '_manifest.json'), body);
      writeFileSync(path.join(dir, '_SUCCESS'), '');
    }
  }
  await Promise.all(puts.splice(0));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function page(url: string): Promise<{ seconds: number; cells: number; bytes: number }> {
  const t0 = performance.now();
  const body = await (await fetch(url, { headers: { accept: 'text/html' } })).text();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, cells: body.match(/data-state="succeeded"/g)?.length ?? 0, bytes: body.length };
}
const config = queueConfig(readSettings({ NIGHTSCORE_REDIS_URL: values.redis, NIGHTSCORE_QUEUE_PREFIX: `nsbench-ui-${randomUUID().slice(0, 8)}` }));
const jobsDir = path.join(root, 'jobs');

const ui = await startUiServer({ jobsDir, port: 0, config });
const cold = await page(ui.url);
if (cold.cells !== jobs * days) throw new Error(`the page shows ${cold.cells} succeeded dates, not ${jobs * days}`);
const warm: number[] = [];
for (let i = 0; i < requests; i++) warm.push((await page(ui.url)).seconds);
await ui.close();

const lapsed = await startUiServer({ jobsDir, port: 0, config, cache: { finishedTtlMs: 0, activeTtlMs: 0 } });
await page(lapsed.url);
const revalidate: number[] = [];
for (let i = 0; i < requests; i++) revalidate.push((await page(lapsed.url)).seconds);
await lapsed.close();
await server?.close();
client?.destroy();

process.stdout.write(`${JSON.stringify({ cells: cold.cells, html_bytes: cold.bytes, cold: cold.seconds, warm: median(warm), revalidate: median(revalidate) })}\n`);
// Idle sockets of the AWS SDK would hold the process open a little while.
process.exit(0);
