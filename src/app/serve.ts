// A small static file server for the written app, on 127.0.0.1 unless told otherwise: the page needs http://
// (browsers refuse service workers and model fetches from file://), and only localhost counts as a secure
// context over plain http, so on any other address the page works but its service worker (offline use) does not.
import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { APP_DEFAULTS } from '../config.js';
import { UserError } from '../errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
};

const LOOPBACK_HOST: string = APP_DEFAULTS.host;

export interface AppServer {
  /** http://127.0.0.1:<port>/, or the address it listens on. */
  url: string;
  /** url, and on an any-address host (0.0.0.0, ::) the machine's network addresses too. */
  urls: string[];
  /** Whether only this machine can reach it (where browsers treat plain http as a secure context). */
  loopback: boolean;
  port: number;
  /** Stops listening and drops open connections; closing twice is harmless. */
  close: () => Promise<void>;
}

/** The file under `root` that `urlPath` names, or undefined when it would leave the folder. */
function fileFor(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return undefined;
  }
  const file = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
  const inside = path.relative(root, file);
  if (inside.startsWith('..') || path.isAbsolute(inside) || decoded.includes('\0')) return undefined;
  return decoded.endsWith('/') ? path.join(file, 'index.html') : file;
}

async function respond(root: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const file = fileFor(root, req.url ?? '/');
  const stat = file ? await fs.stat(file).catch(() => undefined) : undefined;
  if (!file || !stat?.isFile()) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Content-Length': stat.size,
    // Revalidate every time, so a rewritten app (and its service worker) is picked up on the next load.
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

/** localhost, 127.x.x.x and ::1: addresses browsers treat as a secure context even over plain http. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127\./.test(bare);
}

const urlOf = (host: string, port: number) => `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;

/** The URLs that reach a server on `host`: on 0.0.0.0 or ::, this machine's loopback and network addresses. */
function reachableUrls(host: string, port: number): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [urlOf(host, port)];
  const external = Object.values(os.networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .filter((address) => !address.internal && address.family === 'IPv4')
    .map((address) => urlOf(address.address, port));
  return [urlOf(LOOPBACK_HOST, port), ...external];
}

/** Serves `root` on `host`:`port` (0 picks a free port). */
export async function serveApp(root: string, port: number, host = LOOPBACK_HOST): Promise<AppServer> {
  const folder = path.resolve(root);
  const server = http.createServer((req, res) => {
    respond(folder, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(new UserError(`port ${port} is in use; pass another --port (0 picks a free one)`));
      else if (err.code === 'EACCES')
        reject(new UserError(`port ${port} needs more privileges; pass a --port above 1023`));
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
        reject(
          new UserError(
            `--host ${host} is not an address of this machine; pass one of its addresses, or 0.0.0.0 for all of them`,
          ),
        );
      } else reject(err);
    });
    server.listen(port, host, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  const urls = reachableUrls(host, actual);
  return {
    url: urls[0],
    urls,
    loopback: isLoopback(host),
    port: actual,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((err) => (err ? reject(err) : resolve()));
        // Browsers keep connections alive; without this, close would wait for them to time out.
        server.closeAllConnections();
      }),
  };
}
