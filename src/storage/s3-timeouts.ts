/** The NodeHttpHandler options nightscore sets (the client takes them as `requestHandler`). */
export interface S3TimeoutOptions {
  connectionTimeout: number;
  socketTimeout: number;
}

/**
 * Timeouts for the S3 client's HTTP handler, both `ms` (NIGHTSCORE_S3_TIMEOUT_MS). The SDK's defaults are none at all, so a server
 * that accepts a request and then sends nothing (or stops mid-body) would hold a run forever.
 *
 * - `socketTimeout` is an idle timeout: no byte in either direction for that long fails the
 *   request (before the response: a TimeoutError the SDK retries with backoff) or the body
 *   being read (a retryable S3_UNAVAILABLE). A slow but moving transfer never trips it; a
 *   body nightscore itself stops reading for that long does, so keep it well above any pause
 *   in writing the output.
 * - `connectionTimeout` bounds the TCP (and TLS) connect.
 *
 * There is deliberately no `requestTimeout`: it bounds the whole request up to the response
 * headers, so an 8 MiB part upload on a slow link would trip it while still making progress.
 */
export function s3TimeoutOptions(ms: number): S3TimeoutOptions {
  return { connectionTimeout: ms, socketTimeout: ms };
}
