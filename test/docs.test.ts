import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, doc, headings, linkTargets } from './support/docs.js';
import { REPO } from './support/workspace.js';

/**
 * The README is the first page and docs/ the reference, split by topic: every page links where
 * it says, and every "docs/<page>.md, "Heading"" that a hint, comment or page points a reader
 * to names a heading that page has, so a heading renamed or moved breaks a test, not a reader.
 */

const PAGES = ['README.md', 'CHANGELOG.md', 'deploy/k8s/README.md', 'models/churn/MODEL_CARD.md', ...readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Text files where a reader may be sent to a page by name. */
function sources(): string[] {
  const out: string[] = [...PAGES];
  for (const dir of ['src', 'test', 'scripts', 'bench', 'deploy', 'models']) {
    for (const e of readdirSync(path.join(REPO, dir), { recursive: true, withFileTypes: true })) {
      const file = path.relative(REPO, path.join(e.parentPath, e.name));
      if (e.isFile() && /\.(ts|mjs|py|sh|ya?ml)$/.test(e.name) && !file.startsWith('test/fixtures/parquet-testing')) out.push(file);
    }
  }
  return out;
}

describe('the documentation', () => {
  it('is the README and a page per topic under docs/, each linked from the README', () => {
    const linked = linkTargets(doc('README.md')).map((l) => l.target.split('#')[0]);
    const pages = PAGES.filter((p) => p.startsWith('docs/'));
    expect(pages.length).toBeGreaterThan(5);
    expect(pages.filter((p) => !linked.includes(p))).toEqual([]);
  });

  it.each(PAGES)('%s: every relative link reaches a file, and every #anchor a heading of it', (page) => {
    const broken: string[] = [];
    for (const { target, line } of linkTargets(doc(page))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
      const [file = '', anchor] = target.split('#');
      const to = file === '' ? path.join(REPO, page) : path.resolve(path.dirname(path.join(REPO, page)), decodeURIComponent(file));
      if (!existsSync(to)) broken.push(`${page}:${line}: ${target}: no file ${path.relative(REPO, to)}`);
      else if (anchor !== undefined) {
        if (statSync(to).isDirectory() || !to.endsWith('.md')) broken.push(`${page}:${line}: ${target}: an anchor into a file that is not markdown`);
        else if (!anchors(readFileSync(to, 'utf8')).has(decodeURIComponent(anchor))) broken.push(`${page}:${line}: ${target}: no heading with that anchor`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('sends readers only to headings that exist, by the page and the heading named in quotes', () => {
    const refs: string[] = [];
    const broken: string[] = [];
    for (const file of sources()) {
      const text = readFileSync(path.join(REPO, file), 'utf8');
      for (const m of text.matchAll(/\b(README|docs\/[\w-]+\.md),? "([^"\n]+)"/g)) {
        const page = m[1] === 'README' ? 'README.md' : m[1]!;
        refs.push(`${page} "${m[2]}"`);
        const there = existsSync(path.join(REPO, page)) ? headings(doc(page)).map((h) => h.text) : [];
        if (!there.includes(m[2]!)) broken.push(`${file}: ${m[0]}`);
      }
    }
    expect(refs.length).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});
