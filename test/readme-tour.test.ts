import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadJob, locateRun } from '../src/job/load.js';
import { REPO, runCli } from './support/workspace.js';

/** The sh block after `heading` in the README, as lines. */
async function readmeBlock(heading: string): Promise<string[]> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const after = readme.slice(readme.indexOf(heading));
  const block = /```sh\n([\s\S]*?)```/.exec(after);
  if (!block) throw new Error(`no sh block after "${heading}"`);
  return block[1]!.trim().split('\n');
}

describe("the README's tour", () => {
  it('scores the day the demo wrote: every command after npm run demo names its date, any day', async () => {
    // The demo's default date, as its own help prints it (commander shows the default).
    const help = await runCli(['demo', '--help']);
    const demoDay = /--date <YYYY-MM-DD>[\s\S]*?\(default:\s+"(\d{4}-\d{2}-\d{2})"\)/.exec(help.stdout)?.[1];
    expect(demoDay).toMatch(/^\d{4}-\d{2}-\d{2}$/);

    const lines = await readmeBlock('To score a date yourself');
    const [setDay, ...commands] = lines;
    expect(setDay).toMatch(/^day=\$\(date /);
    const day = execFileSync('sh', ['-c', `${setDay!.replace(/#.*/, '')}\necho "$day"`], { encoding: 'utf8' }).trim();
    expect(day).toBe(demoDay);
    expect(commands.length).toBeGreaterThan(0);
    for (const line of commands) expect(line).toMatch(/^npx nightscore \w+ jobs\/churn-daily\.yaml --date \$day\b/);
  });

  it("looks, in its five-minute tour, where the demo's job writes the day, at the columns it writes", async () => {
    const [setDay, setOut, ...commands] = await readmeBlock('## A five-minute tour');
    expect(setDay).toMatch(/^day=\$\(date /);
    const [day, out] = execFileSync('sh', ['-c', `${setDay!.replace(/#.*/, '')}\n${setOut!.replace(/#.*/, '')}\necho "$day"; echo "$out"`], { cwd: REPO, encoding: 'utf8' }).trim().split('\n');
    const job = await loadJob(path.join(REPO, 'jobs/churn-daily.yaml'));
    const where = locateRun(job, day!);
    expect(path.resolve(REPO, out!) + path.sep).toBe(where.outputUri);
    // The tour reads the rejects in _rejects/ of the output folder: the job must keep them there.
    expect(where.rejectsUri).toBeUndefined();
    const header = [...(job.input.key ?? []), ...Object.values(job.output.columns ?? {}).flat()];
    const head = commands.find((c) => c.startsWith('head -3 $out/part-'));
    expect(head).toContain(`# ${header[0]}, then ${header.slice(1).join(', ')}`);
  });
});
