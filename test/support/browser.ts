import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (CI installs it in .ci/run). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium for the UI tests. The flags keep it off the network it would otherwise
 * reach for on its own (updates, sync, QUIC probes), which on an offline machine stalls it.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
