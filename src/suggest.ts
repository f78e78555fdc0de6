/** "Did you mean …?" for a name that is not one of the names expected. */
import leven from 'leven';

/**
 * The closest of `candidates` to `name`, when it is close enough to be a typo: within a
 * third of the name's length in edits (at least 1, at most 3), case and `_`/`-` ignored.
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_ ]/g, '');
  const target = norm(name);
  const limit = Math.min(3, Math.max(1, Math.floor(target.length / 3)));
  let best: { name: string; d: number; prefix: number } | undefined;
  for (const c of candidates) {
    if (c === name) continue;
    const d = leven(target, norm(c));
    // Ties go to the name sharing the longer start: a dropped or doubled letter is likelier late.
    const prefix = commonPrefix(target, norm(c));
    if (d <= limit && (!best || d < best.d || (d === best.d && prefix > best.prefix))) best = { name: c, d, prefix };
  }
  return best?.name;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** `; did you mean "x"?`, or nothing. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === undefined ? '' : `; did you mean "${c}"?`;
}
