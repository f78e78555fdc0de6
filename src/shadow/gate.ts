/**
 * The promotion gate (model promote): a challenger's comparisons over a window of a job's
 * days, judged against bounds, each condition pass, fail or inconclusive. Missing days, too
 * few rows, or another challenger version within the window are inconclusive, never a pass.
 */
import { z } from 'zod';
import { NightscoreError } from '../errors.js';
import { jsDistance } from '../drift/measures.js';
import type { GateCondition } from '../registry/records.js';

export const gateSchema = z.strictObject({
  /** Consecutive days, ending at the window's last, each a succeeded run with this challenger version compared. @defaultValue 3 */
  min_days: z.number().int().min(1).max(90).default(3),
  /** Rows compared over the window. @defaultValue 1 */
  min_rows: z.number().int().min(1).default(1),
  /** Share of compared rows whose decisions agree. */
  agreement: z.strictObject({ min: z.number() }).optional(),
  /** Jensen-Shannon distance of the challenger's scores against the champion's, on the window's merged bins. */
  score_js: z.strictObject({ max: z.number() }).optional(),
  /** The share of the rows the champion scored that the challenger failed on. */
  reject_rate_delta: z.strictObject({ max: z.number() }).optional(),
  /** The challenger's prediction drift against its own reference: the statuses allowed. */
  drift: z.strictObject({ allow: z.array(z.enum(['ok', 'warn', 'drift', 'inconclusive'])).min(1) }).optional(),
});

export type Gate = z.output<typeof gateSchema>;

export type Verdict = 'pass' | 'fail' | 'inconclusive';

/** One day of the window as the gate reads it. */
export type GateDay =
  | { date: string; state: 'missing' | 'failed' | 'running' | 'no comparison'; detail: string }
  | {
      date: string;
      state: 'compared';
      /** The challenger version's sha256 in that day's run. */
      sha256: string;
      rows: number;
      compared: number;
      agree: number;
      failed: number;
      bins: { champion: number[]; challenger: number[] };
    };

type Compared = Extract<GateDay, { state: 'compared' }>;

/** The gate's conditions over `days` (oldest first) for the challenger of `sha256`, and the verdict. */
export function judge(gate: Gate, days: readonly GateDay[], sha256: string): { verdict: Verdict; conditions: GateCondition[] } {
  const conditions: GateCondition[] = [];
  const compared = days.filter((d): d is Compared => d.state === 'compared');
  const usable = compared.filter((d) => d.sha256 === sha256);
  const other = compared.filter((d) => d.sha256 !== sha256);
  const gaps = days.filter((d): d is Exclude<GateDay, Compared> => d.state !== 'compared');
  const daysOk = gaps.length === 0 && other.length === 0;
  const why = [...gaps.map((d) => `${d.date}: ${d.detail}`), ...other.map((d) => `${d.date}: another challenger version (sha256 ${d.sha256.slice(0, 12)}…)`)];
  conditions.push({
    name: 'min_days',
    value: usable.length,
    bound: `≥ ${gate.min_days} consecutive days`,
    result: daysOk && usable.length >= gate.min_days ? 'pass' : 'inconclusive',
    detail: daysOk ? `${days[0]?.date ?? '-'}…${days.at(-1)?.date ?? '-'}, each compared` : why.slice(0, 5).join('; ') + (why.length > 5 ? `; and ${why.length - 5} more` : ''),
  });
  const rows = usable.reduce((n, d) => n + d.compared, 0);
  conditions.push({ name: 'min_rows', value: rows, bound: `≥ ${gate.min_rows}`, result: rows >= gate.min_rows ? 'pass' : 'inconclusive', detail: `rows compared over ${usable.length} day(s)` });
  // The measures are taken over the days that count; over a window that cannot be trusted whole
  // (a day missing, another version, too few rows) a value says nothing either way.
  const enough = daysOk && usable.length >= gate.min_days && rows >= gate.min_rows;
  const measured = (name: string, value: number | null, ok: (v: number) => boolean, text: string, detail: string) => {
    const result: Verdict = value === null || !enough ? 'inconclusive' : ok(value) ? 'pass' : 'fail';
    conditions.push({ name, value, bound: text, result, detail });
  };
  if (gate.agreement) {
    const agree = usable.reduce((n, d) => n + d.agree, 0);
    measured('agreement', rows > 0 ? agree / rows : null, (v) => v >= gate.agreement!.min, `≥ ${gate.agreement.min}`, `${agree} of ${rows} rows agree`);
  }
  if (gate.score_js) {
    const sum = (pick: (d: Compared) => number[]) => usable.reduce<number[]>((acc, d) => pick(d).map((n, i) => (acc[i] ?? 0) + n), []);
    measured('score_js', rows > 0 ? jsDistance(sum((d) => d.bins.champion), sum((d) => d.bins.challenger)) : null, (v) => v <= gate.score_js!.max, `≤ ${gate.score_js.max}`, 'Jensen-Shannon distance of the merged score histograms');
  }
  if (gate.reject_rate_delta) {
    const failed = usable.reduce((n, d) => n + d.failed, 0);
    const scored = usable.reduce((n, d) => n + d.rows, 0);
    measured('reject_rate_delta', scored > 0 ? failed / scored : null, (v) => v <= gate.reject_rate_delta!.max, `≤ ${gate.reject_rate_delta.max}`, `the challenger failed on ${failed} of the ${scored} rows the champion scored`);
  }
  if (gate.drift) {
    conditions.push({ name: 'drift', value: null, bound: `in [${gate.drift.allow.join(', ')}]`, result: 'inconclusive', detail: 'runs do not measure the drift of a challenger\'s predictions yet' });
  }
  const verdict: Verdict = conditions.some((c) => c.result === 'fail') ? 'fail' : conditions.some((c) => c.result === 'inconclusive') ? 'inconclusive' : 'pass';
  return { verdict, conditions };
}

/** A gate file's text as a Gate, or GATE_INVALID naming the first field that is not of its type. */
export function parseGate(value: unknown, source: string): Gate {
  const parsed = gateSchema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(the whole file)';
  throw new NightscoreError('GATE_INVALID', `${source}: ${field}: ${issue.message}`, {
    source,
    column: field,
    hint: 'A gate file holds min_days, min_rows, agreement: { min }, score_js: { max }, reject_rate_delta: { max } and drift: { allow: [...] } (docs/shadow.md, "The promotion gate").',
  });
}
