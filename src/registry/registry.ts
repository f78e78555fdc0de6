/**
 * The model registry: versioned models and their aliases in object storage (or a local
 * folder), with nothing else to run. The layout is a contract (docs/registry.md, "Model registry"):
 *
 *   <root>/<name>/versions/<n>/model.onnx      the model, and its external data files by name
 *   <root>/<name>/versions/<n>/profile.json    its reference profile, if any (register --reference, model profile attach)
 *   <root>/<name>/versions/<n>/evaluation.json its latest evaluation, if any (model evaluate --register)
 *   <root>/<name>/versions/<n>/version.json    VersionRecord; a version exists once this does
 *   <root>/<name>/aliases.json                 AliasesDoc: { generation, aliases, last }
 *   <root>/<name>/events/<time>-<kind>-<n>.json  RegistryEvent, one per register and alias move
 *
 * Versions are immutable: a number is claimed by creating its model.onnx only if absent, and
 * nothing ever writes under a claimed number again. Alias moves are compare-and-swap on
 * aliases.json: of two moves that read one generation, exactly one lands. The event of a
 * move is also kept in aliases.json (`last`) and written to events/ before the next move, so
 * a writer stopped between the two leaves a history that any reader completes.
 */
import { profileBytes, readProfile, type Profile } from '../drift/profile.js';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { ValueInfo } from '../engine/engine.js';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { loadModel, modelIdentity, type LoadedModel } from '../model/session.js';
import { digestObject } from '../storage/digest.js';
import { openLocation } from '../storage/open.js';
import { readAgainWhileTransient, type Storage } from '../storage/storage.js';
import { VERSION } from '../version.js';
import { aliasesDocSchema, EVALUATION_FILE, MODEL_FILE, PROFILE_FILE, readEvaluationRecord, readRecord, readVersionRecord, RECORD_FILE, type EvaluationRecord, registryEventSchema, type AliasEvent, type AliasesDoc, type GateEvent, type RegistryEvent, type TensorSignature, type VersionCheck, type VersionRecord } from './records.js';
import { environment } from '../settings.js';
import { checkAlias, checkName, parseModelRef, versionRef, type ModelRef } from './ref.js';

export type { AliasEvent, AliasesDoc, EvaluationRecord, GateCondition, GateEvent, RegisterEvent, RegistryEvent, TensorSignature, VersionCheck, VersionFile, VersionRecord } from './records.js';

/** A reference resolved to one version: what a run pins and its manifest names. */
export interface ResolvedModel {
  ref: string;
  name: string;
  version: number;
  /** The alias the reference went through, if any. */
  alias: string | null;
  /** For a time-travelling resolution: the instant whose alias was read (ISO 8601). */
  as_of: string | null;
  /** The URI of the version's model.onnx. */
  uri: string;
  record: VersionRecord;
  /** The version's files, each by its URI. */
  files: Array<{ path: string; sha256: string; bytes: number }>;
}

export interface RegisterOptions {
  alias?: string;
  tags?: Record<string, string>;
  metrics?: Record<string, unknown>;
  description?: string;
  reason?: string;
  /**
   * Run on the model as loaded, before a version number is claimed: what it returns is
   * recorded on the version, and what it throws registers nothing (model register --check).
   */
  check?: (model: LoadedModel) => Promise<VersionCheck>;
  /**
   * Run on the model as loaded, after `check` and before a version number is claimed: the
   * profile it returns is stored with the version before the version exists, and what it
   * throws registers nothing (model register --reference).
   */
  profile?: (model: LoadedModel) => Promise<Profile>;
}

export interface RegistryOptions {
  /** The clock events are stamped with (tests replay a history of past days). */
  clock?: () => Date;
  /** Who acts, for records and events: NIGHTSCORE_USER, else user@host. */
  by?: string;
}

export function actor(): string {
  const named = environment().settings.NIGHTSCORE_USER;
  if (named) return named;
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid).
  }
  return `${user}@${hostname()}`;
}

/** The registry root: the job's `registry:`, else NIGHTSCORE_REGISTRY_URI. */
export function registryRoot(explicit: string | undefined, what = 'a models:/ reference'): string {
  const root = explicit ?? environment().settings.NIGHTSCORE_REGISTRY_URI;
  if (!root) {
    throw new NightscoreError('REGISTRY_NOT_SET', `${what} needs a registry, and none is set`, {
      column: 'registry',
      hint: 'Set NIGHTSCORE_REGISTRY_URI (s3://bucket/models/ or a local folder), or registry: in the job file.',
    });
  }
  return root;
}

export class Registry {
  private readonly storage: Storage;
  private readonly base: string;
  private readonly clock: () => Date;
  private readonly by: string;

  constructor(readonly root: string, opts: RegistryOptions = {}) {
    const { storage, key } = openLocation(root);
    this.storage = storage;
    this.base = key;
    this.clock = opts.clock ?? (() => new Date());
    this.by = opts.by ?? actor();
  }

  private key(...segments: string[]): string {
    return segments.reduce((prefix, s) => this.storage.join(prefix, s), this.base);
  }

  uri(...segments: string[]): string {
    return this.storage.uri(this.key(...segments));
  }

  /**
   * The URI of a version's reference profile (model profile attach): derived from the
   * registry's layout, never read from a record, so a record cannot point a run elsewhere.
   */
  profileUri(name: string, version: number): string {
    return this.uri(name, 'versions', String(version), PROFILE_FILE);
  }

  /**
   * Attaches a reference profile to the version `ref` resolves to: the profile must have been
   * built for that version's model (its sha256). Attaching again replaces it; runs already
   * planned keep the one they pinned.
   */
  async attachProfile(ref: string, file: string): Promise<{ resolved: ResolvedModel; uri: string; sha256: string }> {
    const resolved = await this.resolve(ref);
    const { profile, sha256 } = await readProfile(file);
    if (profile.model.sha256 !== resolved.record.sha256) {
      throw new NightscoreError('PROFILE_MISMATCH', `${file} was built for the model with sha256 ${profile.model.sha256}; ${resolved.name} version ${resolved.version} is ${resolved.record.sha256}`, {
        source: file,
        hint: `Build the profile with a job whose model is ${resolved.ref} (nightscore profile build), then attach it.`,
      });
    }
    const uri = this.profileUri(resolved.name, resolved.version);
    await this.storage.put(this.key(resolved.name, 'versions', String(resolved.version), PROFILE_FILE), profileBytes(profile));
    return { resolved, uri, sha256 };
  }

  /**
   * Records an evaluation on labelled data (model evaluate --register) with the version it
   * measured: the latest replaces the one before. Returns where it is.
   */
  async recordEvaluation(name: string, version: number, evaluation: Omit<EvaluationRecord, 'at' | 'by'>): Promise<string> {
    const record = await this.record(name, version);
    if (evaluation.sha256 !== record.sha256) {
      throw new NightscoreError('INTERNAL', `the evaluation is of the model with sha256 ${evaluation.sha256}, and ${versionRef(name, version)} is ${record.sha256}`, {
        hint: 'Evaluate models:/<name>/<version> and record on that version; this is a bug to report.',
      });
    }
    const key = this.key(name, 'versions', String(version), EVALUATION_FILE);
    await this.storage.put(key, `${JSON.stringify({ ...evaluation, at: this.clock().toISOString(), by: this.by }, null, 1)}\n`);
    return this.storage.uri(key);
  }

  /** A version's latest recorded evaluation, checked as its type and as this version's; undefined when none was recorded. */
  async evaluation(name: string, version: number): Promise<EvaluationRecord | undefined> {
    const key = this.key(name, 'versions', String(version), EVALUATION_FILE);
    const found = await this.readJson(key);
    if (found === undefined) return undefined;
    return readEvaluationRecord(found.value, this.storage.uri(key), (await this.record(name, version)).sha256);
  }

  /** Registers a model file (and its external data beside it) as the next version of `name`. */
  async register(name: string, file: string, opts: RegisterOptions = {}): Promise<VersionRecord> {
    checkName(name, name);
    if (opts.alias !== undefined) checkAlias(opts.alias, opts.alias);
    // Registering checks the model loads, and records what it takes and gives.
    const model = await loadModel(file);
    const names = [MODEL_FILE, ...model.metadata.externalData];
    const clash = model.metadata.externalData.find((n) => n === MODEL_FILE || n === RECORD_FILE || n === PROFILE_FILE || n === EVALUATION_FILE);
    if (clash) {
      throw new NightscoreError('MODEL_EXTERNAL_DATA_INVALID', `${file} keeps tensors in "${clash}", a name the registry gives its own files`, {
        source: file,
        hint: 'Re-save the model with its external data under another name, e.g. location="model.onnx.data".',
      });
    }
    const session = model.session;
    const signature = (metas: readonly ValueInfo[]): TensorSignature[] =>
      metas.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'not a tensor', shape: [] }));
    const check = opts.check ? await opts.check(model) : undefined;
    const profile = opts.profile ? await opts.profile(model) : undefined;
    if (profile && profile.model.sha256 !== model.sha256) {
      throw new NightscoreError('PROFILE_MISMATCH', `the profile of ${file} was built for the model with sha256 ${profile.model.sha256}, but the file registered has ${model.sha256}`, {
        source: file,
        hint: 'The model file changed while it was being registered; register it again once it is written.',
      });
    }
    // The identity of the files under the names they have here (model.onnx, not the source's).
    const sha256 = modelIdentity(model.files, names);
    const bytes = await readFile(file);
    // The bytes uploaded are the bytes loaded: an export still being written is refused, not registered wrong.
    if (sha256Hex(bytes) !== model.files[0]!.sha256) throw changedWhileRegistering(file);
    let version = (await this.versionNumbers(name, true)).reduce((a, b) => Math.max(a, b), 0) + 1;
    // A number is claimed by its model file; a racing register takes the next one.
    for (let tries = 0; !(await this.storage.createIfAbsent(this.key(name, 'versions', String(version), MODEL_FILE), bytes)); tries++, version++) {
      if (tries >= 100) throw new NightscoreError('REGISTRY_CONFLICT', `could not claim a version number for ${name} after 100 tries`, { hint: 'Other registers of this model are running; try again.' });
    }
    for (const [i, ext] of model.metadata.externalData.entries()) {
      const writer = await this.storage.createWriter(this.key(name, 'versions', String(version), ext));
      const hash = createHash('sha256');
      try {
        for await (const chunk of createReadStream(model.files[i + 1]!.path)) {
          hash.update(chunk as Buffer);
          await writer.write(chunk as Buffer);
        }
        if (hash.digest('hex') !== model.files[i + 1]!.sha256) throw changedWhileRegistering(model.files[i + 1]!.path);
        await writer.close();
      } catch (err) {
        await writer.abort();
        throw err;
      }
    }
    if (profile) {
      // Written before version.json, so the version is never seen without it. It was built from
      // the same bytes under the source's names: it names them as the registry does, as runs
      // of the version will.
      await this.storage.put(this.key(name, 'versions', String(version), PROFILE_FILE), profileBytes({ ...profile, model: { ...profile.model, sha256 } }));
    }
    const at = this.clock().toISOString();
    const record: VersionRecord = {
      name,
      version,
      sha256,
      bytes: model.bytes,
      files: model.files.map((f, i) => ({ name: names[i]!, sha256: f.sha256, bytes: f.bytes })),
      created_at: at,
      created_by: this.by,
      source: file,
      description: opts.description ?? '',
      signature: { inputs: signature(session.inputs), outputs: signature(session.outputs) },
      features: model.featureNames ?? null,
      tags: opts.tags ?? {},
      metrics: opts.metrics ?? {},
      nightscore: { version: VERSION },
      ...(check ? { checks: [check] } : {}),
    };
    if (!(await this.storage.createIfAbsent(this.key(name, 'versions', String(version), RECORD_FILE), JSON.stringify(record, null, 2)))) {
      throw new NightscoreError('REGISTRY_CONFLICT', `${this.uri(name, 'versions', String(version), RECORD_FILE)} appeared while this register held version ${version}`, {
        hint: 'Something other than nightscore writes under the registry; registered versions must not be written by hand.',
      });
    }
    await this.writeEvent(name, { kind: 'register', version, sha256: record.sha256, at, by: this.by, reason: opts.reason ?? opts.description ?? '' });
    if (opts.alias !== undefined) {
      await this.setAlias(name, opts.alias, version, { reason: opts.reason ?? `registered version ${version}` }).catch((err: unknown) => {
        const e = toNightscoreError(err);
        throw new NightscoreError(e.code, `${name} version ${version} is registered, but ${opts.alias} was not moved to it: ${e.message}`, { hint: `Move it yourself: nightscore model alias set ${name} ${opts.alias} ${version}. Do not register the model again.`, source: e.source, cause: err });
      });
    }
    return record;
  }

  /** Every model name in the registry, sorted. */
  async names(): Promise<string[]> {
    const folder = this.storage.join(this.base, '');
    const names = new Set<string>();
    for (const o of await this.storage.list(this.base)) {
      const parts = o.key.slice(folder.length).split(/[\\/]/);
      if (parts.length === 4 && parts[1] === 'versions' && parts[3] === RECORD_FILE) names.add(parts[0]!);
    }
    return [...names].sort();
  }

  /** The registered version numbers of a model, ascending (with `claimed`, numbers whose register never finished too). */
  async versionNumbers(name: string, claimed = false): Promise<number[]> {
    const folder = this.storage.join(this.key(name, 'versions'), '');
    const numbers = new Set<number>();
    for (const o of await this.storage.list(this.key(name, 'versions'))) {
      const [n, file] = o.key.slice(folder.length).split(/[\\/]/);
      if (n && /^[1-9][0-9]*$/.test(n) && (claimed || file === RECORD_FILE)) numbers.add(Number(n));
    }
    return [...numbers].sort((a, b) => a - b);
  }

  async versions(name: string): Promise<VersionRecord[]> {
    return Promise.all((await this.versionNumbers(name)).map((n) => this.record(name, n)));
  }

  async record(name: string, version: number): Promise<VersionRecord> {
    const key = this.key(name, 'versions', String(version), RECORD_FILE);
    const found = await this.readJson(key);
    if (found === undefined) {
      const known = await this.versionNumbers(name);
      throw new NightscoreError('MODEL_NOT_FOUND', `${versionRef(name, version)}: ${name} has no version ${version} in the registry ${this.root}${known.length ? ` (its versions are ${summarize(known)})` : ' (it has no versions)'}`, {
        source: this.storage.uri(key),
        hint: known.length ? 'Pick a registered version (nightscore model list <name>).' : 'Register it first: nightscore model register <name> <file.onnx>, and check the registry location.',
      });
    }
    return readVersionRecord(found.value, this.storage.uri(key), name, version);
  }

  /**
   * A registry file, parsed, with the version a swap compares; the caller checks its fields as
   * the record it should be. Some S3-compatible servers (s3rver) let a read see an object being
   * replaced half-written: a body that does not parse is read again a few times before it is
   * called corrupt.
   */
  private async readJson(key: string): Promise<{ value: unknown; version: string } | undefined> {
    for (let attempt = 1; ; attempt++) {
      const found = await readAgainWhileTransient(() => this.storage.readVersioned(key));
      if (!found) return undefined;
      try {
        return { value: JSON.parse(found.body.toString('utf8')) as unknown, version: found.version };
      } catch {
        if (attempt >= 4) return { value: parseJson(found.body.toString('utf8'), this.storage.uri(key)), version: found.version };
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  async aliases(name: string): Promise<AliasesDoc> {
    return (await this.aliasesWithVersion(name)).doc;
  }

  private async aliasesWithVersion(name: string): Promise<{ doc: AliasesDoc; version: string | undefined }> {
    const key = this.key(name, 'aliases.json');
    // One read gives the bytes and the version a swap compares: never a parse of one version
    // and a swap against another.
    const found = await this.readJson(key);
    if (!found) return { doc: { generation: 0, aliases: {}, last: null }, version: undefined };
    return { doc: readRecord(aliasesDocSchema, found.value, this.storage.uri(key)), version: found.version };
  }

  /**
   * Points `alias` at `version` (null deletes it), as a compare-and-swap on aliases.json: with
   * `ifGeneration`, only when the aliases are still at that generation; either way, when no
   * other move lands between the read and the write. The loser of a race gets ALIAS_CONFLICT.
   */
  async setAlias(name: string, alias: string, version: number | null, opts: { reason?: string; ifGeneration?: number } = {}): Promise<AliasEvent> {
    checkName(name, name);
    checkAlias(alias, alias);
    if (version !== null) await this.record(name, version);
    const { doc, version: etag } = await this.aliasesWithVersion(name);
    if (opts.ifGeneration !== undefined && doc.generation !== opts.ifGeneration) {
      throw aliasConflict(name, `the aliases are at generation ${doc.generation}, not ${opts.ifGeneration}${doc.last ? ` (the last move: ${describeMove(doc.last)})` : ''}`);
    }
    // The previous move's event first: a writer stopped after its swap left it only in `last`.
    if (doc.last) await this.writeEvent(name, doc.last);
    const from = doc.aliases[alias] ?? null;
    if (version === null && from === null) throw noSuchAlias(name, alias, doc, 'delete');
    // Times never go back within a model's history, whatever the writers' clocks say, so the
    // order of `at` is the order of generations that time travel relies on.
    const now = this.clock().getTime();
    const at = new Date(doc.last ? Math.max(now, Date.parse(doc.last.at) + 1) : now).toISOString();
    const event: AliasEvent = { kind: 'alias', generation: doc.generation + 1, alias, from, to: version, at, by: this.by, reason: opts.reason ?? '' };
    const aliases = { ...doc.aliases };
    if (version === null) delete aliases[alias];
    else aliases[alias] = version;
    const next: AliasesDoc = { generation: event.generation, aliases: Object.fromEntries(Object.entries(aliases).sort(([a], [b]) => (a < b ? -1 : 1))), last: event };
    const key = this.key(name, 'aliases.json');
    const body = JSON.stringify(next, null, 2);
    const won = etag === undefined ? await this.storage.createIfAbsent(key, body) : await this.storage.replaceIfMatch(key, body, etag);
    if (!won) {
      const now = await this.aliases(name).catch(() => undefined);
      throw aliasConflict(name, `another move landed first${now?.last ? ` (${describeMove(now.last)})` : ''}`);
    }
    await this.writeEvent(name, event).catch(() => undefined);
    return event;
  }

  /** Every event of a model, oldest first: registers and alias moves, the last move included even if its event file is not written yet. */
  async events(name: string, aliases?: AliasesDoc): Promise<RegistryEvent[]> {
    // The aliases before the listing: every move up to theirs has its event by then (a move
    // writes its predecessor's first), and moves landing meanwhile are left out, not half-seen.
    const doc = aliases ?? (await this.aliases(name));
    const folder = this.key(name, 'events');
    const objects = (await this.storage.list(folder)).filter((o) => o.key.endsWith('.json'));
    // An event listed is written whole (created once, never replaced): undefined only if deleted since.
    const read = (await Promise.all(objects.map(async (o) => this.readEvent(o.key)))).filter((e): e is RegistryEvent => e !== undefined);
    const events = read.filter((e) => e.kind !== 'alias' || e.generation <= doc.generation);
    const { last } = doc;
    if (last && !events.some((e) => e.kind === 'alias' && e.generation === last.generation)) events.push(last);
    return events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : order(a) - order(b)));
  }

  /** An event file as its record; undefined when it was deleted since it was listed. */
  private async readEvent(key: string): Promise<RegistryEvent | undefined> {
    const found = await this.readJson(key);
    return found && readRecord(registryEventSchema, found.value, this.storage.uri(key));
  }

  /**
   * Moves an alias back to the version its last move took it from (model rollback), by
   * compare-and-swap at the generation read here: a move that lands meanwhile makes this fail
   * with ALIAS_CONFLICT rather than undo the wrong move. Rolling back twice returns to where it
   * was, as the last move is then the rollback; the history keeps both.
   */
  async rollback(name: string, alias: string, opts: { reason?: string; ifGeneration?: number } = {}): Promise<AliasEvent> {
    checkName(name, name);
    checkAlias(alias, alias);
    const doc = await this.aliases(name);
    const current = doc.aliases[alias];
    if (current === undefined) throw noSuchAlias(name, alias, doc, 'roll back');
    // The history as of the same read as the swap's generation: its last move is what `current` came from.
    const last = (await this.historyOf(name, doc, alias)).at(-1);
    if (!last || last.to !== current || last.from === null) {
      throw new NightscoreError('MODEL_ALIAS_NO_PREVIOUS', `${name}@${alias} points at version ${current}, and ${last ? `its last move (${describeMove(last)}) set it for the first time` : 'no move of it is recorded'}: there is no earlier version to roll back to`, {
        hint: `Point it at a version yourself: nightscore model alias set ${name} ${alias} <version> --reason "…".`,
      });
    }
    const why = `rollback to ${last.from} (undoing ${last.from} → ${last.to} of ${last.at})${opts.reason ? `: ${opts.reason}` : ''}`;
    return this.setAlias(name, alias, last.from, { reason: why, ifGeneration: opts.ifGeneration ?? doc.generation });
  }

  /**
   * The alias moves of a model in generation order, checked whole: every generation from 1 to
   * the current one, once. A history with a hole (an event file deleted by hand) is refused
   * rather than read as if the missing move never happened.
   */
  async aliasHistory(name: string, alias?: string): Promise<AliasEvent[]> {
    return this.historyOf(name, await this.aliases(name), alias);
  }

  /**
   * aliasHistory with the promotion gates' reports, from one read of the events: each move with
   * the report of the gate that made it (null: moved by hand), and the reports that moved nothing.
   */
  async aliasHistoryWithGates(name: string, alias?: string): Promise<{ moves: Array<AliasEvent & { gate: GateEvent | null }>; unmoved: GateEvent[] }> {
    const doc = await this.aliases(name);
    const events = await this.events(name, doc);
    const gates = events.filter((e): e is GateEvent => e.kind === 'gate' && (alias === undefined || e.alias === alias));
    const moves = this.movesOf(name, doc, events, alias).map((m) => ({ ...m, gate: gates.find((g) => g.moved === m.generation) ?? null }));
    return { moves, unmoved: gates.filter((g) => g.moved === null) };
  }

  /** aliasHistory, as of the aliases document `doc` (read once by a caller that also swaps on it). */
  private async historyOf(name: string, doc: AliasesDoc, alias?: string): Promise<AliasEvent[]> {
    return this.movesOf(name, doc, await this.events(name, doc), alias);
  }

  /** The alias moves among `events` (read as of `doc`), checked whole. */
  private movesOf(name: string, doc: AliasesDoc, events: readonly RegistryEvent[], alias?: string): AliasEvent[] {
    const moves = events.filter((e): e is AliasEvent => e.kind === 'alias').sort((a, b) => a.generation - b.generation);
    const twice = moves.find((m, i) => i > 0 && moves[i - 1]!.generation === m.generation);
    if (twice) {
      throw new NightscoreError('REGISTRY_CORRUPT', `${this.uri(name, 'events')} holds two alias moves of generation ${twice.generation}: which version an alias pointed to when cannot be told`, {
        source: this.uri(name, 'events'),
        hint: 'nightscore writes one event per move: remove the one that was not written by nightscore (compare it with aliases.json and the bucket\'s object versions).',
      });
    }
    // The holes are found from the events there are, never by counting to the generation claimed.
    const missing = holes(moves.map((m) => m.generation), doc.generation);
    if (missing.count > 0) {
      throw new NightscoreError('REGISTRY_HISTORY_INCOMPLETE', `${this.uri(name, 'events')} lacks the alias move(s) of generation ${missing.first.join(', ')}${missing.count > missing.first.length ? ', …' : ''} (${missing.count} of ${doc.generation}): which version an alias pointed to when cannot be told`, {
        source: this.uri(name, 'events'),
        hint: 'Event files are append-only: restore the deleted ones from a backup (or the bucket\'s object versions). Resolving aliases as they are now still works.',
      });
    }
    return alias === undefined ? moves : moves.filter((m) => m.alias === alias);
  }

  /**
   * Resolves a reference to one version. With `asOf`, an alias is read as it was at that
   * instant, from the events: the last move of that alias at or before it.
   */
  async resolve(ref: string | ModelRef, opts: { asOf?: Date } = {}): Promise<ResolvedModel> {
    const parsed = typeof ref === 'string' ? parseModelRef(ref) : ref;
    const { name } = parsed;
    let version: number;
    let asOf: string | null = null;
    if (parsed.kind === 'version') version = parsed.version;
    else if (parsed.kind === 'latest') {
      const known = await this.versionNumbers(name);
      if (known.length === 0) throw noModel(this, name, parsed.ref);
      version = known.at(-1)!;
    } else if (opts.asOf) {
      asOf = opts.asOf.toISOString();
      // Strictly before: a move at the first instant of the next day belongs to that day.
      const history = await this.aliasHistory(name, parsed.alias);
      const moves = history.filter((m) => Date.parse(m.at) < opts.asOf!.getTime());
      const to = moves.at(-1)?.to ?? null;
      if (to === null) {
        const first = history[0];
        throw new NightscoreError('MODEL_ALIAS_NOT_FOUND', `${parsed.ref}: ${name}@${parsed.alias} pointed to no version at ${asOf}${first ? ` (it was first set at ${first.at})` : ' (it was never set)'}`, {
          hint: 'Backfill dates from when the alias was set, or score them with a version: --model-as-of now, or model.uri: models:/<name>/<version>.',
        });
      }
      version = to;
    } else {
      const doc = await this.aliases(name);
      const to = doc.aliases[parsed.alias];
      if (to === undefined) {
        const known = Object.keys(doc.aliases);
        if (known.length === 0 && (await this.versionNumbers(name)).length === 0) throw noModel(this, name, parsed.ref);
        throw new NightscoreError('MODEL_ALIAS_NOT_FOUND', `${parsed.ref}: ${name} has no alias "${parsed.alias}"${known.length ? ` (its aliases are ${known.map((a) => `${a} → ${doc.aliases[a]}`).join(', ')})` : ' (it has none)'}`, {
          hint: `Point it at a version: nightscore model alias set ${name} ${parsed.alias} <version>.`,
        });
      }
      version = to;
    }
    const record = await this.record(name, version);
    const uriOf = (file: string) => this.uri(name, 'versions', String(version), file);
    return {
      ref: parsed.ref,
      name,
      version,
      alias: parsed.kind === 'alias' ? parsed.alias : null,
      as_of: asOf,
      uri: uriOf(MODEL_FILE),
      record,
      files: record.files.map((f) => ({ path: uriOf(f.name), sha256: f.sha256, bytes: f.bytes })),
    };
  }

  /** Re-hashes a version's stored files against its record; lists the files that differ (empty: sound). */
  async verify(resolved: ResolvedModel): Promise<Array<{ file: string; expected: string; found: string | null }>> {
    const bad: Array<{ file: string; expected: string; found: string | null }> = [];
    for (const f of resolved.files) {
      const { storage, key } = openLocation(f.path);
      const found = (await digestObject(storage, key))?.sha256 ?? null;
      if (found !== f.sha256) bad.push({ file: f.path, expected: f.sha256, found });
    }
    return bad;
  }

  /**
   * Copies a version's model (and its external data, beside it by name) to `file`. Every file
   * is fetched and verified before any is put in place, and an external data file of another
   * model already there is refused rather than replaced (the model beside it would score
   * with this version's weights).
   */
  async download(resolved: ResolvedModel, file: string): Promise<void> {
    const folder = dirname(file);
    await mkdir(folder, { recursive: true });
    const targets = [file, ...resolved.record.files.slice(1).map((f) => join(folder, f.name))];
    for (const [i, target] of targets.entries()) {
      if (i === 0) continue;
      const there = await readFile(target).catch(() => undefined);
      if (there && sha256Hex(there) !== resolved.files[i]!.sha256) {
        throw new NightscoreError('FILE_IO', `${target} exists and is not ${resolved.record.files[i]!.name} of ${resolved.name} version ${resolved.version}: downloading beside it would pair another model with these weights`, {
          source: target,
          hint: 'Download into a folder of its own (one per version).',
        });
      }
    }
    const temps = targets.map((t) => join(dirname(t), `.${basename(t)}.${process.pid}.tmp`));
    try {
      for (const [i, f] of resolved.files.entries()) {
        const { storage, key } = openLocation(f.path);
        await mkdir(dirname(temps[i]!), { recursive: true });
        const hash = createHash('sha256');
        const body = await storage.read(key);
        body.on('data', (chunk: Buffer) => hash.update(chunk));
        await pipeline(body, createWriteStream(temps[i]!));
        const found = hash.digest('hex');
        if (found !== f.sha256) throw corrupt(resolved, f.path, f.sha256, found);
      }
      for (const [i, t] of targets.entries()) await rename(temps[i]!, t);
    } finally {
      await Promise.all(temps.map((t) => rm(t, { force: true })));
    }
  }

  /** Stores a promotion gate's report among the model's events (model alias history shows it beside its move). */
  async recordGate(name: string, report: Omit<GateEvent, 'kind' | 'at' | 'by'>): Promise<GateEvent> {
    checkName(name, name);
    const event: GateEvent = { kind: 'gate', ...report, at: this.clock().toISOString(), by: this.by };
    await this.writeEvent(name, event);
    return event;
  }

  private async writeEvent(name: string, event: RegistryEvent): Promise<void> {
    // A gate report's name has a random part: two gates may report in one millisecond.
    const n = event.kind === 'alias' ? `g${event.generation}` : event.kind === 'gate' ? `v${event.version}-${randomUUID().slice(0, 8)}` : `v${event.version}`;
    const key = this.key(name, 'events', `${event.at.replace(/[-:.]/g, '')}-${event.kind}-${n}.json`);
    // The name is the event's: writing one twice (a repair of a `last`) is a no-op.
    await this.storage.createIfAbsent(key, JSON.stringify(event, null, 2));
  }
}

export function corrupt(resolved: { name: string; version: number }, file: string, expected: string, found: string): NightscoreError {
  return new NightscoreError('REGISTRY_CORRUPT', `${file} (${resolved.name} version ${resolved.version}) has sha256 ${found}, but the version was registered with sha256 ${expected}`, {
    source: file,
    hint: 'A registered version\'s bytes were changed in storage. Restore them from a backup (or the bucket\'s object versions), or register the model again as a new version; nightscore never scores them.',
  });
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function changedWhileRegistering(file: string): NightscoreError {
  return new NightscoreError('MODEL_CHANGED', `${file} changed while it was being registered: its bytes are not the ones loaded and checked`, {
    source: file,
    hint: 'Register the model once its export has finished writing it; no version was registered (a number may stay unused).',
  });
}

function noModel(registry: Registry, name: string, ref: string): NightscoreError {
  return new NightscoreError('MODEL_NOT_FOUND', `${ref}: there is no model "${name}" in the registry ${registry.root}`, {
    source: registry.uri(name),
    hint: 'Check the name (nightscore model list) and the registry location (NIGHTSCORE_REGISTRY_URI, or registry: in the job file).',
  });
}

export function aliasConflict(name: string, why: string): NightscoreError {
  return new NightscoreError('ALIAS_CONFLICT', `the aliases of ${name} were not moved: ${why}`, {
    hint: 'Another alias move of this model landed meanwhile. Look at where the aliases are now (nightscore model show models:/<name>@<alias>) and move again if it is still wanted.',
  });
}

/** MODEL_ALIAS_NOT_FOUND for a move of an alias that is not set, naming the aliases there are. */
function noSuchAlias(name: string, alias: string, doc: AliasesDoc, move: string): NightscoreError {
  const aliases = Object.keys(doc.aliases);
  return new NightscoreError('MODEL_ALIAS_NOT_FOUND', `${name} has no alias "${alias}" to ${move}${aliases.length ? ` (its aliases are ${aliases.join(', ')})` : ''}`, { hint: 'Check the alias name: nightscore model list <name>.' });
}

export function describeMove(e: AliasEvent): string {
  return `${e.alias} ${e.from ?? '(unset)'} → ${e.to ?? '(deleted)'} at ${e.at} by ${e.by}`;
}

function order(e: RegistryEvent): number {
  return e.kind === 'alias' ? e.generation : -1;
}

function parseJson(text: string, uri: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new NightscoreError('REGISTRY_CORRUPT', `${uri} is not valid JSON: ${(err as Error).message}`, {
      source: uri,
      hint: 'Registry files are written by nightscore only; restore this one from a backup or the bucket\'s object versions.',
    });
  }
}

/** The first ten generations from 1 to `upTo` that `present` (ascending, distinct, each in 1..upTo) lacks, and how many it lacks. */
function holes(present: number[], upTo: number): { first: number[]; count: number } {
  const first: number[] = [];
  let next = 1;
  for (const g of [...present, upTo + 1]) {
    for (let h = next; h < g && first.length < 10; h++) first.push(h);
    next = g + 1;
  }
  return { first, count: upTo - present.length };
}

function summarize(numbers: number[]): string {
  return numbers.length > 10 ? `${numbers.slice(0, 10).join(', ')}, …` : numbers.join(', ');
}
