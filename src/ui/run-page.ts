/** The page of one run: its status, manifest, first rejects and error. */
import type { ErrorRecord } from '../errors.js';
import type { RunManifest } from '../run/manifest.js';
import { DRIFT_LABELS, driftMark, fmtBytes, fmtInt, fmtMs, h, layout, noticesHtml, stateChip, STATE_LABELS, svgHtml, type Html } from './html.js';
import type { RunDetail } from './run-detail.js';
import { MAX_HISTOGRAMS } from './charts.js';
import type { DriftColumnView } from './run-drift.js';
import { FLOOR_FACTOR } from '../drift/statistics.js';

/** `histograms`: per column of `d.drift`, in its order, the SVG drawn for it (ChartCache.drawHistograms). */
export function runPage(d: RunDetail, refreshSeconds: number, histograms: ReadonlyArray<string | undefined> = []): Html {
  const s = d.status;
  const m = d.manifest;
  const live = s.state === 'running' || s.state === 'scheduled';
  // A finished manifest's counts; while running, those of the chunks scored so far (status).
  const rows = m && m.status !== 'running' ? m.rows : s.rows;
  const body = h`<p><a href="/">← all jobs</a> · <a href="/api/runs/${encodeURIComponent(d.job)}/${d.date}">this run as JSON</a></p>
<h1 data-run="${d.job}@${d.date}">${d.job} · ${d.date} ${stateChip(s.cell, s.waiting_for_input ? 'queued, waiting for input' : STATE_LABELS[s.cell])}</h1>
${noticesHtml(d.notices)}
${d.error ? errorBlock(d.error) : d.error_text ? h`<div class="error" data-error-code=""><b>failed</b>: ${d.error_text}</div>` : ''}
<div class="card"><dl>
${field('state', 'state', s.cell)}
${s.chunks ? field('chunks', 'chunks', `${s.chunks.done} of ${s.chunks.total} done`) : m ? field('chunks', 'chunks', m.chunks) : ''}
${field('rows.read', 'rows read', fmtInt(rows?.read), rows?.read)}
${field('rows.scored', 'rows scored', fmtInt(rows?.scored), rows?.scored)}
${field('rows.rejected', 'rows rejected', fmtInt(rows?.rejected), rows?.rejected)}
${m ? modelFields(m) : ''}
${s.model_check ? field('model_check', 'model check', s.model_check) : ''}
${m ? field('started_at', 'started', m.started_at) : ''}
${m ? field('finished_at', 'finished', m.finished_at ?? '–') : ''}
${m ? field('duration_ms', 'duration', fmtMs(m.duration_ms), m.duration_ms) : ''}
${d.queue ? field('queue', 'queue', `${d.queue.id}: ${d.queue.state}, ${d.queue.attempts} attempt${d.queue.attempts === 1 ? '' : 's'}${d.queue.backfill ? `, backfill ${d.queue.backfill}` : ''}`) : ''}
${s.enqueued_at ? field('enqueued_at', 'enqueued', s.enqueued_at) : ''}
${s.waiting_for_input ? field('waiting_for_input', 'waiting since', `${s.waiting_for_input.since}: ${s.waiting_for_input.reason}`) : ''}
${field('output', 'output', d.output_uri)}
${m ? field('attempt', 'attempt', m.attempt) : ''}
${m ? field('nightscore', 'written by', `nightscore ${m.nightscore.version} on ${m.nightscore.host} (pid ${m.nightscore.pid})`) : ''}
</dl></div>
${m ? manifestTables(m) : h`<p class="muted">No manifest yet: ${live ? 'the run has not written one.' : 'the date has not been run.'}</p>`}
${rejectsTable(d)}
${driftSection(d, histograms)}
${shadowSection(m)}`;
  return layout({ title: `${d.job} ${d.date}`, refreshSeconds: live ? refreshSeconds : undefined }, body);
}

/** One term of the summary; `data-value` carries the exact value for scripts and tests. */
function field(name: string, label: string, shown: string | number, value: string | number | null | undefined = shown): Html {
  return h`<dt>${label}</dt><dd data-field="${name}" data-value="${value ?? ''}">${shown}</dd>`;
}

function modelFields(m: RunManifest): Html {
  const name = m.model.name ? `${m.model.name}@${m.model.version}${m.model.alias ? ` (via @${m.model.alias})` : ''}` : '';
  return h`${name ? field('model', 'model', name) : ''}
${field('model.ref', 'model reference', m.model.ref ?? m.model.path)}
<dt>model sha256</dt><dd class="mono" data-field="model.sha256" data-value="${m.model.sha256}">${m.model.sha256}</dd>`;
}

function errorBlock(e: ErrorRecord): Html {
  const where = [e.source, e.line === undefined ? undefined : `line ${e.line}`, e.column === undefined ? undefined : `column ${e.column}`].filter(Boolean).join(', ');
  return h`<div class="error" data-error-code="${e.code}"><div><code data-field="error.code">${e.code}</code> <span class="muted">(${e.kind}${e.retryable ? ', retried' : ''})</span>: <span data-field="error.message">${e.message}</span></div>
${e.hint ? h`<div class="hint">hint: <span data-field="error.hint">${e.hint}</span></div>` : ''}${where ? h`<div class="muted mono">${where}</div>` : ''}</div>`;
}

function manifestTables(m: RunManifest): Html {
  return h`<div class="card"><h3>Inputs (${m.inputs.length})</h3>
<table><tr><th>object</th><th>bytes</th><th>rows</th></tr>${m.inputs.map((i) => h`<tr data-input="${i.uri}"><td class="mono">${i.uri}</td><td class="n" data-bytes="${i.bytes}">${fmtBytes(i.bytes)}</td><td class="n">${fmtInt(i.rows)}</td></tr>`)}</table>
${m.skipped.length ? h`<h3>Skipped (${m.skipped.length})</h3><table>${m.skipped.map((k) => h`<tr><td class="mono">${k.uri}</td><td>${k.reason}</td></tr>`)}</table>` : ''}
<h3>Parts (${m.parts.length})</h3>
<table><tr><th>part</th><th>rows</th></tr>${m.parts.map((p) => h`<tr data-part="${p.uri}" data-rows="${p.rows}"><td class="mono">${p.uri}</td><td class="n">${fmtInt(p.rows)}</td></tr>`)}</table>
${m.rejects.length ? h`<h3>Rejects files (${m.rejects.length})</h3><table>${m.rejects.map((r) => h`<tr data-rejects-file="${r.uri}"><td class="mono">${r.uri}</td><td class="n">${fmtInt(r.rows)}</td></tr>`)}</table>` : ''}
<h3>Limits</h3><p>max reject rate ${m.limits.max_reject_rate}, min rows ${fmtInt(m.limits.min_rows)}</p></div>`;
}

function rejectsTable(d: RunDetail): Html {
  const r = d.rejects;
  if (!r) return h``;
  const more = r.total > r.rows.length ? h` <span class="muted">(the first ${r.rows.length} of ${fmtInt(r.total)})</span>` : '';
  return h`<div class="card" id="rejects"><h3>Rejected rows${more}</h3>
<table><tr><th>source</th><th>line</th>${r.keys.map((k) => h`<th>${k}</th>`)}<th>reason</th></tr>
${r.rows.map((row) => h`<tr data-reject-line="${row.line}"><td class="mono" title="${row.source}">${row.source.slice(row.source.lastIndexOf('/') + 1)}</td><td class="n">${row.line}</td>${row.key.map((k) => h`<td class="mono">${k}</td>`)}<td data-reason>${row.reason}</td></tr>`)}</table></div>`;
}

/**
 * The run's drift: its status, and a row per column (highest PSI first) with every statistic and
 * a histogram of the reference against the run. A run that measured none says so; one whose
 * report could not be read has a notice above, and says so here.
 */
function driftSection(d: RunDetail, histograms: ReadonlyArray<string | undefined>): Html {
  const m = d.manifest;
  if (!m?.drift) return h`<section class="card" id="drift" data-drift-section="none"><h3>Drift</h3><p class="muted">${m ? 'This run measured no drift: its job sets no drift profile, or drift.mode: off.' : 'No run yet.'}</p></section>`;
  const drift = d.drift;
  if (!drift) return h`<section class="card" id="drift" data-drift-section="unreadable"><h3>Drift: ${driftMark(m.drift.status)}${DRIFT_LABELS[m.drift.status]}</h3><p>The drift report could not be read: see the notice above.</p></section>`;
  const past = drift.columns.length > MAX_HISTOGRAMS ? h`<p class="muted">Histograms for the ${MAX_HISTOGRAMS} columns of highest PSI; the other ${drift.columns.length - MAX_HISTOGRAMS} are listed without one.</p>` : '';
  return h`<section class="card" id="drift" data-drift-section="report" data-drift-status="${drift.status}"><h3>Drift: ${driftMark(drift.status)}${DRIFT_LABELS[drift.status]} <span class="muted">(mode ${drift.mode})</span></h3>
<p class="muted">Against the profile <span class="mono">${drift.profile.uri}</span> (sha256 ${drift.profile.sha256.slice(0, 12)}). Columns by PSI, highest first; the status is judged on the statistic named, and counts only at ${FLOOR_FACTOR} noise floors or more.</p>
${drift.reference_problem ? h`<div class="notice" data-reference-problem><b>reference not drawn</b>: the histograms show the run's counts alone: ${drift.reference_problem}</div>` : ''}
${past}
<table class="drift-table"><tr><th>column</th><th>status</th><th>statistic</th><th>value</th><th>floor</th><th>PSI</th><th>KS</th><th>missing Δ</th><th>unseen</th><th>reasons</th><th>reference vs run</th></tr>
${drift.columns.map((c, i) => driftRow(c, histograms[i]))}</table></section>`;
}

function driftRow({ report: r }: DriftColumnView, svg: string | undefined): Html {
  return h`<tr data-drift-column="${r.name}" data-role="${r.role}" data-status="${r.status}" data-psi="${r.psi ?? ''}"><td><b>${r.name}</b><br><span class="muted">${r.role}, ${r.kind}</span></td><td>${driftMark(r.status)}${r.status}</td><td>${r.statistic}</td>${[r.value, r.floor, r.psi, r.ks, r.missing_delta, r.unseen_share].map((v) => h`<td class="n">${showStatistic(v)}</td>`)}<td class="reasons">${r.reasons.map((x) => h`<div>${x}</div>`)}</td><td class="hist">${svg ? svgHtml(svg) : h`<span class="muted">–</span>`}</td></tr>`;
}

function showStatistic(v: number | null): string {
  return v === null ? '–' : String(Number(v.toPrecision(3)));
}

/** The run's challengers as its manifest sums them up (the figures in full are in `_shadow.json`). */
function shadowSection(m: RunManifest | null): Html {
  const shadow = m?.shadow;
  if (!shadow) return h`<section id="shadow" data-shadow-section="none"><h3>Challengers</h3><p class="muted">This run compared no challenger with its model (shadow: in the job file).</p></section>`;
  return h`<section id="shadow" data-shadow-section="compared"><h3>Challengers</h3>
<p class="muted">Compared on ${shadow.compare.output}[${shadow.compare.column}]${shadow.compare.kind === 'score' ? ` at ${shadow.compare.threshold}` : ''}; every figure is in the run folder's _shadow.json.</p>
<table><tr><th>challenger</th><th>status</th><th>rows compared</th><th>agreement</th><th>seconds</th><th>error</th></tr>
${shadow.challengers.map((c) => h`<tr data-challenger="${c.name}" data-status="${c.status}" data-agreement="${c.agreement ?? ''}"><td>${c.name}</td><td>${c.status}</td><td>${fmtInt(c.rows_compared)}</td><td>${c.agreement === null ? '–' : `${(c.agreement * 100).toFixed(2)}%`}</td><td>${c.seconds.toFixed(2)}</td><td>${c.error ?? ''}</td></tr>`)}
</table></section>`;
}
