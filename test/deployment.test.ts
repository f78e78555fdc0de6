import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { composeConfig } from './support/compose.js';
import { REPO } from './support/workspace.js';

/**
 * There is no Docker engine here: the compose file is checked by docker-compose itself
 * (`config` parses and validates without an engine), and the image's entry point, node
 * dist/cli.js, is what every CLI and worker test runs (compose-job.test.ts runs the compose
 * services' commands).
 */
describe('deployment shape', () => {
  it('docker-compose.yml is valid: Redis, MinIO with buckets, a seed, the schedule watch, two workers, a backfill and the page', () => {
    const { services } = composeConfig();
    expect(Object.keys(services).sort()).toEqual(['backfill', 'buckets', 'minio', 'redis', 'schedule', 'seed', 'ui', 'worker-a', 'worker-b']);
    const redis = services.redis!.command.join(' ');
    expect(redis).toContain('--maxmemory-policy noeviction');
    expect(redis).toContain('--appendonly yes');
    expect(services.buckets!.command.join(' ')).toMatch(/mc mb --ignore-existing local\/features local\/scores local\/models$/);
    const ours = Object.entries(services).filter(([, s]) => s.image === 'nightscore:local');
    expect(ours.map(([name]) => name).sort()).toEqual(['backfill', 'schedule', 'seed', 'ui', 'worker-a', 'worker-b']);
    for (const [name, s] of ours) {
      // The job files are the repo's deploy/jobs, where Kubernetes mounts its ConfigMap.
      expect(s.volumes, name).toEqual([`${path.join(REPO, 'deploy/jobs')}:/etc/nightscore/jobs:ro`]);
      expect(s.build, name).toBeDefined();
      expect(s.environment.NIGHTSCORE_REDIS_URL).toBe('redis://redis:6379');
      expect(s.environment.AWS_ENDPOINT_URL_S3).toBe('http://minio:9000');
      expect(s.environment.NIGHTSCORE_REGISTRY_URI).toBe('s3://models/registry/');
      // Every file a command names is one of the mounted job files.
      for (const arg of s.command.filter((a) => a.startsWith('/etc/nightscore/jobs'))) expect(existsSync(path.join(REPO, 'deploy/jobs', path.relative('/etc/nightscore/jobs', arg))), arg).toBe(true);
      // Long-running services check readiness; the others switch the image's check off.
      // (`disable: true` reads back as test: [NONE].)
      const check = s.healthcheck?.disable || s.healthcheck?.test?.[0] === 'NONE' ? 'none' : (s.healthcheck?.test ?? []).join(' ');
      expect(check, name).toMatch(name.startsWith('worker') ? /\/readyz/ : name === 'ui' ? /\/healthz/ : /^none$/);
    }
    expect(services['worker-a']!.command).toEqual(['worker', '--jobs-dir', '/etc/nightscore/jobs']);
    expect(services.schedule!.command).toEqual(['schedule', 'sync', '/etc/nightscore/jobs', '--watch']);
    expect(services.seed!.command.slice(0, 3)).toEqual(['demo', '--job', '/etc/nightscore/jobs/churn-daily.yaml']);
    expect(services.backfill!.depends_on).toMatchObject({ seed: { condition: 'service_completed_successfully' }, 'worker-a': { condition: 'service_healthy' } });
    // Published on loopback only; the page asks for its token anyway (it listens on 0.0.0.0 inside).
    expect(services.ui!.ports).toHaveLength(1);
    expect(JSON.stringify(services.ui!.ports)).toMatch(/127\.0\.0\.1.*8080/);
    expect(services.ui!.environment.NIGHTSCORE_UI_TOKEN).toBeTruthy();
    for (const name of ['redis', 'minio']) expect(services[name]!.healthcheck).toBeDefined();
  });

  it('the Dockerfile is multi-stage on Node 22 slim, runs as a non-root user, and has a HEALTHCHECK', async () => {
    const text = await readFile(path.join(REPO, 'Dockerfile'), 'utf8');
    expect(text.match(/^FROM node:22-slim/gm)).toHaveLength(2);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n.*\/readyz/m);
    expect(text).toMatch(/npm ci .*--ignore-scripts/);
    expect(text).toMatch(/^ENTRYPOINT \["node", "--max-semi-space-size=2", "\/app\/dist\/cli\.js"\]$/m);
    // The process writes only its data folder and the temp folder (the model cache).
    expect(text).toMatch(/^RUN mkdir -p \/app\/data && chown node:node \/app\/data$/m);
    expect(text).toMatch(/^ENV NIGHTSCORE_MODEL_CACHE=\/tmp\//m);
  });

  it("the image has the locale skl2onnx's text models lowercase in (en_US.UTF-8), installed in the runtime stage", async () => {
    const text = await readFile(path.join(REPO, 'Dockerfile'), 'utf8');
    const runtime = text.slice(text.lastIndexOf('FROM node:22-slim'));
    expect(runtime).toMatch(/apt-get install -y --no-install-recommends locales/);
    expect(runtime).toMatch(/sed -i 's\/\^# \*en_US\.UTF-8 UTF-8\/en_US\.UTF-8 UTF-8\/' \/etc\/locale\.gen && locale-gen/);
    // Before USER node: apt and locale-gen need root.
    expect(runtime.indexOf('locale-gen')).toBeLessThan(runtime.indexOf('USER node'));
  });

  it('.dockerignore keeps installed, built and data trees out of the build context', async () => {
    const ignored = (await readFile(path.join(REPO, '.dockerignore'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    for (const tree of ['.git', 'node_modules', 'dist', 'data', '.bench']) expect(ignored).toContain(tree);
    // What the Dockerfile copies must not be ignored.
    const copied = [...(await readFile(path.join(REPO, 'Dockerfile'), 'utf8')).matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    for (const source of copied) expect(ignored).not.toContain(source);
  });
});
