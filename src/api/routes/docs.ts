/**
 * The API's own description: GET /openapi.json, built from the routes' own
 * schemas, and Swagger UI over it at /docs.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { buildOpenApi, type RouteDoc } from '../openapi.js';

export const API_VERSION = '1';
/** Swagger UI over /openapi.json; its assets come from the package (gateways often have no Internet). */
export const DOCS_PREFIX = '/docs';

/**
 * Collects the routes the document describes. Added to the root before any
 * plugin is registered, so it sees the routes of every plugin.
 */
export function collectRouteDocs(app: FastifyInstance): RouteDoc[] {
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    // The docs pages are as open as the document they show.
    if (r.url === DOCS_PREFIX || r.url.startsWith(`${DOCS_PREFIX}/`)) r.config = { ...r.config, public: true };
    if ((r.schema as { hide?: boolean } | undefined)?.hide) return;
    for (const method of [r.method].flat()) {
      routes.push({ method, url: r.url, schema: r.schema as RouteDoc['schema'], auth: !r.config?.public, produces: r.config?.produces });
    }
  });
  return routes;
}

export interface DocsRoutesOptions {
  /** From collectRouteDocs; complete once the app is ready. */
  routes: readonly RouteDoc[];
}

export const docsRoutes: FastifyPluginAsync<DocsRoutesOptions> = async (app, { routes }) => {
  // Built once every route is in; /openapi.json and the docs page serve this one object.
  const document: Record<string, unknown> = {};
  app.addHook('onReady', async () => {
    Object.assign(document, buildOpenApi([...routes], { title: 'wgjit', version: API_VERSION }));
  });

  app.get('/openapi.json', { config: { public: true }, schema: { summary: 'This document' } }, async () => document);

  // @fastify/swagger only holds the document for the UI (static mode: it
  // generates nothing); the UI's own routes are hidden from the document.
  // The cast: its types know OpenAPI 2 and 3.0 documents, ours is 3.1.
  void app.register(fastifySwagger, { mode: 'static', specification: { document: document as never } });
  void app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { docExpansion: 'list', deepLinking: true }, theme: { title: 'wgjit API' } });
};
