import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { finished, PassThrough, type Readable } from 'node:stream';
import { NightscoreError } from '../errors.js';
import { environment, type AsIs, type Settings } from '../settings.js';
import { inputChanged } from './integrity.js';
import { s3TimeoutOptions } from './s3-timeouts.js';
import { joinPrefix, type ByteRange, type ObjectInfo, type ObjectWriter, type Storage } from './storage.js';

/** The settings the S3 client is built from. */
export type S3Settings = Pick<Settings, 'AWS_ENDPOINT_URL_S3' | 'AWS_ENDPOINT_URL' | 'AWS_REGION' | 'AWS_DEFAULT_REGION' | 'AWS_MAX_ATTEMPTS' | 'NIGHTSCORE_S3_TIMEOUT_MS'>;

/**
 * Builds the S3 client from the standard AWS settings: AWS_REGION, and AWS_ENDPOINT_URL_S3 /
 * AWS_ENDPOINT_URL for S3-compatible servers, with the connect and idle timeouts of
 * NIGHTSCORE_S3_TIMEOUT_MS (see s3-timeouts.ts). Credentials are the SDK's default chain,
 * which reads its own variables.
 */
export function createS3Client(settings: S3Settings, opts: { maxAttempts?: number } = {}): S3Client {
  const endpoint = settings.AWS_ENDPOINT_URL_S3 ?? settings.AWS_ENDPOINT_URL;
  return new S3Client({
    region: settings.AWS_REGION ?? settings.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint
      ? {
          endpoint,
          // MinIO, Ceph and most S3-compatible servers have no per-bucket DNS names.
          forcePathStyle: true,
        }
      : {}),
    // The SDK's default CRC checksums use aws-chunked uploads that many S3-compatible
    // servers reject; send checksums only where the S3 API requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // 5 attempts rather than the SDK's 3: a busy bucket answers SlowDown to some requests, and
    // with several chunks reading at once one read could meet it three times in a row (the
    // flaky-storage test did, about one run in ten). AWS_MAX_ATTEMPTS, checked, still decides when set.
    maxAttempts: opts.maxAttempts ?? settings.AWS_MAX_ATTEMPTS,
    requestHandler: s3TimeoutOptions(settings.NIGHTSCORE_S3_TIMEOUT_MS),
  });
}

/** One bucket, with the client of the process's settings (settings.ts `environment`) unless given one. Keys are object keys; a "folder" is a prefix ending in "/". */
export class S3Storage implements Storage {
  private readonly client: S3Client;
  /**
   * Conditional writes are sent once: a retry of one that landed but whose answer was lost
   * would meet its own write and report a conflict. Their callers judge a failure themselves.
   */
  private conditionalClient: S3Client | undefined;

  private readonly settings: S3Settings;

  constructor(readonly bucket: string, client?: S3Client) {
    this.settings = environment().settings;
    this.client = client ?? createS3Client(this.settings);
  }

  private once(): S3Client {
    return (this.conditionalClient ??= createS3Client(this.settings, { maxAttempts: 1 }));
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  join(prefix: string, name: string): string {
    return joinPrefix(prefix, name);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // "dt=2026-11-2" must not match "dt=2026-11-21/…": list folders, not string prefixes.
    const folder = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    const infos: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', folder, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: folder, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) infos.push({ key: o.Key, size: o.Size ?? 0, version: o.ETag ?? '', modified: o.LastModified?.getTime() ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return infos.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    if (key === '' || key.endsWith('/')) return undefined;
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: head.ContentLength ?? 0, version: head.ETag ?? '', modified: head.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw s3Error(err, this.uri(key), 'stat');
    }
  }

  async read(key: string, range?: ByteRange, version?: string): Promise<Readable> {
    const res = await this.call('read', key, () =>
      this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
          IfMatch: version || undefined,
        }),
      ),
    ).catch((err: unknown) => {
      if (version && statusOf((err as { cause?: unknown }).cause) === 412) throw inputChanged(this.uri(key));
      throw err;
    });
    // Servers that ignore If-Match (s3rver, some gateways) still say which version they sent.
    if (version && res.ETag && res.ETag !== version) {
      (res.Body as Readable).destroy();
      throw inputChanged(this.uri(key));
    }
    return guardBody(res.Body as Readable, this.uri(key));
  }

  async createWriter(key: string): Promise<ObjectWriter> {
    const body = new PassThrough();
    // lib-storage buffers one part per queue slot: 2 × 8 MiB bounds memory per writer.
    const upload = new Upload({ client: this.client, params: { Bucket: this.bucket, Key: key, Body: body }, queueSize: 2, partSize: 8 * 1024 * 1024 });
    const done = upload.done().catch((err: unknown) => {
      body.destroy();
      throw s3Error(err, this.uri(key), 'write');
    });
    let failure: unknown;
    done.catch((err: unknown) => (failure = err));
    return {
      write: async (chunk) => {
        if (failure) throw failure;
        if (!body.write(chunk)) await Promise.race([new Promise((r) => body.once('drain', r)), done]);
      },
      close: async () => {
        body.end();
        await done;
      },
      abort: async () => {
        await upload.abort().catch(() => undefined);
        body.destroy();
        await done.catch(() => undefined);
      },
    };
  }

  async put(key: string, body: string | Buffer): Promise<void> {
    await this.call('write', key, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) })));
  }

  async readVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined> {
    return this.call('read', key, async () => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        return { body: Buffer.from(await res.Body!.transformToByteArray()), version: res.ETag ?? '' };
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    });
  }

  async replaceIfMatch(key: string, body: string, version: string): Promise<boolean> {
    try {
      await this.once().send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body), IfMatch: version }));
      return true;
    } catch (err) {
      // 412: another version is there now (404: none). 409: a concurrent conditional write won.
      const status = statusOf(err);
      if (status === 412 || status === 409 || status === 404) return false;
      // No answer: the write may have landed. It did if the object now holds these bytes
      // (see Storage.replaceIfMatch: no two writers write the same bytes).
      const now = await this.readVersioned(key).catch(() => undefined);
      if (now && now.body.equals(Buffer.from(body))) return true;
      throw s3Error(err, this.uri(key), 'write');
    }
  }

  async createIfAbsent(key: string, body: string | Buffer): Promise<boolean> {
    try {
      await this.once().send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body), IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      // 412: the key exists. 409: a concurrent conditional write to the same key won.
      const status = statusOf(err);
      if (status === 412 || status === 409) return false;
      throw s3Error(err, this.uri(key), 'write');
    }
  }

  async touch(key: string): Promise<boolean> {
    // A copy onto itself (S3 requires new metadata for that) gives the object a new
    // LastModified, and fails when the key is gone: a heartbeat never resurrects a lock.
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: copySource(this.bucket, key),
          MetadataDirective: 'REPLACE',
          Metadata: { 'nightscore-touched': new Date().toISOString() },
        }),
      );
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw s3Error(err, this.uri(key), 'write');
    }
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  destroy(): void {
    this.client.destroy();
    this.conditionalClient?.destroy();
  }

  private async call<T>(action: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw s3Error(err, this.uri(key), action);
    }
  }
}

/**
 * A body that fails mid-transfer (a reset, an idle timeout on a stalled server) fails with a
 * storage error, retryable like the request's own, rather than a bare socket error that
 * callers would take for a bug (or, decoding Parquet, for a corrupt file). A consumer that
 * destroys the returned stream destroys the body at once, which frees its connection.
 */
function guardBody(body: Readable, uri: string): Readable {
  const out = new PassThrough();
  // `finished` also reports a body closed before its end without an error event.
  finished(body, (err) => {
    if (err) out.destroy(s3Error(err, uri, 'read'));
  });
  out.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(out);
  return out;
}

/**
 * CopySource is URL-encoded, as S3 requires; `=` (Hive-style `dt=` prefixes) is legal in a
 * path unencoded and stays so, because some S3-compatible servers (s3rver) do not decode it.
 */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map((s) => encodeURIComponent(s).replace(/%3D/g, '=')).join('/')}`;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** S3 error codes that mean the credentials themselves are refused, not the permissions they carry. */
const REJECTED_CREDENTIALS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'InvalidClientTokenId']);

/**
 * The sources the AWS SDK's default chain reads, in its order, and which of them this process
 * has: what a person checks first. Values are never printed, only whether they are set.
 */
export function credentialSources(env: AsIs): string {
  const set = (...names: string[]) => {
    const there = names.filter((n) => env[n]);
    return there.length === 0 ? `none of ${names.join(', ')} is set` : `${there.join(' and ')} ${there.length === 1 ? 'is' : 'are'} set`;
  };
  const sources = [
    `environment (${set('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')})`,
    `shared files (~/.aws/credentials and ~/.aws/config, profile ${env.AWS_PROFILE ?? 'default'})`,
    `web identity (${set('AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN')})`,
    `container credentials (${set('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI')})`,
    `EC2 instance metadata${env.AWS_EC2_METADATA_DISABLED === 'true' ? ' (disabled)' : ''}`,
  ];
  return `sources tried: ${sources.join('; ')}`;
}

function s3Error(err: unknown, uri: string, action: string) {
  const status = statusOf(err);
  const name = err instanceof S3ServiceException ? err.name : ((err as Error | undefined)?.name ?? 'Error');
  const message = `cannot ${action} ${uri}: ${name}${status ? ` (HTTP ${status})` : ''}: ${(err as Error).message}`;
  if (name === 'CredentialsProviderError' || REJECTED_CREDENTIALS.has(name)) {
    const missing = name === 'CredentialsProviderError';
    return new NightscoreError('S3_CREDENTIALS', `cannot ${action} ${uri}: ${missing ? 'no AWS credentials were found' : `S3 rejected the credentials (${name}${status ? `, HTTP ${status}` : ''})`}; ${credentialSources(environment().asIs)}`, {
      source: uri,
      hint: missing
        ? 'Give the process credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, a web identity (IRSA) or an instance role.'
        : 'The credentials are wrong, expired or for another endpoint: check the key pair (and AWS_SESSION_TOKEN) against AWS_ENDPOINT_URL_S3, or renew them.',
      cause: err,
    });
  }
  if (status === 404 || name === 'NoSuchKey' || name === 'NoSuchBucket') {
    return new NightscoreError('NOT_FOUND', message, { source: uri, hint: 'Check the bucket and key, and the date.', cause: err });
  }
  if (status === 403 || status === 401) {
    return new NightscoreError('S3_ACCESS_DENIED', message, {
      source: uri,
      hint: 'Check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID…) and the bucket policy.',
      cause: err,
    });
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new NightscoreError('S3_REQUEST_REJECTED', message, { source: uri, hint: 'The storage service refused the request; check the bucket, key and permissions.', cause: err });
  }
  // Everything else (5xx, throttling, resets, timeouts) may pass on another try.
  return new NightscoreError('S3_UNAVAILABLE', message, {
    source: uri,
    hint: 'The storage service did not answer; this is usually transient. Check AWS_ENDPOINT_URL_S3 if it persists.',
    cause: err,
  });
}
