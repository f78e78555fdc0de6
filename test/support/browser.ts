import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

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

/** A new page of `browser` at `url`, which must answer 200; the UI tests' viewport. */
export async function pageAt(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const res = await page.goto(url);
  expect(res?.status()).toBe(200);
  return page;
}
