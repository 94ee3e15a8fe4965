import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/api/errors.js';
import { ApiClient, ApiClientError } from '../../src/cli/client.js';

/** Answers each path with a fixed status and body. */
const ANSWERS: Record<string, [number, string]> = {
  '/known': [404, JSON.stringify({ error: { code: 'not_found', message: 'no peer x' } })],
  '/unknown': [418, JSON.stringify({ error: { code: 'teapot', message: 'short and stout' } })],
  '/proxy': [502, '<html>bad gateway</html>'],
};

describe('the CLI client', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/pages') {
        const cursor = url.searchParams.get('cursor');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(cursor === null ? { items: [1, 2], nextCursor: 'c1' } : { items: [3], nextCursor: null }));
        return;
      }
      const [status, body] = ANSWERS[url.pathname] ?? [500, ''];
      res.statusCode = status;
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const failure = async (path: string) => {
    const err = await new ApiClient(base, 't').request('GET', path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiClientError);
    return err as ApiClientError;
  };

  it("reports the API's error codes as they come, from the one registry", async () => {
    expect(ERROR_CODES).toContain('not_found');
    const err = await failure('/known');
    expect([err.status, err.code, err.message]).toEqual([404, 'not_found', 'no peer x']);
  });

  it('reports an answer without the API error body, or with a code not in the registry, as http_error', async () => {
    const unknown = await failure('/unknown');
    expect([unknown.status, unknown.code, unknown.message]).toEqual([418, 'http_error', 'short and stout']);
    const proxy = await failure('/proxy');
    expect([proxy.status, proxy.code, proxy.message]).toEqual([502, 'http_error', 'HTTP 502']);
  });

  it('follows nextCursor through every page', async () => {
    expect(await new ApiClient(base, 't').all<{ items: number[]; nextCursor: string | null }>('/pages')).toEqual([1, 2, 3]);
  });
});
