// A local HTTP(S) server for the download tests: serves one body with Range support, and can misbehave
// on request (cut the connection half-way, ignore Range, redirect). Never reaches the internet.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * The https server's self-signed certificate for 127.0.0.1 and localhost (valid 2000-2100), made for these tests
 * with `openssl ca -selfsign -startdate 20000101000000Z -enddate 21000101000000Z`. Clients trust it only when told
 * to: NODE_EXTRA_CA_CERTS for a child process, https.globalAgent's `ca` in this one.
 */
export const TEST_CERT_PATH = path.resolve('test/support/localhost-cert.pem');
const TEST_KEY_PATH = path.resolve('test/support/localhost-key.pem');

export interface ServerBehaviour {
  /** Cut the connection after sending this many body bytes, on the first `cutTimes` requests. */
  cutAfter?: number;
  cutTimes?: number;
  /** Answer every request with the full body and status 200, as servers without Range support do. */
  ignoreRange?: boolean;
  /** Status to answer every request with (for error tests). */
  failWith?: number;
  /** Serve https with the certificate at TEST_CERT_PATH instead of plain http. */
  tls?: boolean;
}

export interface TestServer {
  /** URL of the served file. */
  url: string;
  /** URL that redirects (302) to `url`, and one that redirects to itself forever. */
  redirectUrl: string;
  loopUrl: string;
  /** A URL of this server that redirects (302) to `target`, any URL. */
  redirectTo: (target: string) => string;
  requests: { path: string; range: string | undefined }[];
  close: () => Promise<void>;
}

export async function startServer(body: Buffer, behaviour: ServerBehaviour = {}): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  let cuts = 0;
  const handle: http.RequestListener = (req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range });
    if (req.url?.startsWith('/to?')) {
      res.writeHead(302, { Location: new URLSearchParams(req.url.slice('/to?'.length)).get('url') ?? '/' });
      res.end();
      return;
    }
    if (req.url === '/old/cell_images.zip') {
      res.writeHead(302, { Location: '/files/cell_images.zip' });
      res.end();
      return;
    }
    if (req.url === '/loop') {
      res.writeHead(301, { Location: '/loop' });
      res.end();
      return;
    }
    if (req.url !== '/files/cell_images.zip' || behaviour.failWith) {
      res.writeHead(behaviour.failWith ?? 404);
      res.end('not here');
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !behaviour.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'Content-Length': body.length - start,
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else {
      res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
    }
    const rest = body.subarray(start);
    if (behaviour.cutAfter !== undefined && cuts < (behaviour.cutTimes ?? 1)) {
      cuts++;
      // Send part of the body, then drop the connection as a flaky network would.
      res.write(rest.subarray(0, behaviour.cutAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(rest);
  };
  const server = behaviour.tls
    ? https.createServer({ cert: readFileSync(TEST_CERT_PATH), key: readFileSync(TEST_KEY_PATH) }, handle)
    : http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `${behaviour.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    url: `${base}/files/cell_images.zip`,
    redirectUrl: `${base}/old/cell_images.zip`,
    loopUrl: `${base}/loop`,
    redirectTo: (target) => `${base}/to?${new URLSearchParams({ url: target })}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
