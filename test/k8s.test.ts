import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ScaledObject, type IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service, type IConfigMap, type IContainer, type ISecret, type IService } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadJob } from '../src/job/load.js';
import { composeConfig } from './support/compose.js';
import { REPO } from './support/workspace.js';

/**
 * The Kubernetes manifests (deploy/k8s) as the cluster would get them: each kustomization is
 * built with `kubectl kustomize`, every object is checked against the Kubernetes (or KEDA)
 * schema of its kind, and the settings that matter are read back from the built objects.
 * No cluster is needed.
 */
const K8S = path.join(REPO, 'deploy', 'k8s');
// Listed, not named: a new overlay is built and checked without touching this file.
const OVERLAYS = readdirSync(path.join(K8S, 'overlays'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `overlays/${d.name}`)
  .sort();
const BUILDS = ['base', ...OVERLAYS];
// Only this overlay may generate Secrets, and only demo placeholders.
const DEMO_BUILD = 'overlays/try';
const NAMESPACE = 'nightscore';
const JOBS_DIR = '/etc/nightscore/jobs';
const JOB_FILE = path.join(REPO, 'deploy', 'jobs', 'churn-daily.yaml');
const K8S_JOB_FILE = path.join(K8S, 'base', 'jobs', 'churn-daily.yaml');
/** The Secrets the operator creates (deploy/k8s/README.md); the manifests only name them. */
const OPERATOR_SECRETS: Record<string, string[]> = { 'nightscore-redis': ['url'], 'nightscore-s3': ['access-key-id', 'secret-access-key'], 'nightscore-ui': ['token'] };

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** apiVersion/kind → its schema. A kind missing here fails the test: add its class. */
const SCHEMAS: Record<string, { prototype: { validate(): void } }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};
const CLUSTER_SCOPED = new Set(['Namespace']);

const built = new Map<string, K8sObject[]>();

/** The objects `kubectl kustomize <dir>` prints, parsed. */
function build(dir: string): K8sObject[] {
  let objects = built.get(dir);
  if (!objects) {
    const text = execFileSync('kubectl', ['kustomize', path.join(K8S, dir)], { encoding: 'utf8' });
    objects = parseAllDocuments(text).map((doc) => {
      expect(doc.errors, `${dir}: kubectl kustomize printed YAML that does not parse`).toEqual([]);
      return doc.toJS() as K8sObject;
    });
    built.set(dir, objects);
  }
  return objects;
}

function one<T>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`), `exactly one ${kind}/${name}`).toEqual([`${kind}/${name}`]);
  return found[0] as unknown as T;
}

function ofKind<T>(objects: K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as unknown as T[];
}

/**
 * Runs a schema's validator on `object` while recording every key it reads: a key the
 * validator never looked at is not in the schema. The generated validators accept unknown
 * keys, as the API server does (it drops them with a warning), so a `readinesProbe:` typo
 * would otherwise pass and leave the pod without its probe. Maps (labels, data) are read
 * key by key, so their keys count as read.
 */
function validateStrict(object: K8sObject, schema: { prototype: { validate(): void } }): string[] {
  const read = new Set<string>();
  const watch = (value: unknown, at: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    return new Proxy(value, {
      get(target, key, receiver) {
        const v: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return v;
        read.add(`${at}/${key}`);
        return watch(v, `${at}/${key}`);
      },
    });
  };
  schema.prototype.validate.call(watch(object, ''));
  const unknown: string[] = [];
  const walk = (value: unknown, at: string) => {
    if (value === null || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value)) {
      if (read.has(`${at}/${key}`)) walk(v, `${at}/${key}`);
      else unknown.push(`${at}/${key}`);
    }
  };
  walk(object, '');
  return unknown;
}

interface PodTemplate {
  labels: Record<string, string>;
  spec: NonNullable<NonNullable<NonNullable<IDeployment['spec']>['template']>['spec']>;
}

function podOf(deployment: IDeployment): PodTemplate {
  const template = deployment.spec!.template;
  return { labels: template.metadata?.labels ?? {}, spec: template.spec! };
}

function containersOf(pod: PodTemplate): IContainer[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** An env var's value as the container sees it: literal, or from a ConfigMap of the build. */
function envValue(objects: K8sObject[], container: IContainer, name: string): string | undefined {
  const env = container.env?.find((e) => e.name === name);
  if (!env) return undefined;
  if (env.value !== undefined) return env.value;
  const ref = env.valueFrom?.configMapKeyRef;
  if (!ref) throw new Error(`${container.name}: ${name} is not a literal or a ConfigMap key`);
  return one<IConfigMap>(objects, 'ConfigMap', ref.name!).data?.[ref.key];
}

/** A Kubernetes quantity ("6Gi", "500m", "2") as a number of bytes or cores. */
function quantity(text: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(text));
  if (!m) throw new Error(`not a quantity: ${text}`);
  const unit: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? unit[m[2]]! : 1);
}

const worker = (objects: K8sObject[]) => one<IDeployment>(objects, 'Deployment', 'nightscore-worker');
const workerContainer = (objects: K8sObject[]) => podOf(worker(objects)).spec.containers.find((c) => c.name === 'worker')!;

describe('kubectl', () => {
  it('has kustomize v5 or later (labels, inline patches)', () => {
    // Debian 12's kubernetes-client is kubectl 1.20, with kustomize v2.0.3: it cannot build these.
    const version = JSON.parse(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' })) as { kustomizeVersion?: string; clientVersion: { gitVersion: string } };
    const major = Number(/^v(\d+)\./.exec(version.kustomizeVersion ?? '')?.[1] ?? 0);
    expect(major, `kubectl ${version.clientVersion.gitVersion} has kustomize ${version.kustomizeVersion ?? '(none reported)'}; install kubectl 1.27 or later`).toBeGreaterThanOrEqual(5);
  });
});

describe.each(BUILDS)('deploy/k8s/%s', (dir) => {
  it('builds, and every object is valid for its schema, has no unknown fields and lives in namespace nightscore', () => {
    const problems: string[] = [];
    for (const object of build(dir)) {
      const id = `${object.apiVersion}/${object.kind}`;
      const schema = SCHEMAS[id];
      if (!schema) {
        problems.push(`${id} ${object.metadata.name}: no schema for this kind in test/k8s.test.ts SCHEMAS (add its kubernetes-models class)`);
        continue;
      }
      try {
        const unknown = validateStrict(object, schema);
        if (unknown.length) problems.push(`${object.kind}/${object.metadata.name}: fields not in the ${id} schema: ${unknown.join(', ')}`);
      } catch (err) {
        problems.push(`${object.kind}/${object.metadata.name}: ${(err as Error).message}`);
      }
      if (!CLUSTER_SCOPED.has(object.kind) && object.metadata.namespace !== NAMESPACE) problems.push(`${object.kind}/${object.metadata.name}: namespace ${object.metadata.namespace}, expected ${NAMESPACE}`);
    }
    expect(problems).toEqual([]);
  });

  it('runs every container as non-root on a read-only root, without privileges; nightscore writes only an emptyDir /tmp', () => {
    for (const deployment of ofKind<IDeployment>(build(dir), 'Deployment')) {
      const pod = podOf(deployment);
      const name = deployment.metadata!.name;
      expect(pod.spec.automountServiceAccountToken, name).toBe(false);
      expect(pod.spec.securityContext?.seccompProfile?.type, name).toBe('RuntimeDefault');
      for (const c of containersOf(pod)) {
        const at = `${name}/${c.name}`;
        expect(c.securityContext?.runAsNonRoot ?? pod.spec.securityContext?.runAsNonRoot, at).toBe(true);
        // runAsNonRoot only refuses, at start, a container that would run as root: the uid is set here, and never 0.
        const uid = c.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser;
        expect(uid, `${at} runAsUser`).toBeGreaterThan(0);
        expect(c.securityContext?.allowPrivilegeEscalation, at).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, at).toBe(true);
        expect(c.securityContext?.capabilities?.drop, at).toEqual(['ALL']);
        expect(c.resources?.limits?.memory, `${at} memory limit`).toBeDefined();
        if (!c.image?.startsWith('nightscore')) continue;
        const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
        const volume = pod.spec.volumes?.find((v) => v.name === tmp?.name);
        expect(volume?.emptyDir?.sizeLimit, `${at}: /tmp is an emptyDir with a sizeLimit`).toBeDefined();
        // The workers read a run's job file at the path the scheduler saw: one mount path everywhere.
        const jobs = c.volumeMounts?.find((m) => m.mountPath === JOBS_DIR);
        expect(jobs?.readOnly, `${at}: job files read-only at ${JOBS_DIR}`).toBe(true);
        expect(pod.spec.volumes?.find((v) => v.name === jobs?.name)?.configMap?.name, at).toMatch(/^nightscore-jobs-[a-z0-9]+$/);
        expect(c.args?.[0], at).toMatch(/^(worker|schedule|ui)$/);
        expect(c.args, at).toContain(JOBS_DIR);
      }
    }
  });

  it('keeps credentials in Secrets: the base and the production overlays make none, and name only the operator-created ones', () => {
    const objects = build(dir);
    const generated = ofKind<ISecret>(objects, 'Secret');
    if (dir === DEMO_BUILD) {
      // Demo placeholders only, and every one the pods use is generated here.
      for (const s of generated) {
        for (const [key, b64] of Object.entries(s.data ?? {})) expect(Buffer.from(b64, 'base64').toString(), `${s.metadata!.name} ${key}`).toMatch(/demo|^redis:\/\/redis:6379$/i);
      }
    } else {
      expect(generated.map((s) => s.metadata!.name), `${dir} must not ship a Secret: document a kubectl create secret in deploy/k8s/README.md instead`).toEqual([]);
    }
    for (const deployment of ofKind<IDeployment>(objects, 'Deployment')) {
      for (const c of containersOf(podOf(deployment))) {
        for (const env of c.env ?? []) {
          const at = `${deployment.metadata!.name}/${c.name} ${env.name}`;
          if (/SECRET|PASSWORD|TOKEN|ACCESS_KEY|REDIS_URL/.test(env.name)) expect(env.valueFrom?.secretKeyRef, `${at} comes from a Secret`).toBeDefined();
          const secret = env.valueFrom?.secretKeyRef;
          if (secret) {
            const stem = secret.name!.replace(/-[a-z0-9]{10}$/, '');
            expect(OPERATOR_SECRETS[dir === DEMO_BUILD ? stem : secret.name!], at).toContain(secret.key);
            if (dir === DEMO_BUILD) expect(Object.keys(one<ISecret>(objects, 'Secret', secret.name!).data ?? {}), at).toContain(secret.key);
          }
          const config = env.valueFrom?.configMapKeyRef;
          if (config && !config.optional) expect(Object.keys(one<IConfigMap>(objects, 'ConfigMap', config.name!).data ?? {}), at).toContain(config.key);
        }
      }
    }
  });

  it('runs workers that score one chunk per CPU of their limit, stop within the grace period and are probed on /readyz and /healthz', () => {
    const objects = build(dir);
    const pod = podOf(worker(objects));
    const c = workerContainer(objects);
    expect(c.image).toMatch(/^nightscore(:|$)/);
    expect(c.args).toEqual(['worker', '--jobs-dir', JOBS_DIR, '--concurrency', '$(NIGHTSCORE_CPU_LIMIT)']);
    // Kubernetes expands $(VAR) in args from the container's env: the downward API's CPU limit, in whole CPUs.
    const cpu = c.env?.find((e) => e.name === 'NIGHTSCORE_CPU_LIMIT')?.valueFrom?.resourceFieldRef;
    expect(cpu).toEqual({ containerName: 'worker', resource: 'limits.cpu', divisor: '1' });
    expect(c.resources?.limits?.cpu).toBeDefined();

    const port = c.ports?.find((p) => p.name === 'http');
    expect(port?.containerPort).toBe(9464);
    expect(envValue(objects, c, 'NIGHTSCORE_HTTP_PORT')).toBe('9464');
    expect(envValue(objects, c, 'NIGHTSCORE_HTTP_HOST')).toBe('0.0.0.0');
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect(c.livenessProbe?.failureThreshold).toBeGreaterThanOrEqual(3);

    // SIGTERM comes after the preStop pause; the worker is gone within its shutdown timeout.
    const preStop = c.lifecycle?.preStop?.exec?.command;
    expect(preStop?.[0]).toBe('sleep');
    const pauseSeconds = Number(preStop?.[1]);
    const timeoutMs = Number(envValue(objects, c, 'NIGHTSCORE_SHUTDOWN_TIMEOUT_MS'));
    expect(pauseSeconds).toBeGreaterThan(0);
    expect(timeoutMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(pauseSeconds + timeoutMs / 1000);

    expect(envValue(objects, c, 'NIGHTSCORE_QUEUE_PREFIX')).toBe('nightscore');
    expect(envValue(objects, c, 'NIGHTSCORE_REGISTRY_URI')).toBe('s3://models/registry/');
    expect(envValue(objects, c, 'AWS_REGION')).toBeTruthy();
    expect(c.env?.find((e) => e.name === 'NIGHTSCORE_REDIS_URL')?.valueFrom?.secretKeyRef?.key).toBe('url');
    // The model cache lives on /tmp and fits its emptyDir, or the kubelet evicts the pod.
    expect(envValue(objects, c, 'NIGHTSCORE_MODEL_CACHE')).toMatch(/^\/tmp\//);
    const tmp = pod.spec.volumes!.find((v) => v.name === c.volumeMounts!.find((m) => m.mountPath === '/tmp')!.name)!;
    expect(Number(envValue(objects, c, 'NIGHTSCORE_MODEL_CACHE_BYTES'))).toBeLessThan(quantity(tmp.emptyDir!.sizeLimit!));
  });

  it('mounts the job files as a ConfigMap holding deploy/jobs/churn-daily.yaml', () => {
    const objects = build(dir);
    const jobs = ofKind<IConfigMap>(objects, 'ConfigMap').filter((cm) => cm.metadata!.name!.startsWith('nightscore-jobs-'));
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.data?.['churn-daily.yaml']).toBe(readFileSync(JOB_FILE, 'utf8'));
  });

  it('runs one schedule sync that watches the job files, and the UI behind a Service on 8080', () => {
    const objects = build(dir);
    const scheduler = one<IDeployment>(objects, 'Deployment', 'nightscore-scheduler');
    expect(scheduler.spec?.replicas).toBe(1);
    expect(scheduler.spec?.strategy?.type).toBe('Recreate');
    expect(podOf(scheduler).spec.containers[0]!.args).toEqual(['schedule', 'sync', JOBS_DIR, '--watch']);

    const ui = one<IDeployment>(objects, 'Deployment', 'nightscore-ui');
    const c = podOf(ui).spec.containers[0]!;
    expect(c.args).toEqual(['ui', '--jobs-dir', JOBS_DIR, '--host', '0.0.0.0', '--port', '8080']);
    expect(c.env?.find((e) => e.name === 'NIGHTSCORE_UI_TOKEN')?.valueFrom?.secretKeyRef?.key).toBe('token');
    expect(c.ports?.find((p) => p.name === 'http')?.containerPort).toBe(8080);
    for (const probe of [c.readinessProbe, c.livenessProbe]) expect(probe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    const service = one<IService>(objects, 'Service', 'nightscore-ui');
    expect(service.spec?.type).toBe('ClusterIP');
    expect(selects(service.spec?.selector, podOf(ui).labels)).toBe(true);
    expect(service.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
  });

  it('has a disruption budget and a metrics Service on 9464 that select the worker pods and no others', () => {
    const objects = build(dir);
    const labels = podOf(worker(objects)).labels;
    const others = ofKind<IDeployment>(objects, 'Deployment').filter((d) => d.metadata!.name !== 'nightscore-worker');
    const pdb = one<IPodDisruptionBudget>(objects, 'PodDisruptionBudget', 'nightscore-worker');
    const service = one<IService>(objects, 'Service', 'nightscore-worker-metrics');
    for (const selector of [pdb.spec?.selector?.matchLabels, service.spec?.selector]) {
      expect(selects(selector, labels)).toBe(true);
      for (const other of others) expect(selects(selector, podOf(other).labels), other.metadata!.name).toBe(false);
    }
    expect(pdb.spec?.selector?.matchExpressions).toBeUndefined();
    expect(pdb.spec?.maxUnavailable ?? pdb.spec?.minAvailable).toBeDefined();
    expect(service.spec?.type).toBe('ClusterIP');
    expect(service.spec?.ports).toEqual([{ name: 'http', port: 9464, targetPort: 'http' }]);
  });

  it('leaves the worker count to the autoscaler when there is one', () => {
    const objects = build(dir);
    const targets = [
      ...ofKind<IScaledObject>(objects, 'ScaledObject').map((s) => s.spec.scaleTargetRef.name),
      ...ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler').map((h) => h.spec?.scaleTargetRef.name),
    ];
    if (targets.length === 0) expect(worker(objects).spec?.replicas).toBeGreaterThanOrEqual(1);
    // A fixed replicas would reset the autoscaler's count on every apply.
    for (const name of targets) expect(one<IDeployment>(objects, 'Deployment', name!).spec?.replicas, `${name} replicas`).toBeUndefined();
  });
});

describe('deploy/k8s overlays', () => {
  it('the try overlay runs the image compose builds, and its README says how to build and load that tag', () => {
    const tags = new Set(Object.values(composeConfig().services).map((s) => s.image).filter((i) => i?.startsWith('nightscore')));
    expect([...tags]).toHaveLength(1);
    const [tag] = [...tags] as [string];
    const images = ofKind<IDeployment>(build(DEMO_BUILD), 'Deployment').flatMap((d) => containersOf(podOf(d)).map((c) => c.image)).filter((i) => i?.startsWith('nightscore'));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) expect(image).toBe(tag);
    const readme = readFileSync(path.join(K8S, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(`docker build -t ${tag} .`);
    expect(readme).toContain(`kind load docker-image ${tag}`);
  });

  it('covers keda, hpa and try', () => {
    expect(OVERLAYS).toEqual(expect.arrayContaining(['overlays/keda', 'overlays/hpa', DEMO_BUILD]));
  });

  it('keda: scales the workers on /backlog from the metrics Service, a worker per concurrency of chunks, never to zero', () => {
    const objects = build('overlays/keda');
    const scaled = ofKind<IScaledObject>(objects, 'ScaledObject');
    expect(scaled).toHaveLength(1);
    const spec = scaled[0]!.spec;
    expect(spec.scaleTargetRef).toMatchObject({ name: 'nightscore-worker' });
    expect(spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(spec.maxReplicaCount).toBeGreaterThan(spec.minReplicaCount!);
    expect(spec.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown?.policies?.length).toBeGreaterThan(0);
    expect(spec.triggers).toHaveLength(1);
    const trigger = spec.triggers[0]!;
    expect(trigger.type).toBe('metrics-api');
    expect(trigger.metricType ?? 'AverageValue').toBe('AverageValue');
    const service = one<IService>(objects, 'Service', 'nightscore-worker-metrics');
    const url = new URL(trigger.metadata.url!);
    expect(url.protocol).toBe('http:');
    expect(url.hostname).toBe(`${service.metadata!.name}.${service.metadata!.namespace}.svc.cluster.local`);
    expect(Number(url.port)).toBe(service.spec!.ports![0]!.port);
    expect(url.pathname).toBe('/backlog');
    // The workers answer KEDA's poll by that name (any other name is refused: DNS rebinding).
    expect(envValue(objects, workerContainer(objects), 'NIGHTSCORE_HTTP_ALLOWED_HOSTS')?.split(',')).toContain(url.hostname);
    expect(trigger.metadata.valueLocation).toBe('backlog');
    // One replica per `concurrency` chunks: the worker's CPU limit in whole CPUs.
    expect(trigger.metadata.targetValue).toBe(String(Math.ceil(quantity(workerContainer(objects).resources!.limits!.cpu!))));
    expect(worker(objects).spec?.replicas, 'the HPA KEDA makes owns the worker count').toBeUndefined();
  });

  it('hpa: scales the workers on CPU', () => {
    const objects = build('overlays/hpa');
    const hpas = ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
    expect(hpas).toHaveLength(1);
    const spec = hpas[0]!.spec!;
    expect(spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'nightscore-worker' });
    expect(spec.minReplicas).toBeGreaterThanOrEqual(1);
    expect(spec.metrics?.map((m) => m.resource?.name)).toEqual(['cpu']);
    expect(spec.metrics?.[0]?.resource?.target).toMatchObject({ type: 'Utilization' });
    expect(worker(objects).spec?.replicas, 'the HPA owns the worker count').toBeUndefined();
  });

  it('try: a Redis that keeps every key, behind the Service the demo Redis URL names', () => {
    const objects = build(DEMO_BUILD);
    const redis = one<IDeployment>(objects, 'Deployment', 'redis');
    const args = podOf(redis).spec.containers[0]!.args!.join(' ');
    expect(args).toContain('--maxmemory-policy noeviction');
    expect(args).toContain('--appendonly yes');
    const service = one<IService>(objects, 'Service', 'redis');
    expect(selects(service.spec?.selector, podOf(redis).labels)).toBe(true);
    expect(service.spec?.ports?.[0]?.port).toBe(6379);
    const ref = workerContainer(objects).env!.find((e) => e.name === 'NIGHTSCORE_REDIS_URL')!.valueFrom!.secretKeyRef!;
    const url = Buffer.from(one<ISecret>(objects, 'Secret', ref.name!).data![ref.key]!, 'base64').toString();
    expect(url).toBe(`redis://${service.metadata!.name}:6379`);
  });
});

describe('deploy/k8s job files', () => {
  it('base/jobs/churn-daily.yaml is deploy/jobs/churn-daily.yaml, byte for byte', () => {
    // kustomize reads nothing outside its folder, hence the copy.
    expect(readFileSync(K8S_JOB_FILE).equals(readFileSync(JOB_FILE)), 'deploy/k8s/base/jobs/churn-daily.yaml differs from deploy/jobs/churn-daily.yaml: copy it (cp deploy/jobs/churn-daily.yaml deploy/k8s/base/jobs/)').toBe(true);
  });

  it('the job file loads with nightscore own loader, with a schedule for the scheduler', async () => {
    const job = await loadJob(K8S_JOB_FILE);
    expect(job.name).toBe('churn-daily');
    expect(job.schedule?.cron).toBeDefined();
  });
});
