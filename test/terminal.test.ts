import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, Workspace } from './support/workspace.js';

/**
 * On a terminal (here a pseudo-terminal from util-linux `script`), nightscore talks to a
 * person: an error prints once, as `nightscore: CODE: …` with its hint, and log lines are
 * text (time, level, message, fields), not JSON; piped, logs stay JSON.
 */

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
  await ws.write('in/dt=2026-01-01/a.csv', 'id,x\n1,2\n');
  await ws.job('t.yaml', { name: 't', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: 'out/dt={date}/', format: 'csv' } });
  await ws.job('missing.yaml', { name: 'missing', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx', features: ['y'] }, output: { uri: 'out-missing/dt={date}/', format: 'csv' } });
});
afterAll(async () => ws?.remove());

/** Runs the CLI under a pseudo-terminal; everything it printed, as the terminal got it. */
function onTerminal(args: string[], env: Record<string, string> = {}): string {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const res = spawnSync('script', ['-qec', quoted, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  if (res.error) throw res.error;
  // eslint-disable-next-line no-control-regex
  return res.stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
}

describe('on a terminal', () => {
  it('an error prints once, with its hint, and no JSON', () => {
    const out = onTerminal(['run', ws.path('nope.yaml'), '--date', '2026-01-01']);
    expect(out.match(/JOB_NOT_FOUND/g)).toHaveLength(1);
    expect(out).toContain('nightscore: JOB_NOT_FOUND: cannot read job file');
    expect(out).toContain('hint: Pass the path of a job definition');
    expect(out).not.toContain('{"level"');
  });

  it('a run that fails prints its error once: the summary, then the error with its hint', () => {
    const out = onTerminal(['run', ws.path('missing.yaml'), '--date', '2026-01-01']);
    expect(out).toContain('missing 2026-01-01: failed in');
    expect(out.match(/INPUT_MISSING_COLUMN/g)).toHaveLength(1);
    expect(out.match(/no column \\?"y\\?"/g)).toHaveLength(1);
    expect(out).toMatch(/^nightscore: INPUT_MISSING_COLUMN: .*no column "y".*\n {2}hint: /m);
  });

  it('log lines are for people: time, level, message and fields on one line', () => {
    const out = onTerminal(['run', ws.path('t.yaml'), '--date', '2026-01-01'], { NIGHTSCORE_LOG_LEVEL: 'info' });
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: run started \{"job":"t","date":"2026-01-01"/m);
    expect(out).not.toContain('{"level"');
    expect(out).toContain('t 2026-01-01: succeeded');
  });

  it('piped, the same logs are JSON lines', () => {
    const res = spawnSync(process.execPath, [CLI, 'run', ws.path('t.yaml'), '--date', '2026-01-01'], { env: { ...process.env, NIGHTSCORE_LOG_LEVEL: 'info' }, encoding: 'utf8' });
    const first = res.stderr.split('\n')[0]!;
    expect(JSON.parse(first)).toMatchObject({ level: 30, msg: 'run started' });
  });
});
