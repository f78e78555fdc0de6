/**
 * No module of src/ imports itself back through others: `npm run check:imports` (dpdm over
 * every module, so every entry point: the CLI, the chunk thread, the page) finds no circle.
 * The test runs the script's own command, so the two cannot drift apart.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

describe('the import graph', () => {
  it('has no circle (npm run check:imports)', () => {
    const script = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['check:imports']!;
    const [bin, ...args] = script.split(' ').map((a) => a.replace(/^'(.*)'$/, '$1'));
    expect(bin).toBe('dpdm');
    const res = spawnSync(path.join(root, 'node_modules', '.bin', 'dpdm'), args, { cwd: root, encoding: 'utf8', timeout: 120_000 });
    const circles = res.stdout.split('\n').filter((l) => /^\s*\d+\)/.test(l));
    expect(circles, res.stdout).toEqual([]);
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0);
    // dpdm read the tree and said so (a glob that matched nothing exits 1 with no circle listed).
    expect(res.stdout).toContain('no circular dependency');
  }, 150_000);
});
