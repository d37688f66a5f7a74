/**
 * The dashboard: static files (HTML, CSS and browser JavaScript modules)
 * built into the server, served without a token (they hold no data). The
 * page signs in with the admin token and reads everything through the
 * admin API.
 */
import type { FastifyInstance } from 'fastify';
import actions from './actions.js?raw';
import chart from './chart.js?raw';
import css from './dashboard.css?raw';
import js from './dashboard.js?raw';
import detail from './detail.js?raw';
import html from './index.html?raw';
import instances from './instances.js?raw';
import lib from './lib.js?raw';
import views from './views.js?raw';

/** The page only talks to this server: no external scripts, styles, images or frames. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The page's modules, by the path the browser imports them from. */
const MODULES: Record<string, string> = {
  '/dashboard.js': js,
  '/lib.js': lib,
  '/actions.js': actions,
  '/views.js': views,
  '/detail.js': detail,
  '/instances.js': instances,
  '/chart.js': chart,
};

/** Serve the dashboard at `/`, its stylesheet and its modules. */
export function registerDashboard(app: FastifyInstance): void {
  const file = (type: string, body: string) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
    reply
      .type(type)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .send(body);
  app.get('/', file('text/html; charset=utf-8', html));
  for (const [route, body] of Object.entries(MODULES)) app.get(route, file('text/javascript; charset=utf-8', body));
  app.get('/dashboard.css', file('text/css; charset=utf-8', css));
  // browsers ask for it; there is none
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
}
