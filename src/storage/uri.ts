/** Location URIs as text: what one says, before any storage is opened (settings read them too, so this imports no storage). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NightscoreError } from '../errors.js';

/** What a location URI says, before any storage is opened. */
export type ParsedUri = { scheme: 's3'; bucket: string; key: string } | { scheme: 'file'; path: string };

/** A URI scheme: two characters or more, so a Windows drive letter (`C:\…`) is a path. */
const SCHEME_RE = /^([a-z][a-z0-9+.-]+):/i;

/** The lower-cased scheme of a URI (`S3://` is `s3`), or undefined for a plain path. */
export function schemeOf(uri: string): string | undefined {
  return SCHEME_RE.exec(uri)?.[1]?.toLowerCase();
}

/**
 * Reads a location URI: `s3://bucket/key`, a `file:` URL (percent-decoded, as for every
 * location), or an absolute path. Schemes are case-insensitive (RFC 3986). A trailing slash
 * is kept: it is how a URI says "prefix" rather than "object". Anything else is a BAD_URI
 * that says which form to write; the job loader turns it into JOB_INVALID at the key's line.
 */
export function parseUri(uri: string): ParsedUri {
  const scheme = schemeOf(uri);
  if (scheme === 's3') {
    const rest = uri.slice(scheme.length + 1);
    if (!rest.startsWith('//')) throw badUri(uri, 'an s3 location starts with s3:// and the bucket');
    const body = rest.slice(2);
    const slash = body.indexOf('/');
    const bucket = slash === -1 ? body : body.slice(0, slash);
    if (!bucket) throw badUri(uri, 'it names no bucket');
    return { scheme: 's3', bucket, key: slash === -1 ? '' : body.slice(slash + 1) };
  }
  if (scheme === 'file') {
    let file: string;
    // "file:rel" would parse as the absolute /rel: a file URL must carry its path's slash.
    if (!uri.slice(scheme.length + 1).startsWith('/')) throw badUri(uri, 'a file URL is absolute: file:///path');
    try {
      file = fileURLToPath(new URL(`file:${uri.slice(scheme.length + 1)}`));
    } catch (err) {
      throw badUri(uri, `it is not an absolute file URL (${(err as Error).message})`);
    }
    return { scheme: 'file', path: keepSlash(uri, file) };
  }
  if (scheme !== undefined) {
    throw new NightscoreError('BAD_URI', `unsupported scheme "${scheme}://" in "${uri}"`, { hint: 'Use s3://bucket/prefix, a file:// URL, or a plain path (relative to the job file).' });
  }
  if (!path.isAbsolute(uri)) throw badUri(uri, 'it is a relative path');
  return { scheme: 'file', path: uri };
}

function keepSlash(uri: string, file: string): string {
  return uri.endsWith('/') && !file.endsWith(path.sep) ? `${file}${path.sep}` : file;
}

function badUri(uri: string, why: string) {
  return new NightscoreError('BAD_URI', `"${uri}" is not a location nightscore can read: ${why}`, {
    hint: 'Write s3://bucket/prefix/, an absolute file URL such as file:///data/in/ (three slashes; percent-encode spaces as %20, never "/" as %2F), or a path (relative paths resolve against the job file).',
  });
}
