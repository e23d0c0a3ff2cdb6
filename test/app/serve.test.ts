import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback, serveApp, type AppServer } from '../../src/app/serve.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';

/** A raw GET (fetch would normalise "/../" away before sending it). */
function rawRequest(
  url: string,
  requestPath: string,
  method = 'GET',
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { path: requestPath, method }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('serveApp', () => {
  let work: string;
  let server: AppServer;

  beforeAll(async () => {
    work = await makeTempDir('malaria-app-serve-');
    await fs.mkdir(path.join(work, 'app', 'js'), { recursive: true });
    await fs.writeFile(path.join(work, 'app', 'index.html'), '<!doctype html><title>t</title>');
    await fs.writeFile(path.join(work, 'app', 'js', 'main.js'), 'export const x = 1;\n');
    await fs.writeFile(path.join(work, 'app', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
    await fs.writeFile(path.join(work, 'secret.txt'), 'outside the app');
    server = await serveApp(path.join(work, 'app'), 0);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(work);
  });

  it('listens on 127.0.0.1 only by default, on the port it was given (0: a free one)', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.urls).toEqual([server.url]);
    expect(server.loopback).toBe(true);
    expect(server.port).toBeGreaterThan(0);
  });

  it('listens on another address when told, and knows it is no longer loopback-only', async () => {
    const everywhere = await serveApp(path.join(work, 'app'), 0, '0.0.0.0');
    try {
      expect(everywhere.loopback).toBe(false);
      expect(everywhere.urls[0]).toBe(`http://127.0.0.1:${everywhere.port}/`);
      // Every URL it names (this machine's network addresses too) serves the app.
      for (const url of everywhere.urls) {
        expect(url).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:\d+\/$/);
        expect(await (await fetch(url)).text(), url).toBe('<!doctype html><title>t</title>');
      }
    } finally {
      await everywhere.close();
    }
    const ipv6 = await serveApp(path.join(work, 'app'), 0, '::1').catch((err: unknown) => err as Error);
    // Some containers have no IPv6 loopback; where there is one, the URL brackets the address.
    if (!(ipv6 instanceof Error)) {
      expect(ipv6.url).toBe(`http://[::1]:${ipv6.port}/`);
      expect(ipv6.loopback).toBe(true);
      await ipv6.close();
    }
  });

  it('tells loopback addresses (a secure context over http) from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '192.168.1.20', '10.0.0.5', 'clinic.local', '128.0.0.1'])
      expect(isLoopback(host), host).toBe(false);
  });

  it('refuses an address that is not one of this machine’s, as a one-line user error', async () => {
    // 203.0.113.0/24 is reserved for documentation: never an address of this machine.
    const error = await serveApp(path.join(work, 'app'), 0, '203.0.113.7').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(
      '--host 203.0.113.7 is not an address of this machine; pass one of its addresses, or 0.0.0.0 for all of them',
    );
  });

  it('serves index.html at / and every file with its type, revalidated on each load', async () => {
    const index = await fetch(server.url);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(await index.text()).toBe('<!doctype html><title>t</title>');
    const script = await fetch(`${server.url}js/main.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const weights = await fetch(`${server.url}weights.bin?v=1`);
    expect(weights.headers.get('content-type')).toBe('application/octet-stream');
    expect(new Uint8Array(await weights.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3, 4]));
  });

  it('answers HEAD without a body, 404 for missing files and folders, 405 for other methods', async () => {
    const head = await rawRequest(server.url, '/index.html', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('31');
    expect(head.body).toBe('');
    expect((await fetch(`${server.url}nothing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}js`)).status).toBe(404);
    expect((await rawRequest(server.url, '/index.html', 'POST')).status).toBe(405);
  });

  it('never serves a file outside the app folder', async () => {
    for (const attempt of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/js/..%2f..%2fsecret.txt',
      '/%2e%2e%5csecret.txt',
      '/%zz',
    ]) {
      const response = await rawRequest(server.url, attempt);
      expect(response.status, attempt).toBe(404);
      expect(response.body, attempt).not.toContain('outside the app');
    }
  });

  it('says which port is taken, as a one-line user error', async () => {
    const error = await serveApp(path.join(work, 'app'), server.port).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(`port ${server.port} is in use; pass another --port (0 picks a free one)`);
  });
});
