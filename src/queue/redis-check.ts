import { Redis, type RedisOptions } from 'ioredis';
import { NightscoreError } from '../errors.js';
import { connectionOptions, type QueueConfig } from './config.js';

/**
 * Connects to the queue's Redis once, without retries, and says plainly what is wrong.
 * BullMQ's own connections retry forever (a worker must outlive a Redis restart), so a wrong
 * password or an untrusted certificate would otherwise show as an endless stream of
 * reconnection errors, some of which print the command that carried the password.
 */
export async function checkRedis(config: QueueConfig, timeoutMs = 5_000): Promise<void> {
  const options = connectionOptions(config) as RedisOptions;
  const client = new Redis({
    ...options,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    // ioredis waits this long for a socket that is already gone (refused credentials) to close.
    disconnectTimeout: 100,
  });
  // The first error explains the failure; the rejection that follows only says "closed".
  let first: Error | undefined;
  client.on('error', (err: Error) => (first ??= err));
  try {
    await client.connect();
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref());
    await Promise.race([client.ping(), timeout]);
  } catch (err) {
    throw redisError(config.redisUrl, first ?? (err as Error));
  } finally {
    client.disconnect();
  }
}

const AUTH = /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i;
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/** A failed connection as an error that names the server (never its password) and the fix. */
export function redisError(url: string, err: Error): NightscoreError {
  const code = (err as { code?: string }).code;
  // The URL is quoted whole: NightscoreError redacts its password.
  if (AUTH.test(err.message)) {
    return new NightscoreError('REDIS_AUTH', `Redis at ${url} refused the credentials: ${err.message}`, {
      hint: 'Check the user and password in NIGHTSCORE_REDIS_URL (percent-encode any of : / @ % in them).',
      cause: err,
    });
  }
  if (code && TLS_CODES.has(code)) {
    return new NightscoreError('REDIS_TLS', `Redis at ${url}: the server's TLS certificate is not trusted: ${err.message} (${code})`, {
      hint: 'Set NIGHTSCORE_REDIS_CA_FILE to the CA certificate (PEM) that signed the server certificate, and connect by a name or address the certificate holds.',
      cause: err,
    });
  }
  return new NightscoreError('REDIS_UNAVAILABLE', `cannot reach Redis at ${url}: ${err.message}${code ? ` (${code})` : ''}`, {
    hint: 'Check that Redis runs and that NIGHTSCORE_REDIS_URL names it, with rediss:// if (and only if) it speaks TLS.',
    cause: err,
  });
}
