#!/usr/bin/env node
/**
 * `npm run audit`: fails when `npm audit --omit=dev` reports a high or critical advisory
 * for a production dependency. When the registry's advisory service cannot be reached
 * (air-gapped builds, mirrors without the audit endpoint), it says loudly that no audit
 * took place and exits 0: an unreachable service is not a finding, and must not block CI.
 */
import { spawnSync } from 'node:child_process';

const res = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
let report;
try {
  report = JSON.parse(res.stdout);
} catch {
  console.error(`npm audit printed no report (exit ${res.status}):\n${res.stderr}`);
  process.exit(1);
}
const counts = report.metadata?.vulnerabilities;
if (!counts) {
  const why = report.message ?? report.error?.summary ?? JSON.stringify(report).slice(0, 200);
  console.warn(`WARNING: dependency audit NOT performed: the advisory service answered: ${why}`);
  process.exit(0);
}
const serious = Object.values(report.vulnerabilities ?? {}).filter((v) => v.severity === 'high' || v.severity === 'critical');
for (const v of serious) console.error(`${v.severity}: ${v.name} ${v.range} (${[v.via].flat().map((x) => (typeof x === 'string' ? x : x.title)).join('; ')})`);
console.log(`npm audit --omit=dev: ${counts.critical} critical, ${counts.high} high, ${counts.moderate} moderate, ${counts.low} low`);
process.exit(serious.length > 0 ? 1 : 0);
