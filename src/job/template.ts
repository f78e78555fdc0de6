import { NightscoreError } from '../errors.js';

/** Placeholders a URI template may use; all derive from the logical date. */
export const PLACEHOLDERS = ['date', 'yyyy', 'mm', 'dd'] as const;

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const PLACEHOLDER_RE = /\{([^{}]*)\}/g;

/**
 * Parses a logical date. Only real calendar dates in YYYY-MM-DD pass, so a date can
 * never carry `/`, `..` or anything else that would move a templated URI out of its prefix.
 */
export function parseLogicalDate(text: string): string {
  const m = DATE_RE.exec(text);
  if (m) {
    const [, y, mo, d] = m;
    const t = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
    if (t.toISOString().slice(0, 10) === text) return text;
  }
  throw new NightscoreError('BAD_DATE', `"${text}" is not a calendar date in YYYY-MM-DD form`, {
    hint: 'Pass the logical date to score, for example --date 2026-11-21.',
  });
}

/** Throws if a template names a placeholder nightscore does not know; the job loader says where. */
export function checkTemplate(template: string): void {
  for (const m of template.matchAll(PLACEHOLDER_RE)) {
    const name = m[1] ?? '';
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new NightscoreError('BAD_TEMPLATE', `unknown placeholder {${name}} in "${template}"`, {
        hint: `Use one of ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}.`,
      });
    }
  }
}

/** Substitutes the logical date into a URI template. `date` must come from parseLogicalDate. */
export function renderTemplate(template: string, date: string): string {
  const [yyyy, mm, dd] = date.split('-') as [string, string, string];
  const values: Record<string, string> = { date, yyyy, mm, dd };
  return template.replace(PLACEHOLDER_RE, (whole, name: string) => values[name] ?? whole);
}
