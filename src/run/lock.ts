import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { NightscoreError, toNightscoreError } from '../errors.js';
import type { Location } from '../storage/open.js';
import { readAgainWhileTransient, readText } from '../storage/storage.js';
import { environment } from '../settings.js';

/**
 * The output lock: one attempt at a time writes a run's output folder.
 *
 * A lock is an object `_LOCK.<epoch>` in the output folder, created with create-if-absent
 * (Storage.createIfAbsent), holding a LockRecord, and never rewritten. The highest epoch is
 * the lock; lower ones are leftovers of holders that lapsed. It is live while its last write
 * or touch is less than `lease_ms` old; the holder touches it every quarter lease. Taking over
 * a lapsed lock never overwrites it: the taker creates the *next* epoch, and create-if-absent
 * lets exactly one of several racing takers have it, then removes the lapsed one. Only
 * create-if-absent has to be atomic, which local files (link) and S3 (If-None-Match) provide.
 *
 * Fencing: before each write that publishes the run (rejects, manifest, `_SUCCESS`) the commit
 * checks that the highest epoch is still the one it created (checkOutputLock), so an attempt
 * that lost its lock (paused past its lease, then taken over; or an earlier try of a queued
 * run whose retry took over) fails without touching the new holder's output.
 */

/** Which run holds a lock: `owner` is the run's identity, the same for every try of a queued run. */
export interface LockIdentity {
  owner: string;
  /** The attempt (manifest `attempt`) that holds it now. */
  attempt: string;
}

/** A lock an attempt took: its object's key is what fencing and heartbeats check, by listing alone. */
export interface HeldLock extends LockIdentity {
  key: string;
}

/** The content of a lock object. Never rewritten: a heartbeat only touches it. */
export interface LockRecord extends LockIdentity {
  job: string;
  date: string;
  host: string;
  pid: number;
  /**
   * Which process table `pid` belongs to: the kernel's boot id and the pid namespace, where
   * the system says (Linux). Two containers may share a host name and a pid; only a holder of
   * this very process table can be seen to be gone.
   */
  pid_space?: string;
  acquired_at: string;
  lease_ms: number;
}

/** A lock object as listed in a folder. */
interface ListedLock {
  key: string;
  epoch: number;
  size: number;
  /** Last write or touch, in ms (the storage's clock). */
  modified: number;
}

/** A lock object and its record. */
export interface FoundLock extends ListedLock {
  /** Undefined when the object is not a readable record. */
  record: LockRecord | undefined;
}

const LOCK_RE = /^_LOCK\.(\d{16})$/;
const DEFAULT_LEASE_MS = 120_000;

/**
 * How long a lock stays live without a heartbeat: `NIGHTSCORE_OUTPUT_LEASE_MS` of the process's
 * settings, default 2 minutes. A run whose process died blocks the date for at most this long.
 */
export function outputLeaseMs(): number {
  return environment().settings.NIGHTSCORE_OUTPUT_LEASE_MS;
}

/**
 * True while `lock` has been written or touched within its lease. A lock object whose record
 * cannot be read counts as live for the default lease, so damage never hands a date over early.
 */
export function isLive(lock: FoundLock, now = Date.now()): boolean {
  return now - lock.modified < (lock.record?.lease_ms ?? DEFAULT_LEASE_MS) && !holderGone(lock.record);
}

/**
 * True when the lock's holder ran in this process table and its pid is gone: an
 * interrupted `nightscore run` on this host, whose lock need not block the date for a lease.
 */
export function holderGone(record: LockRecord | undefined): boolean {
  // Only an in-process run's lock is its process's: a queued run's is renewed by every worker.
  if (!record?.owner.startsWith('run:') || record.host !== hostname() || record.pid_space !== pidSpace() || record.pid === process.pid) return false;
  try {
    process.kill(record.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

let space: string | undefined | null = null;

/** This process's pid space: boot id and pid namespace (Linux); undefined elsewhere. */
export function pidSpace(): string | undefined {
  if (space === null) {
    try {
      space = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      space = undefined;
    }
  }
  return space;
}

/**
 * Takes the output lock for an attempt, or throws RUN_IN_PROGRESS naming the live holder.
 * A live lock of the same `owner` (a queued run retried after its worker died) is taken
 * over at once: BullMQ already runs one try of a run id at a time. A fresh folder costs a
 * list, a create and a list; no read.
 */
export async function acquireOutputLock(out: Location, claim: LockIdentity & { job: string; date: string }, leaseMs: number): Promise<HeldLock> {
  const record: LockRecord = { ...claim, host: hostname(), pid: process.pid, pid_space: pidSpace(), acquired_at: new Date().toISOString(), lease_ms: leaseMs };
  const body = `${JSON.stringify(record, null, 2)}\n`;
  const mine = (l: FoundLock) => l.record?.owner === claim.owner;
  for (let tries = 0; tries < 5; tries++) {
    const top = await findOutputLock(out);
    if (top?.record && sameAttempt(top.record, claim)) return { ...claim, key: top.key }; // our own create, retried by the SDK
    if (top && isLive(top) && !mine(top)) throw runInProgress(out, top);
    // Every attempt that saw the same top races for the same next name: one creates it.
    const epoch = (top?.epoch ?? 0) + 1;
    const key = lockKey(out, epoch);
    if (!(await out.storage.createIfAbsent(key, body))) continue; // another attempt won it: look again
    // An attempt that listed the folder long ago can create a name that is free again (the
    // lock was released since). So an attempt holds the lock only if its epoch is the highest
    // and no other run's lock is live; otherwise it backs off. Of two that overlap, the later
    // one to look always sees the earlier one.
    const others = await readLocks(out, key);
    if (others.some((l) => l.epoch > epoch || (isLive(l) && !mine(l)))) {
      await out.storage.delete(key);
      continue;
    }
    // Lapsed locks, and this run's own earlier try: removing it fences that try out.
    for (const old of others) await out.storage.delete(old.key);
    return { ...claim, key };
  }
  const top = await findOutputLock(out);
  throw top ? runInProgress(out, top) : new NightscoreError('LOCK_CONTENDED', `could not take the lock on ${folderUri(out)}: it kept changing`, { hint: 'Several runs of this date are starting at once; run one.' });
}

/**
 * Fencing: throws RUN_LOCK_LOST unless `held` is still the lock (the highest epoch). Lists the
 * folder and reads nothing, so a flaky read can never pass for a lost lock.
 */
export async function checkOutputLock(out: Location, held: HeldLock): Promise<void> {
  const [top] = await listLocks(out);
  if (top?.key !== held.key) throw await lockLost(out, held, top);
}

/** Heartbeat: extends the lease of `held`; throws RUN_LOCK_LOST when it is no longer the lock. */
export async function renewOutputLock(out: Location, held: HeldLock): Promise<void> {
  await checkOutputLock(out, held);
  if (!(await out.storage.touch(held.key))) throw await lockLost(out, held, (await listLocks(out))[0]);
}

/**
 * Releases `held` if it is still the lock; otherwise does nothing. Best effort: a lock that
 * cannot be removed lapses after its lease.
 */
export async function releaseOutputLock(out: Location, held: HeldLock): Promise<void> {
  try {
    const locks = await listLocks(out);
    if (locks[0]?.key !== held.key) return;
    for (const lock of locks) await out.storage.delete(lock.key);
  } catch {
    // The lease expires on its own.
  }
}

/**
 * Keeps renewing `held` every quarter of its lease until the returned function is called.
 * `onLost` is called once if the lock was taken over; transient storage errors are tried
 * again at the next beat.
 */
export function holdOutputLock(out: Location, held: HeldLock, leaseMs: number, onLost: (err: Error) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const beat = async () => {
    try {
      await renewOutputLock(out, held);
    } catch (err) {
      const error = toNightscoreError(err);
      if (error.code === 'RUN_LOCK_LOST') {
        stopped = true;
        onLost(error);
      }
    }
    if (!stopped) timer = setTimeout(() => void beat(), leaseMs / 4).unref();
  };
  timer = setTimeout(() => void beat(), leaseMs / 4).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** The highest-epoch lock object of an output folder, with its record; undefined when there is none. */
export async function findOutputLock(out: Location): Promise<FoundLock | undefined> {
  for (let tries = 0; tries < 3; tries++) {
    const [top] = await listLocks(out);
    if (!top) return undefined;
    const found = await readLock(out, top);
    // Released between the list and the read: list again.
    if (found) return found;
  }
  return undefined;
}

/** Every lock object of the folder but `except` that is still there, highest epoch first. */
async function readLocks(out: Location, except: string): Promise<FoundLock[]> {
  const found: FoundLock[] = [];
  for (const lock of await listLocks(out)) {
    if (lock.key === except) continue;
    const f = await readLock(out, lock);
    if (f) found.push(f);
  }
  return found;
}

/** Reads a lock's record; undefined when the object is gone. Transient failures and short bodies are read again. */
async function readLock(out: Location, lock: ListedLock): Promise<FoundLock | undefined> {
  try {
    return await readAgainWhileTransient(async () => {
      const text = await readText(out.storage, lock.key);
      // Lock objects are never rewritten, so a body of another size was cut short in transit.
      if (Buffer.byteLength(text) !== lock.size) {
        throw new NightscoreError('LOCK_READ_SHORT', `${out.storage.uri(lock.key)}: read ${Buffer.byteLength(text)} of ${lock.size} bytes`);
      }
      return { ...lock, record: parseRecord(text) };
    });
  } catch (err) {
    if (toNightscoreError(err).code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

async function listLocks(out: Location): Promise<ListedLock[]> {
  const folder = out.storage.join(out.key, '');
  const locks: ListedLock[] = [];
  for (const info of await out.storage.list(folder)) {
    const m = LOCK_RE.exec(info.key.slice(folder.length));
    if (m) locks.push({ key: info.key, epoch: Number(m[1]), size: info.size, modified: info.modified });
  }
  return locks.sort((a, b) => b.epoch - a.epoch);
}

function lockKey(out: Location, epoch: number): string {
  return out.storage.join(out.key, `_LOCK.${String(epoch).padStart(16, '0')}`);
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<LockRecord>;
    return typeof r.owner === 'string' && typeof r.attempt === 'string' && typeof r.lease_ms === 'number' ? (r as LockRecord) : undefined;
  } catch {
    return undefined;
  }
}

function sameAttempt(a: LockIdentity, b: LockIdentity): boolean {
  return a.owner === b.owner && a.attempt === b.attempt;
}

function folderUri(out: Location): string {
  return out.storage.uri(out.storage.join(out.key, ''));
}

/** "queued run churn@2026-11-21, attempt 0b7c41d2, on host h pid 7, started …, alive 3 s ago". */
export function describeHolder(lock: FoundLock, now = Date.now()): string {
  const r = lock.record;
  if (!r) return `an unreadable lock object (${lock.key})`;
  const who = r.owner.startsWith('queue:') ? `queued run ${r.owner.slice(r.owner.lastIndexOf(':') + 1)}` : 'an in-process run (nightscore run)';
  const seen = Math.max(0, Math.round((now - lock.modified) / 1000));
  return `${who}, attempt ${r.attempt.slice(0, 8)}, on host ${r.host} pid ${r.pid}, started ${r.acquired_at}, alive ${seen} s ago`;
}

function runInProgress(out: Location, lock: FoundLock) {
  const lease = lock.record?.lease_ms ?? DEFAULT_LEASE_MS;
  const lapses = new Date(lock.modified + lease).toISOString();
  return new NightscoreError('RUN_IN_PROGRESS', `${folderUri(out)} is being written by ${describeHolder(lock)}; this attempt left it untouched`, {
    source: out.storage.uri(lock.key),
    hint: `Wait for that run to finish (nightscore status, or its process), then run the date again. If it died, its lock lapses at ${lapses} (lease ${lease} ms); delete ${out.storage.uri(lock.key)} sooner only if you are sure nothing is writing.`,
  });
}

async function lockLost(out: Location, held: HeldLock, top: ListedLock | undefined) {
  // Only to name the new holder: a read that fails here must not hide the loss.
  const now = top ? await readLock(out, top).catch(() => undefined) : undefined;
  const holder = now ? describeHolder(now) : top ? `another lock object (${top.key})` : 'nobody (the lock object is gone)';
  return new NightscoreError('RUN_LOCK_LOST', `attempt ${held.attempt.slice(0, 8)} no longer holds the lock on ${folderUri(out)}: it is held by ${holder}`, {
    source: folderUri(out),
    hint: 'This attempt stalled longer than its lease (NIGHTSCORE_OUTPUT_LEASE_MS) or its lock was removed, and another run may have taken the date over; it stopped without publishing. Check that run\'s result, or run the date again.',
  });
}
