// A local HTTP server for the download tests: serves one body with Range support, and can misbehave
// on request (cut the connection half-way, ignore Range, redirect). Never reaches the internet.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServerBehaviour {
  /** Cut the connection after sending this many body bytes, on the first `cutTimes` requests. */
  cutAfter?: number;
  cutTimes?: number;
  /** Answer every request with the full body and status 200, as servers without Range support do. */
  ignoreRange?: boolean;
  /** Status to answer every request with (for error tests). */
  failWith?: number;
}

export interface TestServer {
  /** URL of the served file. */
  url: string;
  /** URL that redirects (302) to `url`, and one that redirects to itself forever. */
  redirectUrl: string;
  loopUrl: string;
  requests: { path: string; range: string | undefined }[];
  close: () => Promise<void>;
}

export async function startServer(body: Buffer, behaviour: ServerBehaviour = {}): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  let cuts = 0;
  const server = http.createServer((req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range });
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/files/cell_images.zip`,
    redirectUrl: `${base}/old/cell_images.zip`,
    loopUrl: `${base}/loop`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
