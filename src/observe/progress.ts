import { namesInBrief } from '../drift/history.js';
import type { ShadowSummary } from '../shadow/report.js';
import type { RunManifest } from '../run/manifest.js';
import type { RunEvent } from '../run/run.js';

const n = (x: number) => x.toLocaleString('en-US');

/** Formats bytes as a short human size. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/**
 * A one-line progress display for a terminal: rewritten in place at most every 200 ms.
 * Returns the event handler and a function that clears the line.
 */
export function terminalProgress(stream: NodeJS.WriteStream): { onEvent: (e: RunEvent) => void; clear: () => void } {
  const started = Date.now();
  let last = 0;
  let shown = false;
  const onEvent = (e: RunEvent) => {
    const now = Date.now();
    if (now - last < 200) return;
    last = now;
    const rate = e.rows.read / Math.max((now - started) / 1000, 0.001);
    stream.write(`\r\x1b[2Kchunk ${e.chunk + 1}/${e.chunks} · ${n(e.rows.read)} rows read · ${n(e.rows.rejected)} rejected · ${n(Math.round(rate))} rows/s`);
    shown = true;
  };
  return { onEvent, clear: () => shown && stream.write('\r\x1b[2K') };
}

/** A run's drift in one line: the status, the columns that drifted or warned, and where the figures are. */
export function formatDrift(d: NonNullable<RunManifest['drift']>): string {
  const parts: string[] = [d.status];
  if (d.drifted.length > 0) parts.push(`drifted: ${namesInBrief(d.drifted)}`);
  if (d.warned.length > 0) parts.push(`warn: ${namesInBrief(d.warned)}`);
  if (d.inconclusive.length > 0) parts.push(`inconclusive (too few rows to tell): ${namesInBrief(d.inconclusive)}`);
  if (d.segments && d.segments.drifted_total > 0) {
    // A value quoted, so a value spelled OTHER is not the OTHER segment.
    const names = d.segments.drifted.map((s) => (s.kind === 'value' ? JSON.stringify(s.value) : s.kind.toUpperCase()));
    parts.push(`segments of ${d.segments.column} drifted: ${namesInBrief(names, d.segments.drifted_total)}`);
  }
  return `${parts.join(' · ')}  (${d.file}; drift.mode ${d.mode})`;
}

/** Each challenger's agreement with the champion, in one line: `v2 98.70% agree · old no data`. */
function formatShadow(s: ShadowSummary): string {
  const each = s.challengers.map((c) => (c.agreement === null ? `${c.name} no data` : `${c.name} ${(c.agreement * 100).toFixed(2)}% agree`));
  return `${each.join(' · ')}  (${s.file})`;
}

/** The end-of-run summary: one screen, what a person checks after a run (its error, if any, is the caller's to print). */
export function formatSummary(m: RunManifest): string {
  const seconds = (m.duration_ms ?? 0) / 1000;
  const bytes = m.inputs.reduce((s, i) => s + i.bytes, 0);
  // Rejects in a folder of their own (output.rejects_uri) are named where they are.
  const rejectsAt = (r: RunManifest) => {
    const folder = r.rejects[0]?.uri.replace(/[^/]*$/, '');
    if (folder === undefined) return '';
    return `; rejected rows in ${folder === `${r.output.uri}_rejects/` ? '_rejects/' : folder}`;
  };
  const rate = m.rows.read ? ((m.rows.rejected / m.rows.read) * 100).toFixed(2) : '0.00';
  const lines = [
    `${m.job} ${m.date}: ${m.status} in ${seconds.toFixed(1)} s`,
    `  model    ${m.model.name === null ? m.model.path : `${m.model.name}@${m.model.version} (${m.model.ref}; ${m.model.uri})`}`,
    `           sha256 ${m.model.sha256.slice(0, 16)}…  ${m.model.features.length} features`,
    `  input    ${m.input.uri}  (${m.inputs.length} object${m.inputs.length === 1 ? '' : 's'}, ${formatBytes(bytes)})`,
    `  rows     ${n(m.rows.read)} read · ${n(m.rows.scored)} scored · ${n(m.rows.rejected)} rejected (${rate}%)`,
    `  speed    ${n(Math.round(m.rows.read / Math.max(seconds, 0.001)))} rows/s`,
    `  output   ${m.output.uri}  (${m.chunks} chunk${m.chunks === 1 ? '' : 's'}, ${m.parts.length} part${m.parts.length === 1 ? '' : 's'}${rejectsAt(m)})`,
    ...(m.drift ? [`  drift    ${formatDrift(m.drift)}`] : []),
    ...(m.canary ? [`  canary   ${n(m.canary.rows.canary)} rows by ${m.canary.labels.canary} (${(m.canary.fraction * 100).toFixed(1)}% of keys, salt ${JSON.stringify(m.canary.salt)}), ${n(m.canary.rows.champion)} by ${m.canary.labels.champion}`] : []),
    ...(m.shadow ? [`  shadow   ${formatShadow(m.shadow)}`] : []),
  ];
  // A failed run's error follows as the command's own `nightscore: CODE: …` line, with its hint.
  return lines.join('\n');
}
