import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { onnxruntime } from '../src/engine/onnxruntime.js';
import { currentEngine } from '../src/model/session.js';
import { REPO } from './support/workspace.js';

/**
 * The inference engine is a seam: onnxruntime-node is imported by engine/onnxruntime.ts alone,
 * and the rest of nightscore sees engine.ts's plain types. Tests may still use it directly
 * for reference predictions; the rule is for src/.
 */

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

// Static and type imports, re-exports, dynamic import() and require() of the package or a file in it.
const ORT_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]onnxruntime-(?:node|common)(?:\/[^'"]*)?['"]/;

describe('the engine seam', () => {
  it('keeps onnxruntime-node inside src/engine/onnxruntime*', async () => {
    const files = await sources(join(REPO, 'src'));
    expect(files.length).toBeGreaterThan(50);
    const importers = [];
    for (const f of files) if (ORT_IMPORT.test(await readFile(f, 'utf8'))) importers.push(relative(REPO, f));
    expect(importers.filter((f) => !/^src\/engine\/onnxruntime[./]/.test(f))).toEqual([]);
    expect(importers).toEqual(['src/engine/onnxruntime.ts']);
  });

  it('names the engine and the version installed, which a model loaded with some threads scores under', async () => {
    const installed = JSON.parse(await readFile(join(REPO, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string };
    expect(onnxruntime).toMatchObject({ name: 'onnxruntime', version: installed.version });
    expect(currentEngine(3)).toEqual({ name: 'onnxruntime', version: installed.version, threads: 3 });
  });
});
