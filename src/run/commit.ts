import type { Location } from '../storage/open.js';
import { OUTPUT_FILES, OWNED_PART_RE, type RunManifest } from './manifest.js';

/**
 * The commit protocol of a run's output folder. Readers trust a folder only while it
 * holds `_SUCCESS`, so:
 *   1. `beginOutput` removes `_SUCCESS` first, then the parts of earlier attempts;
 *   2. the run writes its parts under deterministic names;
 *   3. `commitOutput` sweeps any part this attempt did not write, writes the manifest,
 *      and writes `_SUCCESS` last, only when the run succeeded.
 * A reader that waits for `_SUCCESS` therefore never sees a mix of two attempts.
 */
export async function beginOutput(out: Location, manifest: RunManifest): Promise<void> {
  await out.storage.delete(out.storage.join(out.key, OUTPUT_FILES.success));
  await removeParts(out, new Set());
  await writeManifest(out, manifest);
}

/** Writes the final manifest and, on success, `_SUCCESS`. `keep` lists the part keys this attempt wrote. */
export async function commitOutput(out: Location, manifest: RunManifest, keep: Set<string>): Promise<void> {
  await removeParts(out, keep);
  await writeManifest(out, manifest);
  if (manifest.status === 'succeeded') await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.success), '');
}

export async function writeManifest(out: Location, manifest: RunManifest): Promise<void> {
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Removes every part file in the folder that is not in `keep`; other files are left alone. */
async function removeParts(out: Location, keep: Set<string>): Promise<void> {
  const folder = out.storage.join(out.key, '');
  for (const { key } of await out.storage.list(folder)) {
    const relative = key.slice(folder.length).split('\\').join('/');
    if (OWNED_PART_RE.test(relative) && !keep.has(key)) await out.storage.delete(key);
  }
}
