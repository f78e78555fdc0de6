import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO } from './support/workspace.js';

/**
 * There is no Docker engine here: the compose file is checked by docker-compose itself
 * (`config` parses and validates without an engine), and the image's entry point, node
 * dist/cli.js, is what every CLI and worker test runs.
 */
interface ComposeService {
  command: string[];
  environment: Record<string, string>;
  healthcheck?: { test: string[] };
}

function composeConfig(): { services: Record<string, ComposeService> } {
  const text = execFileSync('docker-compose', ['-f', path.join(REPO, 'docker-compose.yml'), 'config'], { encoding: 'utf8' });
  return parse(text) as { services: Record<string, ComposeService> };
}

describe('deployment shape', () => {
  it('docker-compose.yml is valid and runs Redis, MinIO with buckets, the schedule sync and two workers', () => {
    const { services } = composeConfig();
    expect(Object.keys(services).sort()).toEqual(['buckets', 'minio', 'redis', 'schedule', 'worker-a', 'worker-b']);
    const redis = services.redis!.command.join(' ');
    expect(redis).toContain('--maxmemory-policy noeviction');
    expect(redis).toContain('--appendonly yes');
    expect(services.buckets!.command.join(' ')).toMatch(/mc mb --ignore-existing local\/features local\/scores/);
    expect(services.schedule!.command).toEqual(['schedule', 'sync', '/app/jobs']);
    for (const name of ['worker-a', 'worker-b']) {
      const w = services[name]!;
      expect(w.command).toEqual(['worker', '--jobs-dir', '/app/jobs']);
      expect(w.environment.NIGHTSCORE_REDIS_URL).toBe('redis://redis:6379');
      expect(w.environment.AWS_ENDPOINT_URL_S3).toBe('http://minio:9000');
      expect(w.healthcheck!.test.join(' ')).toContain('/readyz');
    }
    for (const name of ['redis', 'minio']) expect(services[name]!.healthcheck).toBeDefined();
  });

  it('the Dockerfile is multi-stage on Node 22 slim, runs as a non-root user, and has a HEALTHCHECK', async () => {
    const text = await readFile(path.join(REPO, 'Dockerfile'), 'utf8');
    expect(text.match(/^FROM node:22-slim/gm)).toHaveLength(2);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^HEALTHCHECK /m);
    expect(text).toMatch(/npm ci .*--ignore-scripts/);
    expect(text).toMatch(/^ENTRYPOINT \["node", "--max-semi-space-size=2", "\/app\/dist\/cli\.js"\]$/m);
    // The process writes only its data folder and the temp folder (the model cache).
    expect(text).toMatch(/^RUN mkdir -p \/app\/data && chown node:node \/app\/data$/m);
    expect(text).toMatch(/^ENV NIGHTSCORE_MODEL_CACHE=\/tmp\//m);
  });

  it('.dockerignore keeps installed, built and data trees out of the build context', async () => {
    const ignored = (await readFile(path.join(REPO, '.dockerignore'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    for (const tree of ['.git', 'node_modules', 'dist', 'data', '.bench']) expect(ignored).toContain(tree);
    // What the Dockerfile copies must not be ignored.
    const copied = [...(await readFile(path.join(REPO, 'Dockerfile'), 'utf8')).matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    for (const source of copied) expect(ignored).not.toContain(source);
  });
});
