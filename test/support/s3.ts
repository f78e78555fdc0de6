import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { createS3Client } from '../../src/storage/s3.js';
import { readEnvironment, readSettings, useEnvironment } from '../../src/settings.js';
import { resetStorageCache } from '../../src/storage/open.js';

/** A real S3-speaking server (s3rver) on a random loopback port, and the env that points nightscore at it. */
export interface S3Server {
  endpoint: string;
  env: Record<string, string>;
  client: S3Client;
  put(bucket: string, key: string, body: string | Buffer): Promise<void>;
  get(bucket: string, key: string): Promise<string>;
  keys(bucket: string, prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<S3Server> {
  const directory = await mkdtemp(path.join(tmpdir(), 'nightscore-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [] });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  Object.assign(process.env, env);
  useEnvironment(readEnvironment(process.env));
  resetStorageCache();
  const client = createS3Client(readSettings(env));
  for (const Bucket of buckets) await client.send(new CreateBucketCommand({ Bucket }));
  return {
    endpoint,
    env,
    client,
    put: async (Bucket, Key, Body) => void (await client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Buffer.byteLength(Body) }))),
    get: async (Bucket, Key) => (await (await client.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString()),
    keys: async (Bucket, Prefix) => ((await client.send(new ListObjectsV2Command({ Bucket, Prefix }))).Contents ?? []).map((o) => o.Key!).sort(),
    close: async () => {
      client.destroy();
      resetStorageCache();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
