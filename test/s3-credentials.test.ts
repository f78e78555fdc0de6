import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type S3Server } from './support/s3.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Missing or refused AWS credentials are S3_CREDENTIALS (a configuration error, exit 2, never
 * retried), naming the sources the SDK tried, not S3_UNAVAILABLE "usually transient".
 */

let ws: Workspace;
let s3: S3Server;
beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['features']);
  await s3.put('features', 'dt=2026-02-01/a.csv', 'id,x\n1,2\n');
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
});
afterAll(async () => {
  await s3?.close();
  await ws?.remove();
});

const job = () => ws.job('s3.yaml', { name: 's3', input: { uri: 's3://features/dt={date}/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/dt={date}/', format: 'csv' } });

describe('AWS credentials', () => {
  it('none found: S3_CREDENTIALS naming the sources tried, exit 2, at once', async () => {
    const file = await job();
    const started = Date.now();
    const res = await runCli(['run', file, '--date', '2026-02-01'], {
      env: {
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: 'nightscore-test-none',
        AWS_SHARED_CREDENTIALS_FILE: ws.path('no-credentials'),
        AWS_CONFIG_FILE: ws.path('no-config'),
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('nightscore: S3_CREDENTIALS: cannot list s3://features/dt=2026-02-01/: no AWS credentials were found; sources tried: environment (none of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN is set); shared files');
    expect(res.stderr).toContain('EC2 instance metadata (disabled)');
    expect(res.stderr).not.toContain('usually transient');
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('refused by the server: S3_CREDENTIALS saying which, the secret never printed', async () => {
    const file = await job();
    const res = await runCli(['run', file, '--date', '2026-02-01'], { env: { ...s3.env, AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1', AWS_SECRET_ACCESS_KEY: 'not-the-secret-at-all' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/nightscore: S3_CREDENTIALS: cannot list s3:\/\/features\/dt=2026-02-01\/: S3 rejected the credentials \((InvalidAccessKeyId|SignatureDoesNotMatch)/);
    expect(res.stderr).toContain('environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set)');
    expect(res.stderr).not.toContain('not-the-secret-at-all');
  });
});
