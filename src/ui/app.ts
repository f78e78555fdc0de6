/**
 * The UI's routes, every one GET (and HEAD):
 *   /                      the grid of dates per job, and the queue panels (?from=&to=)
 *   /runs/:job/:date       one run: manifest, first rejects, error
 *   /models                the registered models: versions, aliases, history with gate reports, agreement (?to=)
 *   /queues                Bull Board, read only
 *   /api/jobs              the job files
 *   /api/dates             every job's dates (?from=&to=); /api/jobs/:job/dates one job's
 *   /api/runs/:job/:date   one run, as its page shows it
 *   /api/queue             the queue panels
 *   /api/models            the models view
 *   /healthz               200 ok, without a token (a probe)
 * An error is the error record of NightscoreError, as JSON ({ error }) under /api and as a
 * banner on pages, with the HTTP status its code calls for; never a stack trace.
 */
import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import { contractOf, NightscoreError, toNightscoreError } from '../errors.js';
import { dateRange, logicalDateFor, yesterday } from '../job/dates.js';
import { modelLocation, type JobDefinition } from '../job/load.js';
import { parseLogicalDate } from '../job/template.js';
import { requireLoopbackHost, requireToken } from './auth.js';
import { mountBullBoard } from './bull-board.js';
import { noticeOf, type UiContext } from './context.js';
import { readJobDates } from './dates.js';
import { gridPage } from './grid-page.js';
import { errorLine, h, layout, type Html } from './html.js';
import { QueuePanelReader } from './queue-panels.js';
import { readRunDetail } from './run-detail.js';
import { runPage } from './run-page.js';
import { readModels } from './models.js';
import { modelsPage } from './models-page.js';

export interface UiAppOptions {
  ctx: UiContext;
  /** Required of every request but /healthz, when set (see auth.ts). */
  token?: string;
  /** Pages reload themselves this often. @defaultValue 30 */
  refreshSeconds?: number;
  log?: Logger;
}

/** Dates a page shows by default, ending at the latest logical date. */
const DEFAULT_DAYS = 30;
/** Dates a page or API call may ask for at once. */
const MAX_DAYS = 400;

export function createUiApp(opts: UiAppOptions): Hono {
  const { ctx } = opts;
  const refreshSeconds = opts.refreshSeconds ?? 30;
  const panels = new QueuePanelReader();
  const app = new Hono();
  app.onError((err, c) => errorResponse(c, err, opts.log));
  app.notFound((c) => errorResponse(c, new NightscoreError('UI_NOT_FOUND', `there is no page ${c.req.path}`, { hint: 'The pages are /, /runs/<job>/<date>, /models and /queues; the API is under /api (see /api/jobs).' }), opts.log));
  app.use('*', async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      throw new NightscoreError('UI_READ_ONLY', `${c.req.method} ${c.req.path}: the UI only reads; it answers GET and HEAD`, { hint: 'Change runs with the nightscore commands (run, retry, backfill), not through the UI.' });
    }
    await next();
  });
  app.get('/healthz', (c) => c.text('ok\n'));
  app.use('*', async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
  });
  app.use('*', opts.token ? requireToken(opts.token) : requireLoopbackHost());

  const allDates = async (c: Context) => {
    const { jobs, notices } = await ctx.jobList();
    const range = rangeOf(c, jobs);
    const redis = ctx.redisReady();
    // Every job's reading handles it; this keeps a rejection with no job to read it handled.
    redis.catch(() => undefined);
    const all = await Promise.all(jobs.map(async (job) => ({ job, dates: await readJobDates(ctx, job, range.dates, redis) })));
    return { ...range, jobs, all, notices };
  };

  app.get('/', async (c) => {
    const [d, p] = await Promise.all([allDates(c), ctx.jobList().then(({ jobs }) => panels.read(ctx, jobs))]);
    const notices = [...d.notices];
    const jobs = await Promise.all(d.all.map(async (j) => ({ ...j, health: await ctx.charts.drawRunHealth(j.dates.dates).catch((err: unknown) => void notices.push(noticeOf(`${j.job.name}: chart`, err))) })));
    return page(c, gridPage({ from: d.from, to: d.to, jobs, panels: p, notices, refreshSeconds, at: new Date().toISOString() }));
  });
  app.get('/runs/:job/:date', async (c) => {
    const job = await ctx.job(c.req.param('job'));
    const detail = await readRunDetail(ctx, job, parseLogicalDate(c.req.param('date')));
    const histograms = detail.drift ? await ctx.charts.drawHistograms(detail.drift).catch((err: unknown) => (detail.notices.push(noticeOf(`${job.name}: chart`, err)), [])) : [];
    return page(c, runPage(detail, refreshSeconds, histograms));
  });
  // ?to= ends the days of agreement shown (default: yesterday, the last logical date).
  const models = async (c: Context) => readModels((await ctx.jobList()).jobs, c.req.query('to') === undefined ? yesterday() : parseLogicalDate(c.req.query('to')!));
  app.get('/models', async (c) => {
    const view = await models(c);
    const charts = await Promise.all(view.models.map((m) => ctx.charts.drawAgreement(m.agreement).catch((err: unknown) => void view.notices.push(noticeOf(`${m.name}: chart`, err)))));
    return page(c, modelsPage(view, charts, refreshSeconds));
  });
  app.get('/api/models', async (c) => c.json(await models(c)));
  app.get('/api/jobs', async (c) => c.json({ jobs: (await ctx.jobList()).jobs.map(describeJob) }));
  app.get('/api/dates', async (c) => {
    const d = await allDates(c);
    return c.json({ from: d.from, to: d.to, jobs: d.all.map((j) => j.dates), notices: d.notices });
  });
  app.get('/api/jobs/:job/dates', async (c) => {
    const job = await ctx.job(c.req.param('job'));
    const range = rangeOf(c, [job]);
    return c.json({ from: range.from, to: range.to, ...(await readJobDates(ctx, job, range.dates, ctx.redisReady())) });
  });
  app.get('/api/runs/:job/:date', async (c) => c.json(await readRunDetail(ctx, await ctx.job(c.req.param('job')), parseLogicalDate(c.req.param('date')))));
  app.get('/api/queue', async (c) => c.json(await panels.read(ctx, (await ctx.jobList()).jobs)));
  // Bull Board's own API waits for a Redis that is down; the page says so at once instead.
  app.use('/queues/api/*', async (_c, next) => {
    await ctx.redisReady();
    await next();
  });
  mountBullBoard(app, ctx.queues);
  return app;
}

/**
 * ?from=&to=, checked: by default the 30 dates ending at the latest logical date of the jobs
 * (yesterday for a nightly job with lag 1, in its schedule's zone).
 */
function rangeOf(c: Context, jobs: JobDefinition[]): { from: string; to: string; dates: string[] } {
  const latest = jobs.map((j) => logicalDateFor(Date.now(), j.schedule?.tz ?? 'UTC', j.schedule?.lag ?? 1)).sort().at(-1) ?? logicalDateFor(Date.now(), 'UTC', 1);
  const to = parseLogicalDate(c.req.query('to') ?? latest);
  const from = parseLogicalDate(c.req.query('from') ?? new Date(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_DAYS - 1) * 86_400_000).toISOString().slice(0, 10));
  const dates = dateRange(from, to);
  if (dates.length > MAX_DAYS) throw new NightscoreError('BAD_RANGE', `${from}..${to} is ${dates.length} dates; a page shows at most ${MAX_DAYS}`, { hint: 'Ask for a shorter range with ?from=&to=.' });
  return { from, to, dates };
}

function describeJob(job: JobDefinition) {
  return { name: job.name, file: job.file, description: job.description ?? null, model: modelLocation(job), input: { uri: job.input.uri, format: job.input.format }, output: { uri: job.output.uri, format: job.output.format }, schedule: job.schedule ?? null };
}

/** An HTML page, with a policy that runs no script and loads nothing from elsewhere. */
function page(c: Context, body: Html): Response {
  c.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
  return c.html(body);
}

/** The HTTP status of an error: by its code, else by its kind. */
export function httpStatusOf(e: NightscoreError): 400 | 401 | 404 | 405 | 500 | 502 | 503 {
  if (e.code === 'UI_UNAUTHORIZED') return 401;
  if (e.code === 'UI_NOT_FOUND') return 404;
  if (e.code === 'UI_READ_ONLY') return 405;
  const { kind, retryable } = contractOf(e.code);
  if (kind === 'usage') return 400;
  if (kind === 'storage') return retryable ? 503 : 502;
  return 500;
}

function errorResponse(c: Context, err: unknown, log: Logger | undefined): Response {
  const e = toNightscoreError(err);
  const status = httpStatusOf(e);
  if (status >= 500) log?.warn({ path: c.req.path, err: e.toJSON() }, 'ui request failed');
  if (status === 401) c.header('www-authenticate', 'Bearer realm="nightscore"');
  if (status === 405) c.header('allow', 'GET, HEAD');
  if (c.req.path.startsWith('/api/') || !(c.req.header('accept') ?? '').includes('text/html')) return c.json({ error: e.toJSON() }, status);
  c.status(status);
  return page(c, layout({ title: e.code }, h`<h1>${e.code}</h1><div class="error" data-error-code="${e.code}">${errorLine(e.toJSON())}</div><p><a href="/">all jobs</a></p>`));
}
