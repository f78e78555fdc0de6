import pino, { type Logger } from 'pino';

/**
 * The process logger: JSON lines on stderr, so stdout stays for results (`--json`).
 * Level from NIGHTSCORE_LOG_LEVEL; on a terminal the default is "warn" because the
 * progress line says the rest.
 */
export function createLogger(opts: { interactive: boolean }): Logger {
  const level = process.env.NIGHTSCORE_LOG_LEVEL ?? (opts.interactive ? 'warn' : 'info');
  return pino(
    {
      level,
      base: { pid: process.pid },
      // Credentials must never reach a log line, however an object ends up logged.
      redact: { paths: ['*.secretAccessKey', '*.sessionToken', '*.password', 'env.AWS_SECRET_ACCESS_KEY'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
