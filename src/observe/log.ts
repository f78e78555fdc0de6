import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { CENSOR, redactSecrets } from '../redact.js';

/** Object paths that hold credentials, whatever else a logged object carries. */
const REDACT_PATHS = [
  'password',
  '*.password',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.credentials',
  'env.AWS_SECRET_ACCESS_KEY',
  'env.AWS_SESSION_TOKEN',
  'env.NIGHTSCORE_REDIS_URL',
];

/**
 * The process logger, on stderr so stdout stays for results (`--json`): JSON lines, or on a
 * terminal lines for people (time, level, message, fields). `level` is NIGHTSCORE_LOG_LEVEL's,
 * checked (settings.ts); by default "info", on a terminal "warn" because the progress line
 * says the rest.
 */
export function createLogger(opts: { interactive: boolean; level?: string }): Logger {
  const level = opts.level ?? (opts.interactive ? 'warn' : 'info');
  // Loaded only for a terminal: pipelines and containers get JSON and skip the module.
  const stream = opts.interactive
    ? (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty'))({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true })
    : pino.destination(2);
  return pino(
    {
      level,
      base: { pid: process.pid },
      // Credentials must never reach a log line, however they end up logged: known object
      // paths are censored, and every finished line is scrubbed of URL passwords, signed-URL
      // parameters and this process's secrets (messages and error causes quote URLs).
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      hooks: { streamWrite: (line) => redactSecrets(line) },
    },
    stream,
  );
}
