import { describe, expect, it } from 'vitest';
import { locateRun, modelLocation, parseJob } from '../src/job/load.js';
import { parseLogicalDate, renderTemplate } from '../src/job/template.js';

const base = {
  name: 'j',
  input: { uri: 'features/dt={date}/', format: 'csv' },
  model: { path: '../models/m.onnx' },
  output: { uri: 's3://scores/{yyyy}/{mm}/{dd}/', format: 'csv' },
};
const job = (over: object = {}) => parseJob(JSON.stringify({ ...base, ...over }), '/etc/nightscore/jobs/j.yaml');

describe('job files', () => {
  it('fills defaults for what a user may leave out', () => {
    const j = job();
    expect(j.chunk).toEqual({ rows: 50000, bytes: 64 * 1024 * 1024 });
    expect(j.limits).toEqual({ max_reject_rate: 0.01, min_rows: 1 });
    expect(j.input.key).toEqual([]);
    expect(j.input.csv).toEqual({ delimiter: ',', max_record_bytes: 1048576, split: true });
    expect(j.model.threads).toBe(1);
  });

  it('templates the logical date and resolves relative paths against the job file', () => {
    const where = locateRun(job(), '2026-11-21');
    expect(where.inputUri).toBe('/etc/nightscore/jobs/features/dt=2026-11-21/');
    expect(where.outputUri).toBe('s3://scores/2026/11/21/');
    expect(modelLocation(job())).toBe('/etc/nightscore/models/m.onnx');
    expect(locateRun(job({ input: { uri: 'file:///data/in/{date}.csv', format: 'csv' } }), '2026-01-02').inputUri).toBe('file:///data/in/2026-01-02.csv');
  });

  it('accepts only calendar dates, so a date can never leave its prefix', () => {
    expect(parseLogicalDate('2024-02-29')).toBe('2024-02-29');
    for (const bad of ['2023-02-29', '2026-13-01', '26-01-01', '2026-1-1', '../2026-01-01', '2026-01-01/..', '']) {
      expect(() => parseLogicalDate(bad)).toThrow(/BAD_DATE|not a calendar date/);
    }
    expect(renderTemplate('x/{date}/{yyyy}{mm}{dd}', '2026-03-04')).toBe('x/2026-03-04/20260304');
  });

  it('names the key path and line of each mistake', () => {
    const yaml = 'name: j\ninput:\n  uri: in/\n  format: csv\n  key: id\nmodel: { path: m.onnx }\noutput: { uri: out/, format: csv }\n';
    expect(() => parseJob(yaml, 'j.yaml')).toThrow('j.yaml:5: input.key: invalid input: expected array, received string');
    expect(() => job({ name: 'Has Spaces' })).toThrow(/name: expected 1-64 characters/);
    expect(() => job({ limits: { max_reject_rate: 2 } })).toThrow(/limits\.max_reject_rate: too big: expected number to be <=1/);
    expect(() => job({ output: { uri: 'o/', format: 'csv', columns: { p: [] } } })).toThrow(/output\.columns\.p/);
  });
});
