/**
 * The OpenAPI 3.1 document, built from the routes' own schemas (collected
 * with fastify's onRoute hook), so it cannot drift from what is validated.
 */

export interface RouteDoc {
  method: string;
  url: string;
  schema?: {
    summary?: string;
    description?: string;
    params?: unknown;
    querystring?: unknown;
    body?: unknown;
    response?: Record<string, unknown>;
  };
  auth: boolean;
  /** Responses that are not JSON (e.g. /metrics), by status. */
  produces?: string;
}

interface JsonSchemaObject {
  properties?: Record<string, unknown>;
  required?: string[];
}

const STATUS_TEXT: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '204': 'No Content',
  '400': 'Bad input (bad key, bad CIDR, unknown field)',
  '401': 'Missing or wrong bearer token',
  '404': 'Unknown key, or no gateway in this process',
  '405': 'Method not allowed on this path (see the Allow header)',
  '409': 'Already exists',
  '413': 'Body larger than the route allows',
  '500': 'Internal error',
  '503': 'Not ready, or the peer store is unreachable',
};

/** A plain JSON copy: drops TypeBox's symbol keys and anything not JSON. */
function plain(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function parameters(where: 'path' | 'query', schema: unknown): unknown[] {
  if (schema === undefined) return [];
  const s = plain(schema) as JsonSchemaObject;
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).map(([name, sub]) => {
    const { description, ...rest } = sub as Record<string, unknown>;
    return { name, in: where, required: where === 'path' || required.has(name), ...(description ? { description } : {}), schema: rest };
  });
}

export function buildOpenApi(routes: RouteDoc[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(r.schema?.response ?? {})) {
      const description = STATUS_TEXT[status] ?? status;
      responses[status] = status === '204' ? { description } : { description, content: { [r.produces ?? 'application/json']: { schema: plain(schema) } } };
    }
    if (Object.keys(responses).length === 0) {
      responses['200'] = { description: 'OK', content: { [r.produces ?? 'application/json']: { schema: {} } } };
    }
    const op: Record<string, unknown> = {
      ...(r.schema?.summary ? { summary: r.schema.summary } : {}),
      ...(r.schema?.description ? { description: r.schema.description } : {}),
      operationId: `${r.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      parameters: [...parameters('path', r.schema?.params), ...parameters('query', r.schema?.querystring)],
      ...(r.schema?.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(r.schema.body) } } } } : {}),
      responses,
      security: r.auth ? [{ bearer: [] }] : [],
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
