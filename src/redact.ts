/**
 * Credentials must never leave the process in text: not in a log line, an error message, a
 * queue failure reason or a manifest. Error text often embeds a URL (a Redis URL with a
 * password, a presigned S3 URL pasted as an input), and third-party errors embed whatever
 * they like, so redaction works on the text itself, in three ways:
 *   - the password of any `scheme://user:password@host` URL;
 *   - the values of signed-URL query parameters (`X-Amz-Signature`, `X-Amz-Credential`…);
 *   - the literal values of this process's secrets (AWS secret key and session token, the
 *     Redis password), in plain, JSON-escaped and percent-encoded form, wherever they appear.
 */

export const CENSOR = '[redacted]';

/** `scheme://user:password@` — the user stays (it says which account), the password goes. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/"'\\]*:)[^\s@/"'\\]+@/gi;

/** Query parameters whose values are credentials or signatures (S3 SigV4 and V2, GCS, SAS). */
const SIGNED_PARAM = /([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|awsaccesskeyid|x-goog-signature|x-goog-credential|sig)=)[^&#\s"'\\]*/gi;

/** `NAME=value` or `"name": "value"` for well-known secret names. */
const NAMED_SECRET = /\b(aws_secret_access_key|aws_session_token|aws_security_token|secretAccessKey|sessionToken|password)(["']?\s*[:=]\s*["']?)[^\s"',}&]+/gi;

/** Shorter literals would redact ordinary words; URLs and names above still catch them. */
const MIN_LITERAL = 4;

/** The secrets of an environment (the process's, read where it starts): every form they may be printed in. */
export function secretsFromEnv(env: Partial<Record<string, string>>): string[] {
  const values = [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, env.AWS_SECURITY_TOKEN, redisPassword(env.NIGHTSCORE_REDIS_URL)];
  const forms = new Set<string>();
  for (const v of values) {
    if (!v || v.length < MIN_LITERAL) continue;
    forms.add(v);
    forms.add(JSON.stringify(v).slice(1, -1));
    forms.add(encodeURIComponent(v));
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

function redisPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    // An unparseable URL: its text after the last ':' before '@' is the best guess.
    return /:\/\/[^@]*:([^@]+)@/.exec(url)?.[1];
  }
}

let held: string[] = [];

/**
 * Makes `secrets` (secretsFromEnv of the environment) the ones every redaction replaces: set
 * once where the process or thread starts, before anything can print them (cli.ts, chunk-thread.ts).
 */
export function useSecrets(secrets: string[]): void {
  held = secrets;
}

/** Returns `text` with every credential replaced by `[redacted]`: the secrets of useSecrets, or `secrets`. */
export function redactSecrets(text: string, secrets: string[] = held): string {
  let out = text.replace(URL_PASSWORD, `$1${CENSOR}@`).replace(SIGNED_PARAM, `$1${CENSOR}`).replace(NAMED_SECRET, `$1$2${CENSOR}`);
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(CENSOR);
  return out;
}
