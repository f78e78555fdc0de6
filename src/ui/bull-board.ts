/**
 * Bull Board at /queues, for both queues, read only: its adapters refuse every action
 * (readOnlyMode answers 405, and retries are off), and the UI server answers no method but
 * GET and HEAD before Bull Board sees a request.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';
import type { Queues } from '../queue/queues.js';

export const BULL_BOARD_PATH = '/queues';

export function mountBullBoard(app: Hono, queues: Queues): void {
  const adapter = new HonoAdapter(serveStatic).setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [queues.runs, queues.chunks].map((q) => new BullMQAdapter(q, { readOnlyMode: true, allowRetries: false })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'nightscore queues' } },
  });
  app.route(BULL_BOARD_PATH, adapter.registerPlugin());
}
