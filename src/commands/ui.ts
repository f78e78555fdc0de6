import { optionInteger } from '../env.js';
import { queueConfig } from '../queue/config.js';
import type { CommandContext } from './local.js';

/** nightscore ui: serve the read-only web UI until SIGTERM/SIGINT. */
export async function uiCommand(ctx: CommandContext, opts: { jobsDir: string; port: string; host: string }): Promise<number> {
  // Its log is the only output: on a terminal too, it says where to point a browser.
  if (ctx.settings.NIGHTSCORE_LOG_LEVEL === undefined) ctx.log.level = 'info';
  const port = optionInteger('--port', opts.port, { min: 0, max: 65_535, unit: 'port' })!;
  const { startUiServer } = await import('../ui/server.js');
  const server = await startUiServer({ jobsDir: opts.jobsDir, port, host: opts.host, config: queueConfig(ctx.settings), token: ctx.settings.NIGHTSCORE_UI_TOKEN, log: ctx.log });
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  ctx.log.info({ signal }, 'ui stopping');
  await server.close();
  return 0;
}
