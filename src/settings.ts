import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { wholeNumber, type Range } from './env.js';
import { NightscoreError } from './errors.js';
import { isHostName, parseAllowedHosts } from './observe/host.js';
import { parseUri } from './storage/uri.js';

/**
 * Every environment variable nightscore reads, with the form its value takes: one table,
 * checked whole when the process starts (`readSettings`, from cli.ts) so that a bad value
 * stops the command before it does any work, as BAD_ENV naming the variable, the value and
 * the form. A worker must not start and then fail every run, or drop every alert, on a
 * setting it could have refused at once. The readers take their value through `setting`,
 * the same parse, so what passed at start cannot fail later.
 *
 * Variables read only to say whether they are set, or to redact them, take any value and
 * are listed apart (READ_AS_IS); test/settings.test.ts holds every name src/ reads to one list
 * or the other.
 */
interface Setting<T> {
  /** The form a value takes, for the error: "a whole number of attempts from 1 to 100". */
  expected: string;
  /** The value when the variable is unset or empty. */
  fallback: T;
  /** What unsetting it gives, for the hint. */
  unset: string;
  /** The value `raw` stands for, or undefined when it is not of the form (or throws its own NightscoreError). */
  parse: (raw: string) => T | undefined;
  /** A secret: the error says how long the value is, never the value. */
  secret?: boolean;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Shorter secrets can be guessed over the network. */
export const MIN_TOKEN_LENGTH = 16;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
// The AWS SDK's own rule for a region: one host name label.
const REGION_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// Printable text: a name that ends up in registry records, events and log lines.
const PRINTABLE_RE = /^[^\p{Cc}]{1,256}$/u;

function integer(fallback: number, range: Range, meaning: string): Setting<number> {
  return { expected: `a whole number of ${range.unit} from ${range.min} to ${range.max}`, fallback, unset: `the default of ${fallback} (${meaning})`, parse: (raw) => wholeNumber(raw, range) };
}

function milliseconds(fallback: number, meaning: string, min = 100): Setting<number> {
  return integer(fallback, { min, max: DAY_MS, unit: 'milliseconds' }, meaning);
}

/** Text that is good as it is when `ok` says so. */
function text<T extends string | undefined>(fallback: T, expected: string, unset: string, ok: (raw: string) => boolean): Setting<string | T> {
  return { expected, fallback, unset, parse: (raw) => (ok(raw) ? raw : undefined) };
}

function isHttpUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

function isLocation(raw: string): boolean {
  try {
    parseUri(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * A Redis URL as BullMQ's connection takes it: redis:// or rediss://, an optional db number.
 * BAD_REDIS_URL otherwise.
 */
export function parseRedisUrl(text: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // falls through to the error below
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname))) {
    throw new NightscoreError('BAD_REDIS_URL', `NIGHTSCORE_REDIS_URL "${text}" is not a Redis URL`, {
      column: 'NIGHTSCORE_REDIS_URL',
      hint: 'Write redis://[user:password@]host[:port][/db], or rediss:// for TLS; percent-encode special characters in the password.',
    });
  }
  return url;
}

/** The CA certificate file of NIGHTSCORE_REDIS_CA_FILE, or REDIS_CA_FILE saying why it cannot be read. */
export function readRedisCaFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new NightscoreError('REDIS_CA_FILE', `cannot read NIGHTSCORE_REDIS_CA_FILE ${file}: ${(err as Error).message}`, {
      column: 'NIGHTSCORE_REDIS_CA_FILE',
      hint: 'Point NIGHTSCORE_REDIS_CA_FILE at the PEM file of the CA that signed the Redis server certificate.',
    });
  }
}

/** The table: every variable nightscore reads, and its form (docs/operations.md, "Queue settings" and docs/operations.md, "S3 configuration"). */
const SETTINGS = {
  NIGHTSCORE_REDIS_URL: text('redis://127.0.0.1:6379', 'a redis:// or rediss:// URL', 'redis://127.0.0.1:6379', (raw) => parseRedisUrl(raw) !== undefined),
  // Read at start, though only a rediss:// connection uses it: a file that is not there is a mistake either way.
  NIGHTSCORE_REDIS_CA_FILE: text(undefined, 'a PEM file this process can read', 'the system CAs', (raw) => readRedisCaFile(raw) !== undefined),
  NIGHTSCORE_QUEUE_PREFIX: text('nightscore', '1-64 characters of A-Z a-z 0-9 . _ -', 'the default "nightscore"', (raw) => /^[A-Za-z0-9._-]{1,64}$/.test(raw)),
  NIGHTSCORE_LOCK_MS: milliseconds(30_000, 'a chunk is taken over 30 s after its worker stops renewing', 1_000),
  NIGHTSCORE_STALLED_INTERVAL_MS: milliseconds(30_000, 'look for stalled chunks every 30 s', 1_000),
  NIGHTSCORE_MAX_STALLED: integer(3, { min: 0, max: 1_000, unit: 'stalls' }, 'a chunk may stall 3 times'),
  NIGHTSCORE_ATTEMPTS: integer(5, { min: 1, max: 100, unit: 'attempts' }, '5 attempts'),
  NIGHTSCORE_BACKOFF_MS: integer(2_000, { min: 0, max: HOUR_MS, unit: 'milliseconds' }, 'backoff from 2 s'),
  NIGHTSCORE_KEEP_RUNS: integer(10_000, { min: 1, max: 10_000_000, unit: 'runs' }, 'keep 10,000 finished runs'),
  NIGHTSCORE_SHUTDOWN_TIMEOUT_MS: milliseconds(30_000, 'SIGTERM exits within 30 s'),
  NIGHTSCORE_SCHEDULE_WATCH_MS: milliseconds(10_000, 'schedule sync --watch looks at the job files every 10 s'),
  NIGHTSCORE_OUTPUT_LEASE_MS: milliseconds(120_000, '2 minutes'),
  NIGHTSCORE_S3_TIMEOUT_MS: milliseconds(30_000, '30 seconds without a byte from S3'),
  NIGHTSCORE_HTTP_PORT: integer(9464, { min: 0, max: 65_535, unit: 'port' }, 'port 9464'),
  NIGHTSCORE_HTTP_HOST: text(undefined, 'an IP address or a host name of this machine, e.g. 127.0.0.1 or 0.0.0.0', '127.0.0.1', (raw) => isIP(raw) !== 0 || isHostName(raw)),
  NIGHTSCORE_HTTP_ALLOWED_HOSTS: {
    expected: 'DNS names without scheme or port, separated by commas (e.g. nightscore-worker-metrics.nightscore.svc.cluster.local), or * for any',
    fallback: [] as string[],
    unset: 'loopback names only (and IP addresses when bound beyond loopback)',
    parse: parseAllowedHosts,
  },
  NIGHTSCORE_MODEL_CACHE: text(undefined, 'an absolute folder path', '<tmp>/nightscore-models-<uid>, a folder of this user alone', (raw) => path.isAbsolute(raw)),
  NIGHTSCORE_MODEL_CACHE_BYTES: integer(8 * 1024 ** 3, { min: 1, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' }, '8 GiB'),
  NIGHTSCORE_REGISTRY_URI: text(undefined, 's3://bucket/prefix/, a file:// URL or an absolute folder path', 'no registry but the job\'s registry:', isLocation),
  NIGHTSCORE_USER: text(undefined, '1-256 characters without control characters', '<user>@<host>', (raw) => PRINTABLE_RE.test(raw)),
  NIGHTSCORE_ALERT_WEBHOOK: text(undefined, 'an http:// or https:// URL', 'no alerts but the jobs\' own', isHttpUrl),
  NIGHTSCORE_LOG_LEVEL: text(undefined, `one of ${LOG_LEVELS.join(', ')}`, 'info, or warn on a terminal', (raw) => LOG_LEVELS.includes(raw)),
  NIGHTSCORE_UI_TOKEN: { ...text(undefined, `at least ${MIN_TOKEN_LENGTH} characters`, 'no token (the UI then listens on loopback only)', (raw) => raw.length >= MIN_TOKEN_LENGTH), secret: true },
  AWS_ENDPOINT_URL_S3: text(undefined, 'an http:// or https:// URL', 'AWS S3 (or AWS_ENDPOINT_URL)', isHttpUrl),
  AWS_ENDPOINT_URL: text(undefined, 'an http:// or https:// URL', 'AWS S3', isHttpUrl),
  AWS_REGION: text(undefined, 'a region name such as us-east-1', 'AWS_DEFAULT_REGION, else us-east-1', (raw) => REGION_RE.test(raw)),
  AWS_DEFAULT_REGION: text(undefined, 'a region name such as us-east-1', 'us-east-1', (raw) => REGION_RE.test(raw)),
  AWS_MAX_ATTEMPTS: integer(5, { min: 1, max: 100, unit: 'attempts' }, 'each S3 request tried up to 5 times'),
} satisfies Record<string, Setting<unknown>>;

/**
 * Variables nightscore reads without a form to check: credentials and the AWS SDK's own
 * credential sources, read only to redact them or to say which are set (S3_CREDENTIALS);
 * the SDK itself reads and judges them.
 */
export const READ_AS_IS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_EC2_METADATA_DISABLED',
];

export type SettingName = keyof typeof SETTINGS;

/** The variables of READ_AS_IS, as they are (those unset are absent). */
export type AsIs = Partial<Record<string, string>>;

/** Every setting's value: the parsed one, or its default. */
export type Settings = { [K in SettingName]: (typeof SETTINGS)[K]['fallback'] | NonNullable<ReturnType<(typeof SETTINGS)[K]['parse']>> };

/** The names of every variable in the table (the settings test holds src/ to it). */
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** One setting from `env`, checked: its default when unset or empty, else its parsed value, else BAD_ENV naming it. */
export function setting<K extends SettingName>(env: NodeJS.ProcessEnv, name: K): Settings[K] {
  const spec: Setting<unknown> = SETTINGS[name];
  const raw = env[name];
  if (raw === undefined || raw === '') return spec.fallback as Settings[K];
  const value = spec.parse(raw);
  if (value === undefined) {
    const got = spec.secret ? `${raw.length} characters` : JSON.stringify(raw);
    throw new NightscoreError('BAD_ENV', `${name} must be ${spec.expected}, got ${got}`, { column: name, hint: `Unset it for ${spec.unset}.` });
  }
  return value as Settings[K];
}

/**
 * Every setting from `env`, checked, for the start of a process. All bad ones are named at
 * once, so that fixing a deployment takes one restart, not one per variable.
 */
export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const values: Partial<Record<SettingName, unknown>> = {};
  const errors: NightscoreError[] = [];
  for (const name of SETTING_NAMES) {
    try {
      values[name] = setting(env, name);
    } catch (err) {
      if (!(err instanceof NightscoreError)) throw err;
      errors.push(err);
    }
  }
  if (errors.length > 1) {
    throw new NightscoreError('BAD_ENV', errors.map((e) => e.message).join('; '), { column: errors[0]!.column, hint: errors.map((e) => `${e.column}: ${e.hint}`).join(' ') });
  }
  if (errors.length === 1) throw errors[0]!;
  return values as Settings;
}

/**
 * What a process takes from its environment: the settings, checked, and the variables read as
 * they are. Its entry point reads it once (cli.ts) and hands it on: to the commands through
 * their context, to its scoring threads as workerData (chunk-thread.ts), and to the readers
 * below every call chain (storage, the model cache, locks, the registry, alerts) through
 * `useEnvironment`, since a value threaded through every storage open and model load would be
 * a parameter of nearly every function.
 */
export interface Environment {
  settings: Settings;
  asIs: AsIs;
}

/** The environment of `env`: readSettings (BAD_ENV naming every bad setting), and the READ_AS_IS variables that are set. */
export function readEnvironment(env: NodeJS.ProcessEnv): Environment {
  const settings = readSettings(env);
  const asIs: AsIs = {};
  for (const name of READ_AS_IS) if (env[name] !== undefined) asIs[name] = env[name];
  return { settings, asIs };
}

let current: Environment | undefined;

/** Makes `environment` what this process (or thread) was started with. Tests call it again after changing the environment they give. */
export function useEnvironment(environment: Environment): void {
  current = environment;
}

/** What this process was started with (useEnvironment), or, before that, every setting's default and no as-is variable. */
export function environment(): Environment {
  return (current ??= { settings: readSettings({}), asIs: {} });
}
