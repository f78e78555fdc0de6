/** The models view: versions, aliases, the alias history with each gate's report, and each challenger's agreement. */
import type { GateEvent } from '../registry/registry.js';
import { h, layout, noticesHtml, svgHtml, type Html } from './html.js';
import type { ModelsView, ModelView } from './models.js';

/** `charts`: per model of `view`, in its order, its agreement chart (ChartCache.drawAgreement). */
export function modelsPage(view: ModelsView, charts: ReadonlyArray<string | undefined>, refreshSeconds: number): Html {
  const body = h`<h1>Models</h1>
${noticesHtml(view.notices)}
${view.models.length === 0 ? h`<p>No registered model: the jobs name no registry, or it holds none (nightscore model register).</p>` : view.models.map((m, i) => modelSection(m, charts[i]))}
<p><a href="/api/models">these models as JSON</a></p>`;
  return layout({ title: 'models', refreshSeconds }, body);
}

function modelSection(m: ModelView, chart: string | undefined): Html {
  const aliasOf = (v: number) => Object.entries(m.aliases).filter(([, to]) => to === v).map(([a]) => a);
  return h`<section class="job model" data-model="${m.name}">
<h2>${m.name}</h2>
<p class="meta">${m.registry} · aliases at generation ${m.generation}</p>
<p>${Object.entries(m.aliases).map(([alias, v]) => h`<span class="chip s-succeeded" data-alias="${alias}" data-version="${v}">${alias} → ${v}</span>`)}</p>
<h3>Versions</h3>
<table><tr><th>version</th><th>aliases</th><th>sha256</th><th>created</th><th>metrics</th><th>tags</th><th>checks</th><th>evaluation</th></tr>
${[...m.versions].reverse().map((v) => h`<tr data-version="${v.version}"><td>${v.version}</td><td>${aliasOf(v.version).join(', ')}</td><td><code title="${v.sha256}">${v.sha256.slice(0, 12)}</code></td><td>${v.created_at} by ${v.created_by}</td><td>${pairs(v.metrics)}</td><td>${pairs(v.tags)}</td><td>${v.checks || ''}</td><td data-evaluation="${v.evaluation ? 'yes' : ''}">${v.evaluation ? h`${pairs(v.evaluation.metrics)} on ${v.evaluation.rows.evaluated} rows (${v.evaluation.at})` : ''}</td></tr>`)}
</table>
<h3>Alias history</h3>
${m.history.length === 0 ? h`<p>No alias was ever moved.</p>` : h`<table><tr><th>when</th><th>alias</th><th>from</th><th>to</th><th>who</th><th>reason</th><th>gate</th></tr>
${m.history.map((e) => h`<tr data-move="${e.generation}" data-gate="${e.gate?.verdict ?? ''}"><td>${e.at}</td><td>${e.alias}</td><td>${e.from ?? '-'}</td><td>${e.to ?? '(deleted)'}</td><td>${e.by}</td><td>${e.reason}</td><td>${e.gate ? gateReport(e.gate) : '-'}</td></tr>`)}
</table>`}
${m.unmoved.length === 0 ? '' : h`<h3>Gate reports that moved nothing</h3>${m.unmoved.map((g) => h`<div data-gate-report="${g.verdict}"><p>${g.at}: ${g.from_alias} (version ${g.version}) → ${g.alias}</p>${gateReport(g)}</div>`)}`}
<h3>Challengers' agreement with the champion</h3>
${m.agreement.length === 0 ? h`<p>No job compares a challenger of ${m.name} (shadow:).</p>` : chart ? h`<div class="hist" data-agreement>${svgHtml(chart)}</div>` : h`<p data-agreement="none">No comparison in the last ${m.agreement[0]!.dates.length} days.</p>`}
</section>`;
}

/** A gate's verdict and its conditions, one row each. */
function gateReport(g: GateEvent): Html {
  return h`<span class="chip ${g.verdict === 'pass' ? 's-succeeded' : g.verdict === 'fail' ? 's-failed' : 's-missing'}">${g.verdict}</span> ${g.window.job} ${g.window.from}…${g.window.to}
<table class="gate">${g.conditions.map((c) => h`<tr data-condition="${c.name}" data-result="${c.result}"><td>${c.name}</td><td>${c.value === null ? '-' : String(Number(c.value.toPrecision(6)))}</td><td>${c.bound}</td><td>${c.result}</td><td>${c.detail}</td></tr>`)}</table>`;
}

function pairs(r: Record<string, unknown>): string {
  return Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(6)) : String(v)}`).join(', ');
}
