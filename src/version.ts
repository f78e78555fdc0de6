import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The package's folder: one above this module, in src/ and in the bundle's dist/ alike (the
 * build puts every file of dist/ directly in it). The demo finds its job and model here.
 */
export const PACKAGE_ROOT: string = fileURLToPath(new URL('..', import.meta.url));

/** The package version, read once from package.json beside dist/ and src/. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
