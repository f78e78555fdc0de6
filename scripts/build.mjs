// Builds dist/: the CLI and the chunk thread, each bundled with its dependencies, and the
// modules loaded later (a command's own, the charts) split into chunks of their own.
//
// Why a bundle: every process nightscore starts (a command, a worker, each scoring thread)
// spends most of its start-up resolving and reading module files, and one `nightscore run`
// loads about a thousand of them; docs/performance.md has the measured start-up times.
// Types are checked by `npm run typecheck` (tsc); this only emits.
//
// Everything lands flat in dist/, so a module's `import.meta.url` sits one folder below the
// package wherever its code ends up (src/version.ts reads ../package.json so; the chunk thread's
// entry is ./chunk-thread.js beside the run's code).
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

await rm(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts', 'src/run/chunk-thread.ts'],
  absWorkingDir: new URL('..', import.meta.url).pathname,
  outdir: 'dist',
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Native add-ons load their binaries from their own package folder; pino-pretty is required
  // by name on a terminal only.
  external: ['onnxruntime-node', '@resvg/resvg-js', 'pino-pretty'],
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __nightscoreRequire } from 'node:module'; const require = __nightscoreRequire(import.meta.url);" },
  logLevel: 'warning',
});
