import { configError } from './errors.js';

/**
 * A duration in milliseconds from the environment: the default when unset or empty, else a
 * whole number of at least 100 ms, or a BAD_ENV error naming the variable and the default.
 */
export function envMilliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number, meaning: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100) {
    throw configError('BAD_ENV', `${name} must be a whole number of milliseconds (at least 100), got "${raw}"`, {
      hint: `Unset it for the default of ${fallback} (${meaning}).`,
    });
  }
  return ms;
}
