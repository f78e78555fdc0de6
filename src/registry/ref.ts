/**
 * Registry references, as job files and the CLI write them: `models:/<name>@<alias>`,
 * `models:/<name>/<version>` and `models:/<name>/latest` (MLflow's forms). Pure: no I/O.
 */
import { NightscoreError } from '../errors.js';

export const REF_SCHEME = 'models:/';

/** A model name or an alias: a letter or digit, then letters, digits, `.`, `_` or `-`. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The largest version number a reference may name (nine digits), and so a record may hold. */
export const MAX_VERSION = 999_999_999;

export type ModelRef =
  | { ref: string; name: string; kind: 'alias'; alias: string }
  | { ref: string; name: string; kind: 'version'; version: number }
  | { ref: string; name: string; kind: 'latest' };

export function isModelRef(location: string): boolean {
  return location.toLowerCase().startsWith(REF_SCHEME);
}

/** Reads a reference; a malformed one is MODEL_REF_INVALID saying which forms there are. */
export function parseModelRef(ref: string): ModelRef {
  const body = ref.slice(REF_SCHEME.length);
  const at = body.indexOf('@');
  if (at !== -1) {
    const name = body.slice(0, at);
    const alias = body.slice(at + 1);
    checkName(ref, name, 'model name');
    checkAlias(ref, alias);
    return { ref, name, kind: 'alias', alias };
  }
  const slash = body.indexOf('/');
  if (slash === -1) throw badRef(ref, 'it names no alias or version');
  const name = body.slice(0, slash);
  const version = body.slice(slash + 1);
  checkName(ref, name, 'model name');
  if (version === 'latest') return { ref, name, kind: 'latest' };
  if (!/^[1-9][0-9]{0,8}$/.test(version)) throw badRef(ref, `"${version}" is not a version number (1, 2, …) or "latest"`);
  return { ref, name, kind: 'version', version: Number(version) };
}

export function isModelName(name: string): boolean {
  return NAME_RE.test(name);
}

/** An alias is a name that cannot be read as a version: not all digits, not "latest". */
export function isAliasName(alias: string): boolean {
  return NAME_RE.test(alias) && !/^[0-9]+$/.test(alias) && alias !== 'latest';
}

export function checkName(ref: string, name: string, what = 'model name'): void {
  if (!isModelName(name)) throw badRef(ref, `"${name}" is not a ${what}: a letter or digit, then letters, digits, ".", "_" or "-" (at most 128)`);
}

export function checkAlias(ref: string, alias: string): void {
  checkName(ref, alias, 'alias');
  if (/^[0-9]+$/.test(alias) || alias === 'latest') throw badRef(ref, `"${alias}" cannot be an alias: it reads as a version`);
}

/** The reference of one version, as manifests and `model list` print it. */
export function versionRef(name: string, version: number): string {
  return `${REF_SCHEME}${name}/${version}`;
}

function badRef(ref: string, why: string): NightscoreError {
  return new NightscoreError('MODEL_REF_INVALID', `"${ref}" is not a model reference: ${why}`, {
    hint: 'Write models:/<name>@<alias> (models:/churn@champion), models:/<name>/<version> (models:/churn/3) or models:/<name>/latest.',
  });
}
