/**
 * Which `Host` a local HTTP server answers for: the one rule of the web UI (without a token)
 * and the worker's health server. A web page elsewhere can point its own host name at this
 * machine's address (DNS rebinding) and read what a server answers from a browser that can
 * reach it; such a request still carries the page's host name, so a server answers only for
 * names that cannot be rebound:
 *   - loopback names (`localhost`, `127.0.0.1`, `[::1]`), always;
 *   - IP literals too, when the server listens beyond loopback (Kubernetes probes and
 *     Prometheus address a pod by its IP: Host is the pod's IP and port);
 *   - host names listed in NIGHTSCORE_HTTP_ALLOWED_HOSTS (a Service's DNS name that KEDA
 *     polls), or any name with `*`.
 */
import { isIP } from 'node:net';

export const ALLOWED_HOSTS_ENV = 'NIGHTSCORE_HTTP_ALLOWED_HOSTS';

/** Whether an address only this machine can connect to (a name, or an IP literal with or without brackets). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** The host name of a Host header, without its port or an IPv6 literal's brackets, lower-cased; '' when there is none. */
export function hostNameOf(header: string | undefined): string {
  const host = (header ?? '').trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? '' : host.slice(1, end);
  }
  return host.replace(/:\d*$/, '');
}

/**
 * Whether a server listening on `bound` answers a request whose Host header is `header`
 * (see above). `allowed` are the extra names of NIGHTSCORE_HTTP_ALLOWED_HOSTS.
 */
export function answersHost(bound: string, header: string | undefined, allowed: readonly string[] = []): boolean {
  const name = hostNameOf(header);
  if (name === '') return false;
  if (isLoopback(name) || allowed.includes('*') || allowed.includes(name)) return true;
  return !isLoopback(bound) && isIP(name) !== 0;
}

const HOST_NAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A DNS host name (labels of letters, digits and inner hyphens), in any case. */
export function isHostName(name: string): boolean {
  return HOST_NAME_RE.test(name);
}

/** NIGHTSCORE_HTTP_ALLOWED_HOSTS's value: host names separated by commas, or `*`; undefined when one is neither (settings.ts names it). */
export function parseAllowedHosts(raw: string): string[] | undefined {
  const names = raw.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean);
  return names.every((n) => n === '*' || isHostName(n)) ? names : undefined;
}
