/**
 * Alerts: a small JSON POST to a webhook when a run ends in an outcome the job asks for
 * (alerts.on). Sent with a timeout and a few tries, and never fails the run: an alert that
 * cannot be delivered is a warning in the log. A redirect is not followed but reported: a
 * receiver that moved is told apart from one that received the alert.
 */
import type { Logger } from 'pino';
import type { NightscoreError } from '../errors.js';
import type { JobDefinition } from '../job/load.js';
import type { RunManifest } from '../run/manifest.js';
import { environment } from '../settings.js';

/**
 * What a run's end may be alerted on. `drift` is beside the others: a run that drifted under
 * drift.mode: warn succeeded and drifted; under enforce it failed (a limit) and drifted. A job
 * that asks for two of a run's outcomes still gets one post.
 */
export type AlertOutcome = 'failed' | 'limits' | 'succeeded' | 'drift' | 'shadow';

export interface AlertPayload {
  /** For Slack and compatible receivers: one line saying it all. */
  text: string;
  job: string;
  date: string;
  status: 'failed' | 'succeeded';
  error: { code: string; message: string; hint: string | null } | null;
  rows: { read: number; scored: number; rejected: number } | null;
  manifest_uri: string | null;
  /** The run's drift when it measured one: its overall status and the columns that drifted (the figures are in `_drift.json`). */
  drift: { status: string; drifted: string[] } | null;
  /** Each challenger's agreement with the model when the run compared any (the figures are in `_shadow.json`). */
  shadow: Array<{ name: string; status: string; agreement: number | null }> | null;
}

const TRIES = 3;
const ALERT_REDIRECTED = 'alert not delivered: the webhook answered with a redirect, which is not followed; set the webhook to its new address (the run is not affected)';
const TIMEOUT_MS = 5_000;

/** Where and on what a job alerts: its `alerts`, else the process's NIGHTSCORE_ALERT_WEBHOOK on failed and limits. */
function alertsOf(job: JobDefinition): { webhook: string; on: string[]; min_agreement?: number } | undefined {
  if (job.alerts) return job.alerts;
  const webhook = environment().settings.NIGHTSCORE_ALERT_WEBHOOK;
  return webhook ? { webhook, on: ['failed', 'limits'] } : undefined;
}

/** The payload of a run's end, from its manifest or, for a run that failed before it had one, its error. */
export function alertPayload(job: JobDefinition, date: string, end: { manifest?: RunManifest; error?: NightscoreError }): AlertPayload {
  const { manifest } = end;
  const error = manifest?.error ? { code: manifest.error.code, message: manifest.error.message, hint: manifest.error.hint ?? null } : end.error ? { code: end.error.code, message: end.error.message, hint: end.error.hint ?? null } : null;
  const status = error ? 'failed' : 'succeeded';
  const rows = manifest ? manifest.rows : null;
  const drift = manifest?.drift ? { status: manifest.drift.status, drifted: manifest.drift.drifted } : null;
  // Under enforce the error names the drifted columns already.
  const drifted = drift?.status === 'drift' && !error ? ` · drift: ${drift.drifted.join(', ')} (${manifest!.output.uri}_drift.json)` : '';
  const shadow = manifest?.shadow ? manifest.shadow.challengers.map((c) => ({ name: c.name, status: c.status, agreement: c.agreement })) : null;
  const below = shadowBelow(job, shadow);
  const shadowed = below.length > 0 ? ` · challengers: ${below.map((c) => `${c.name} ${c.agreement === null ? 'no data' : `${(c.agreement * 100).toFixed(2)}% agree`}`).join(', ')} (${manifest!.output.uri}_shadow.json)` : '';
  const text = error
    ? `nightscore: ${job.name} ${date} failed: ${error.code}: ${error.message}`
    : `nightscore: ${job.name} ${date} succeeded: ${rows?.scored ?? 0} rows scored, ${rows?.rejected ?? 0} rejected${drifted}${shadowed}`;
  return { text, job: job.name, date, status, error, rows, manifest_uri: manifest ? `${manifest.output.uri}_manifest.json` : null, drift, shadow };
}

/** The challengers that agree with the model on less than the job's alerts.min_agreement (0.98 by default), or compared nothing. */
function shadowBelow(job: JobDefinition, shadow: AlertPayload['shadow']): NonNullable<AlertPayload['shadow']> {
  const min = job.alerts?.min_agreement ?? 0.98;
  return (shadow ?? []).filter((c) => c.agreement === null || c.agreement < min);
}

/** The outcomes a run's end is: succeeded, failed or limits; drift when its overall drift status is drift; shadow when a challenger of `job` is below its min_agreement. */
export function outcomesOf(payload: AlertPayload, kind: string | undefined, job: JobDefinition): AlertOutcome[] {
  const end: AlertOutcome = payload.status === 'succeeded' ? 'succeeded' : kind === 'limit' ? 'limits' : 'failed';
  const outcomes: AlertOutcome[] = [end];
  if (payload.drift?.status === 'drift') outcomes.push('drift');
  if (shadowBelow(job, payload.shadow).length > 0) outcomes.push('shadow');
  return outcomes;
}

/** Posts the alert, once, if the job asks for any of the run's outcomes; resolves whatever happens. */
export async function sendAlert(job: JobDefinition, payload: AlertPayload, outcomes: AlertOutcome[], log: Logger): Promise<void> {
  let outcome: AlertOutcome | undefined;
  try {
    const alerts = alertsOf(job);
    outcome = outcomes.find((o) => alerts?.on.includes(o));
    if (!alerts || !outcome) return;
    await post(alerts, job, payload, outcome, log);
  } catch (err) {
    // Whatever goes wrong in posting is a warning, never the run's failure (the webhook's form was checked when it was read).
    log.warn({ job: job.name, date: payload.date, outcome, err: (err as Error).message }, 'alert not delivered (the run is not affected)');
  }
}

async function post(alerts: { webhook: string }, job: JobDefinition, payload: AlertPayload, outcome: AlertOutcome, log: Logger): Promise<void> {
  let last = '';
  for (let attempt = 1; attempt <= TRIES; attempt++) {
    try {
      // Redirects are not followed: fetch would turn a 301/302 into a GET without the payload
      // (answered 200, "sent") and re-post a 307/308 to whatever host Location names.
      const res = await fetch(alerts.webhook, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
      await res.body?.cancel();
      if (res.ok) {
        log.info({ job: job.name, date: payload.date, outcome }, 'alert sent');
        return;
      }
      last = `HTTP ${res.status}`;
      if (res.status >= 300 && res.status < 400) {
        // The receiver will redirect the next try too: its address is the setting to change.
        log.warn({ job: job.name, date: payload.date, outcome, webhook: new URL(alerts.webhook).origin, status: res.status, location: locationOf(res, alerts.webhook) }, ALERT_REDIRECTED);
        return;
      }
      // A receiver that refuses the request (4xx but 429) will refuse it again.
      if (res.status >= 400 && res.status < 500 && res.status !== 429) break;
    } catch (err) {
      last = (err as Error).message;
    }
    if (attempt < TRIES) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
  log.warn({ job: job.name, date: payload.date, outcome, webhook: new URL(alerts.webhook).origin, err: last }, 'alert not delivered (the run is not affected)');
}

/**
 * Where a redirect points, as its origin: a webhook's path is often its secret (Slack's is),
 * and so may be the path it moved to; the origin says enough to go and look.
 */
function locationOf(res: Response, webhook: string): string {
  const location = res.headers.get('location');
  if (!location) return '(no Location header)';
  try {
    return new URL(location, webhook).origin;
  } catch {
    return '(a Location that is not a URL)';
  }
}
