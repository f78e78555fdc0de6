import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO } from './workspace.js';

export interface ComposeService {
  image?: string;
  build?: unknown;
  command: string[];
  environment: Record<string, string>;
  volumes?: string[];
  ports?: unknown[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}

/** docker-compose.yml as docker-compose itself reads it (anchors merged, paths resolved): `config` needs no engine. */
export function composeConfig(): { services: Record<string, ComposeService> } {
  const text = execFileSync('docker-compose', ['-f', path.join(REPO, 'docker-compose.yml'), 'config'], { encoding: 'utf8' });
  return parse(text) as { services: Record<string, ComposeService> };
}
