/**
 * A small bounded cache: least recently used entries go first once it holds more than
 * `maxEntries` or `maxBytes` (each entry's size as its producer estimates it), so a UI left
 * open on a long range, or many of them, never grows the process without bound.
 */
export interface BoundedCacheOptions {
  /** Entries kept at most. @defaultValue 5000 */
  maxEntries?: number;
  /** Sum of the entries' sizes kept at most (bytes, as estimated by `set`). @defaultValue 64 MiB */
  maxBytes?: number;
}

export class BoundedCache<V> {
  // A Map iterates in insertion order: re-inserting on every hit keeps the oldest first.
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;

  constructor(opts: BoundedCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 5_000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, bytes = 0): void {
    this.delete(key);
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * One promise per key while it is pending: a page and its API call asking for the same
 * manifest at once share one storage read.
 */
export class InFlight<V> {
  private readonly pending = new Map<string, Promise<V>>();

  run(key: string, work: () => Promise<V>): Promise<V> {
    let p = this.pending.get(key);
    if (!p) {
      p = work().finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }
}
