import { expect } from 'vitest';
import { csvOf } from './data.js';
import { REPO, runCli, type Workspace } from './workspace.js';

/**
 * A day of 30 rows scored by the shipped churn model into `out/dt=<date>/` of `ws`, for tests
 * that then read back (or forge) what the run left: the job file's path.
 */
export async function scoredChurnDay(ws: Workspace, date: string): Promise<string> {
  await ws.write(`in/dt=${date}/a.csv`, csvOf(30, 1));
  const jobFile = await ws.job('t.yaml', {
    name: 't',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: 'out/dt={date}/', format: 'csv' },
  });
  expect((await runCli(['run', jobFile, '--date', date])).code).toBe(0);
  return jobFile;
}
