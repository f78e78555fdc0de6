#!/usr/bin/env node
/**
 * Adds lock entries for optional platform-specific packages that the registry reachable
 * here does not serve (darwin, win32, arm builds of native add-ons). Without them `npm ci`
 * rejects the lock as out of sync. The entries are optional and os/cpu-gated, so no install
 * fetches them on a platform they do not match. Run after `npm install` changes the lock:
 *   node scripts/complete-lock.mjs
 */
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OS = ['darwin', 'linux', 'win32', 'freebsd', 'android'];
const CPU = ['arm64', 'x64', 'arm', 'ia32'];
let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key] || lock.packages[`${path}/${key}`]) continue;
    const tokens = name.split('/').pop().split('-');
    const os = tokens.find((t) => OS.includes(t));
    const cpu = tokens.find((t) => CPU.includes(t));
    if (!os || !cpu) continue;
    lock.packages[key] = { version: version.replace(/^[\^~]/, ''), cpu: [cpu], ...(tokens.includes('musl') ? { libc: ['musl'] } : {}), optional: true, os: [os] };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)));
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} platform entries`);
