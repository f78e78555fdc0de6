/** The front page: a calendar of dates per job, totals, and the queue panels. */
import type { JobDefinition } from '../job/load.js';
import { modelLocation } from '../job/load.js';
import type { Notice } from './context.js';
import { CELL_STATES, DRIFT_STATUSES, type CellState, type JobDates, type UiDateStatus } from './dates.js';
import { DRIFT_LABELS, driftMark, errorLine, fmtInt, fmtMinute, h, layout, noticesHtml, runHref, stateChip, STATE_LABELS, svgHtml, type Html } from './html.js';
import { isInFlight } from '../queue/queues.js';
import type { QueuePanels } from './queue-panels.js';

export interface GridPageData {
  from: string;
  to: string;
  /** Per job, its dates and the SVG of its run health over them (rows read, reject rate, duration), when drawn. */
  jobs: Array<{ job: JobDefinition; dates: JobDates; health?: string }>;
  panels: QueuePanels;
  notices: Notice[];
  refreshSeconds: number;
  /** When the page was read (ISO 8601). */
  at: string;
}

export function gridPage(d: GridPageData): Html {
  const notices = [...d.notices, ...d.jobs.flatMap((j) => j.dates.notices), ...d.panels.notices];
  const body = h`<h1>Runs by date <span class="muted">${d.from} to ${d.to}</span></h1>
${noticesHtml(notices)}
<div class="legend">${CELL_STATES.map((s) => stateChip(s))}${DRIFT_STATUSES.map((s) => h`<span class="chip d-${s}">${driftMark(s)}${DRIFT_LABELS[s]}</span>`)}<span class="muted">read ${d.at}; refreshes every ${d.refreshSeconds} s</span></div>
${d.jobs.length === 0 ? h`<p>No job files in the jobs folder.</p>` : ''}
<div class="jobs">${d.jobs.map(({ job, dates, health }) => jobCard(job, dates, health))}</div>
${queuePanels(d.panels)}`;
  return layout({ title: 'runs by date', refreshSeconds: d.refreshSeconds, range: { from: d.from, to: d.to } }, body);
}

function jobCard(job: JobDefinition, d: JobDates, health: string | undefined): Html {
  const first = d.dates[0]?.date;
  // Monday-first weeks: blank cells before the first date put every date under its weekday.
  const pad = first ? (new Date(`${first}T00:00:00Z`).getUTCDay() + 6) % 7 : 0;
  const totals = CELL_STATES.filter((s) => d.totals[s]).map((s) => h`<span class="chip s-${s}" data-total-state="${s}" data-count="${d.totals[s]}">${d.totals[s]} ${STATE_LABELS[s]}</span>`);
  return h`<section class="job" data-job="${job.name}">
<h2 id="job-${job.name}">${job.name}</h2>
<p class="meta">${job.description ? h`${job.description}<br>` : ''}model <span class="mono">${modelLocation(job)}</span><br>output <span class="mono">${job.output.uri}</span>${job.schedule ? h`<br>schedule <span class="mono">${job.schedule.cron}</span> ${job.schedule.tz}` : ''}</p>
<div class="totals">${totals}${DRIFT_STATUSES.filter((s) => d.drift_totals[s]).map((s) => h`<span class="chip d-${s}" data-total-drift="${s}" data-count="${d.drift_totals[s]}">${d.drift_totals[s]} ${DRIFT_LABELS[s]}</span>`)}</div>
<div class="cal">${['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'].map((w) => h`<span class="dow">${w}</span>`)}${Array.from({ length: pad }, () => h`<span></span>`)}${d.dates.map((s, i) => cell(job.name, s, i === 0))}</div>
${health ? h`<div class="health" data-health="${job.name}">${svgHtml(health)}</div>` : ''}
</section>`;
}

function cell(job: string, s: UiDateStatus, first: boolean): Html {
  const day = Number(s.date.slice(8));
  const month = first || day === 1 ? new Date(`${s.date}T00:00:00Z`).toLocaleString('en-US', { month: 'short', timeZone: 'UTC' }) : '';
  const progress = s.state === 'running' && s.chunks ? `${s.chunks.done}/${s.chunks.total}` : '';
  const chunks = s.chunks ? h` data-chunks-done="${s.chunks.done}" data-chunks-total="${s.chunks.total}"` : '';
  const drift = s.drift ? h` data-drift="${s.drift.status}"` : '';
  return h`<a class="cell s-${s.cell}" href="${runHref(job, s.date)}" data-job="${job}" data-date="${s.date}" data-state="${s.cell}"${chunks}${drift} title="${cellTitle(s)}">${month ? h`<span class="m">${month}</span>` : ''}<span class="d">${day}</span>${progress ? h`<span class="x">${progress}</span>` : ''}${s.drift ? driftMark(s.drift.status) : ''}</a>`;
}

/** The tooltip: what `status` says of the date, in one line. */
function cellTitle(s: UiDateStatus): string {
  const parts = [s.date, s.waiting_for_input ? 'queued, waiting for input' : STATE_LABELS[s.cell]];
  if (s.chunks) parts.push(`${s.chunks.done}/${s.chunks.total} chunks`);
  if (s.rows) parts.push(`${fmtInt(s.rows.scored)} scored, ${fmtInt(s.rows.rejected)} rejected`);
  if (s.model) parts.push(`model ${s.model}`);
  if (s.cell === 'stale' && s.model_check) parts.push(s.model_check);
  if (s.drift) parts.push(driftLine(s.drift));
  if (s.error) parts.push(s.error);
  return parts.join(' · ');
}

/** `drifted: f1, f2; warned: f3`: the status and the columns that made it. */
function driftLine(d: NonNullable<UiDateStatus['drift']>): string {
  const named = ([['drifted', d.drifted], ['warned', d.warned], ['inconclusive', d.inconclusive]] as const).filter(([, cols]) => cols.length > 0);
  const columns = named.map(([what, cols]) => `${what}: ${cols.join(', ')}`).join('; ');
  return `${DRIFT_LABELS[d.status]}${columns ? ` (${columns})` : ''}`;
}

function queuePanels(p: QueuePanels): Html {
  return h`<div class="panels">
<section class="panel" id="in-flight"><h3>Runs in flight</h3>
${p.in_flight.length === 0 ? h`<p class="muted">none</p>` : h`<p class="muted" data-in-flight-counts>${inFlightCounts(p)}</p><table><tr><th>run</th><th>state</th><th>chunks</th><th>rows read</th></tr>${p.in_flight.map(inFlightRow)}</table>`}</section>
<section class="panel" id="failures"><h3>Recent failures</h3>
${p.failures.length === 0 ? h`<p class="muted">none on the queue</p>` : h`<table><tr><th>run</th><th>when</th></tr>${p.failures.map(failureRows)}</table>`}</section>
<section class="panel" id="backfills"><h3>Backfills</h3>
${p.backfills.length === 0 ? h`<p class="muted">none on this queue</p>` : h`<table><tr><th>id</th><th>dates</th><th>states</th></tr>${p.backfills.map((b) => h`<tr data-backfill="${b.id}"><td class="mono id">${b.id}<br><span class="muted">${b.job}</span></td><td>${b.first ?? '–'}..${b.last ?? '–'} (${b.dates})${b.cancelled_at ? h`<br><span class="muted">cancelled</span>` : ''}</td><td>${Object.entries(b.counts).map(([s, n]) => stateChip(s as CellState, `${n} ${STATE_LABELS[s as CellState] ?? s}`))}${b.eta_ms !== null && !b.done ? h`<br><span class="muted">about ${Math.ceil(b.eta_ms / 60_000)} min left</span>` : ''}</td></tr>`)}</table>`}</section>
</div>`;
}

/**
 * `runs: 1 active, 1 waiting · chunks: 3 active, 5 waiting`: what the table below lists. Only
 * runs count (the queue's delayed jobs include the schedules' next fires), and only states in
 * flight (failed and completed jobs are not).
 */
function inFlightCounts(p: QueuePanels): string {
  const runs = new Map<string, number>();
  for (const r of p.in_flight) runs.set(r.queue_state, (runs.get(r.queue_state) ?? 0) + 1);
  const chunks = Object.entries(p.counts.chunks ?? {}).filter(([state, n]) => isInFlight(state) && n > 0);
  const line = (entries: Iterable<[string, number]>) => [...entries].map(([state, n]) => `${n} ${state}`).join(', ');
  return `runs: ${line(runs)}${chunks.length ? ` · chunks: ${line(chunks)}` : ''}`;
}

/** A failure in two rows: the run and when, then its error across the panel's whole width. */
function failureRows(f: QueuePanels['failures'][number]): Html {
  return h`<tbody data-failure="${f.id}"><tr><td class="mono id">${f.date ? h`<a href="${runHref(f.job, f.date)}">${f.id}</a>` : f.id}</td><td class="id" title="${f.finished_at ?? ''}">${fmtMinute(f.finished_at)} <span class="muted">· ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}</span></td></tr><tr><td colspan="2" class="wrap">${errorLine(f.error)}</td></tr></tbody>`;
}

function inFlightRow(r: QueuePanels['in_flight'][number]): Html {
  const s = r.status;
  const state = s?.waiting_for_input ? 'waiting for input' : (s ? STATE_LABELS[s.state] : r.queue_state);
  const chunks = s?.chunks ? `${s.chunks.done}/${s.chunks.total}` : '–';
  return h`<tr data-in-flight="${r.id}"><td class="mono id"><a href="${runHref(r.job, r.date)}">${r.id}</a></td><td>${state}<br><span class="muted">${r.queue_state}</span></td><td class="n">${chunks}</td><td class="n">${fmtInt(s?.rows?.read)}</td></tr>`;
}
