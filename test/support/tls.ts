import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** A throwaway CA and a server certificate it signed, for 127.0.0.1 and localhost. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** A second CA that signed nothing here: trusting it alone must fail. */
  otherCa: string;
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** Generates the files with the openssl CLI in `dir` (one day of validity is plenty for a test). */
export function makeTlsFiles(dir: string): TlsFiles {
  const f = (name: string) => path.join(dir, name);
  const ca = (name: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '1', '-subj', `/CN=${name}`);
  ca('nightscore-test-ca');
  ca('nightscore-other-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('nightscore-test-ca.crt'), '-CAkey', f('nightscore-test-ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('server.ext'));
  return { ca: f('nightscore-test-ca.crt'), cert: f('server.crt'), key: f('server.key'), otherCa: f('nightscore-other-ca.crt') };
}
