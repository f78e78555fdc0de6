import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './workspace.js';

/**
 * The markdown pages of the repository, read the way the tests that quote them need: a
 * section by its heading, and the anchors GitHub gives the headings, so links can be checked.
 */

/** A page's text, by its path from the repository root (README.md, docs/errors.md). */
export function doc(file: string): string {
  return readFileSync(path.join(REPO, file), 'utf8');
}

export interface Heading {
  level: number;
  text: string;
  /** 0-based line of the heading in the page. */
  line: number;
}

/** Lines of a page outside fenced code blocks, where a `#` starts a heading rather than a shell comment. */
export function proseLines(markdown: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) out.push({ text, line });
  });
  return out;
}

export function headings(markdown: string): Heading[] {
  return proseLines(markdown).flatMap(({ text, line }) => {
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(text);
    return m ? [{ level: m[1]!.length, text: m[2]!, line }] : [];
  });
}

/**
 * One section of a page: from its heading to the next heading of its level or above, or the
 * end of the page. A heading that is not there throws, so a test never passes on an empty slice.
 */
export function section(file: string, heading: string): string {
  const text = doc(file);
  const all = headings(text);
  const at = all.findIndex((h) => h.text === heading);
  if (at < 0) throw new Error(`${file} has no heading "${heading}"`);
  const end = all.slice(at + 1).find((h) => h.level <= all[at]!.level);
  return text.split('\n').slice(all[at]!.line, end?.line).join('\n');
}

/** The text GitHub renders for a heading: code spans without backticks, links as their text, no emphasis marks. */
function rendered(heading: string): string {
  return heading
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\*/g, '');
}

/**
 * The anchors of a page's headings, by GitHub's rule (github-slugger): lower case, every
 * character but letters, marks, digits, connectors, spaces and hyphens dropped, each space a
 * hyphen; a slug seen before gets -1, -2, ….
 */
export function anchors(markdown: string): Set<string> {
  const seen = new Set<string>();
  for (const h of headings(markdown)) {
    const base = rendered(h.text).toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    let slug = base;
    for (let n = 1; seen.has(slug); n++) slug = `${base}-${n}`;
    seen.add(slug);
  }
  return seen;
}

/** The targets of a page's links and images (inline, which may wrap, and reference definitions), outside code. */
export function linkTargets(markdown: string): { target: string; line: number }[] {
  const lines = markdown.split('\n').map(() => '');
  for (const { text, line } of proseLines(markdown)) lines[line] = text.replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length));
  const prose = lines.join('\n');
  const lineAt = (offset: number) => prose.slice(0, offset).split('\n').length;
  const inline = [...prose.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const definitions = [...prose.matchAll(/^ {0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)>?/gm)];
  return [...inline, ...definitions].map((m) => ({ target: m[1]!, line: lineAt(m.index) }));
}
