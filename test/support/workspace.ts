import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { stringify } from 'yaml';
import type { RunManifest } from '../../src/run/manifest.js';
import { logisticModel, type LogisticOptions } from '../../scripts/onnx-builder.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist', 'cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI, exactly as a user or the container does. */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: opts.cwd ?? REPO,
        // The AWS SDK warns on Node 20 (the image runs 22); tests assert stderr is empty on success.
        env: { ...process.env, NIGHTSCORE_LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...opts.env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A CLI process a test can watch and signal while it runs. */
export interface StartedCli {
  child: ChildProcess;
  /** Resolves when the process ends: its exit code (128 + n for a signal) and what it printed. */
  done: Promise<CliResult>;
  /** Everything printed so far, stdout then stderr. */
  output(): string;
}

/** Starts the built CLI as `runCli` runs it, without waiting for it. */
export function startCli(args: string[], env: Record<string, string> = {}): StartedCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, NIGHTSCORE_LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

/** A scratch folder for one test: job files, models and data, removed afterwards. */
export class Workspace {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Workspace> {
    return new Workspace(await mkdtemp(path.join(tmpdir(), 'nightscore-test-')));
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  async write(rel: string, body: string | Uint8Array): Promise<string> {
    const file = this.path(rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, body);
    return file;
  }

  /** Writes a job file; `job` is the YAML document as an object. */
  async job(rel: string, job: Record<string, unknown>): Promise<string> {
    return this.write(rel, stringify(job));
  }

  async model(rel: string, opts: LogisticOptions): Promise<string> {
    return this.write(rel, logisticModel(opts));
  }

  read(rel: string): Promise<string> {
    return readFile(this.path(rel), 'utf8');
  }

  async list(rel: string): Promise<string[]> {
    return (await readdir(this.path(rel), { recursive: true })).map(String).sort();
  }

  async csv(rel: string): Promise<string[][]> {
    return parseCsv(await this.read(rel));
  }

  async manifest(rel: string): Promise<RunManifest> {
    return JSON.parse(await this.read(path.join(rel, '_manifest.json')));
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

export function parseCsv(text: string): string[][] {
  return parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true });
}
