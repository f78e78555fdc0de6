/**
 * Who may read the UI. On a loopback address, whoever can reach it (the machine's users, a
 * `kubectl port-forward`). Anywhere else, only holders of NIGHTSCORE_UI_TOKEN: every request
 * but /healthz carries `Authorization: Bearer <token>`, or the cookie a browser gets by
 * opening any page once with `?token=<token>` (HttpOnly, SameSite=Strict, holding a value
 * derived from the token, not the token; the address is then redirected without it, so the
 * token stays out of the history and of Referer headers). A token set on loopback is
 * required there too.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { NightscoreError } from '../errors.js';
import { hostNameOf, isLoopback } from '../observe/host.js';
import { MIN_TOKEN_LENGTH } from '../settings.js';

export const TOKEN_ENV = 'NIGHTSCORE_UI_TOKEN';
const COOKIE = 'nightscore_ui';

/**
 * The token a server bound to `host` requires, from `given` (NIGHTSCORE_UI_TOKEN): none on
 * loopback without one; off loopback, a missing token is UI_TOKEN_REQUIRED and the server
 * does not start.
 */
export function requiredToken(host: string, given: string | undefined): string | undefined {
  const token = given === '' ? undefined : given;
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new NightscoreError('BAD_ENV', `${TOKEN_ENV} is ${token.length} characters; it takes at least ${MIN_TOKEN_LENGTH}`, {
      column: TOKEN_ENV,
      hint: `Use a long random secret, e.g. ${TOKEN_ENV}=$(openssl rand -hex 32).`,
    });
  }
  if (token === undefined && !isLoopback(host)) {
    throw new NightscoreError('UI_TOKEN_REQUIRED', `the UI would listen on ${host}, which other machines can reach, and ${TOKEN_ENV} is not set: runs, errors and input names would be readable by anyone on the network`, {
      column: TOKEN_ENV,
      hint: `Set ${TOKEN_ENV} to a long random secret (openssl rand -hex 32); clients send it as "Authorization: Bearer <token>", a browser opens /?token=<token> once. Or listen on 127.0.0.1 (the default) and reach it through kubectl port-forward or ssh -L.`,
    });
  }
  return token;
}

/** Middleware that lets through /healthz, and requests carrying the token (see above); others are UI_UNAUTHORIZED. */
export function requireToken(token: string): MiddlewareHandler {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  // Digests of equal length, compared in constant time: neither the token's length nor its
  // characters leak through response times.
  const matches = (given: string | undefined, expected: Buffer) => given !== undefined && timingSafeEqual(digest(given), expected);
  const expected = digest(token);
  const session = createHmac('sha256', token).update('nightscore ui session').digest('base64url');
  const expectedSession = digest(session);
  return async (c, next) => {
    if (c.req.path === '/healthz') return next();
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (matches(bearer, expected) || matches(getCookie(c, COOKIE), expectedSession)) return next();
    if (matches(c.req.query('token'), expected)) {
      setCookie(c, COOKIE, session, { httpOnly: true, sameSite: 'Strict', path: '/', secure: isHttps(c) });
      const url = new URL(c.req.url);
      url.searchParams.delete('token');
      // One leading slash: `//host/…` would be another site's address.
      return c.redirect(`${url.pathname.replace(/^\/+/, '/')}${url.search}`, 303);
    }
    throw new NightscoreError('UI_UNAUTHORIZED', `${c.req.path} needs the UI's token, and the request ${bearer === undefined && c.req.query('token') === undefined ? 'carries none' : 'carries another'}`, {
      hint: `Send "Authorization: Bearer <token>" (the value of ${TOKEN_ENV} where the UI runs), or in a browser open /?token=<token> once.`,
    });
  };
}

function isHttps(c: Context): boolean {
  // Behind a TLS-terminating proxy or ingress, the browser's side is https.
  return c.req.header('x-forwarded-proto') === 'https' || new URL(c.req.url).protocol === 'https:';
}

/**
 * Without a token the UI is loopback's: it answers only requests addressed to a loopback
 * name (observe/host.ts). A web page elsewhere could otherwise point its own host name at
 * 127.0.0.1 (DNS rebinding) and read the pages and the API from this machine's browser.
 */
export function requireLoopbackHost(): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header('host') ?? '';
    // Loopback names only, whatever the address: off loopback the UI takes a token instead.
    if (c.req.path === '/healthz' || isLoopback(hostNameOf(host))) return next();
    throw new NightscoreError('UI_UNAUTHORIZED', `a request for host "${host}": without ${TOKEN_ENV} the UI answers only requests for localhost, 127.0.0.1 or [::1]`, {
      hint: `Open it as http://127.0.0.1:<port>/ (or through kubectl port-forward, ssh -L); to serve it under another name, set ${TOKEN_ENV}.`,
    });
  };
}
