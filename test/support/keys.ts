import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCsv } from './workspace.js';

/** The keys (first column) of every CSV row under an input folder, sorted. */
export async function inputKeys(dir: string): Promise<string[]> {
  const keys: string[] = [];
  for (const f of (await readdir(dir)).sort()) {
    for (const row of parseCsv(await readFile(path.join(dir, f), 'utf8')).slice(1)) keys.push(row[0]!);
  }
  return keys.sort();
}

/** The keys of every prediction and reject row under an output folder, sorted: duplicates kept. */
export async function outputKeys(dir: string): Promise<string[]> {
  const keys: string[] = [];
  for (const f of (await readdir(dir, { recursive: true })).map(String).sort()) {
    if (!/part-\d+\.csv$/.test(f)) continue;
    // Rejects rows have the key in their third column (source, line, key…).
    for (const row of parseCsv(await readFile(path.join(dir, f), 'utf8')).slice(1)) keys.push(f.startsWith('_rejects') ? row[2]! : row[0]!);
  }
  return keys.sort();
}
