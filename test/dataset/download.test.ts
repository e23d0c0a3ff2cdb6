import { promises as fsp, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import fse from 'fs-extra';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadWithResume, parseContentRange, partPath } from '../../src/dataset/download.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { miniArchive } from '../support/zip.js';
import { startServer, TEST_CERT_PATH, type TestServer } from '../support/server.js';

describe('parseContentRange', () => {
  it('reads ranges and the 416 form', () => {
    expect(parseContentRange('bytes 100-199/200')).toEqual({ start: 100, total: 200 });
    expect(parseContentRange('bytes */200')).toEqual({ start: undefined, total: 200 });
    expect(parseContentRange('bytes 0-9/*')).toEqual({ start: 0, total: undefined });
    expect(parseContentRange(undefined)).toEqual({});
    expect(parseContentRange('items 1-2/3')).toEqual({});
  });
});

describe('downloadWithResume', () => {
  let dir: string;
  let dest: string;
  let body: Buffer;
  let server: TestServer | undefined;
  beforeEach(async () => {
    dir = await makeTempDir();
    dest = path.join(dir, 'cell_images.zip');
    body = (await miniArchive(4)).zip;
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await removeDir(dir);
  });

  async function expectFailure(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
    const err = await promise.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(1);
    expect((err as UserError).message).toMatch(pattern);
    expect((err as UserError).message).not.toContain('\n');
  }

  it('downloads the whole file', async () => {
    server = await startServer(body);
    const progress: number[] = [];
    const result = await downloadWithResume({ url: server.url, dest, onProgress: (bytes) => progress.push(bytes) });
    expect(await fsp.readFile(dest)).toEqual(body);
    expect(result).toEqual({ bytes: body.length, resumedFrom: 0, restarted: false });
    expect(progress.at(-1)).toBe(body.length);
    expect(await fse.pathExists(partPath(dest))).toBe(false);
    expect(server.requests).toEqual([{ path: '/files/cell_images.zip', range: undefined }]);
  });

  it('keeps the partial file when the connection drops, and resumes it with a Range request', async () => {
    const half = Math.floor(body.length / 2);
    server = await startServer(body, { cutAfter: half });
    await expectFailure(
      downloadWithResume({ url: server.url, dest }),
      new RegExp(`^could not download ${server.url}: .*run the command again to resume`),
    );
    expect(await fse.pathExists(dest)).toBe(false);
    const kept = (await fsp.stat(partPath(dest))).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(body.length);
    expect(await fsp.readFile(partPath(dest))).toEqual(body.subarray(0, kept));

    const result = await downloadWithResume({ url: server.url, dest });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1].range).toBe(`bytes=${kept}-`);
    expect(result).toEqual({ bytes: body.length, resumedFrom: kept, restarted: false });
    expect(await fsp.readFile(dest)).toEqual(body);
    expect(await fse.pathExists(partPath(dest))).toBe(false);
  });

  it('starts over when the server ignores the Range header (status 200)', async () => {
    server = await startServer(body, { ignoreRange: true });
    await fsp.writeFile(partPath(dest), Buffer.from('garbage that must not end up in the file'));
    const result = await downloadWithResume({ url: server.url, dest });
    expect(server.requests[0].range).toBe('bytes=40-');
    expect(result.restarted).toBe(true);
    expect(await fsp.readFile(dest)).toEqual(body);
  });

  it('treats 416 for a complete partial file as done', async () => {
    server = await startServer(body);
    await fsp.writeFile(partPath(dest), body);
    const result = await downloadWithResume({ url: server.url, dest });
    expect(server.requests.map((r) => r.range)).toEqual([`bytes=${body.length}-`]);
    expect(result.bytes).toBe(body.length);
    expect(await fsp.readFile(dest)).toEqual(body);
  });

  it('discards a partial file longer than the real one (416 with another size)', async () => {
    server = await startServer(body);
    await fsp.writeFile(partPath(dest), Buffer.concat([body, Buffer.from('extra')]));
    const result = await downloadWithResume({ url: server.url, dest });
    expect(server.requests.map((r) => r.range)).toEqual([`bytes=${body.length + 5}-`, undefined]);
    expect(result.restarted).toBe(true);
    expect(await fsp.readFile(dest)).toEqual(body);
  });

  it('follows a redirect, and gives up on a redirect loop', async () => {
    server = await startServer(body);
    await downloadWithResume({ url: server.redirectUrl, dest });
    expect(await fsp.readFile(dest)).toEqual(body);
    expect(server.requests.map((r) => r.path)).toEqual(['/old/cell_images.zip', '/files/cell_images.zip']);
    await expectFailure(
      downloadWithResume({ url: server.loopUrl, dest: path.join(dir, 'x.zip'), maxRedirects: 3 }),
      /more than 3 redirects/,
    );
  });

  it("makes the destination's folder only once the file comes, and says so when it cannot", async () => {
    const nested = path.join(dir, 'new', 'data', 'cell_images.zip');
    server = await startServer(body, { failWith: 503 });
    await expectFailure(downloadWithResume({ url: server.url, dest: nested }), /HTTP 503/);
    expect(await fsp.readdir(dir)).toEqual([]);
    await server.close();

    server = await startServer(body);
    await downloadWithResume({ url: server.url, dest: nested });
    expect(await fsp.readFile(nested)).toEqual(body);
    // A file where the folder should be: one line, exit 2.
    const blocked = path.join(dir, 'blocked');
    await fsp.writeFile(blocked, 'a file');
    for (const dest of [path.join(blocked, 'cell_images.zip'), path.join(blocked, 'sub', 'cell_images.zip')]) {
      const err = await downloadWithResume({ url: server.url, dest }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(2);
      expect((err as UserError).message).toBe(`cannot create ${path.dirname(dest)}: not a folder`);
    }
    expect(await fsp.readFile(blocked, 'utf8')).toBe('a file');
  });

  it('reports HTTP errors and refused connections in one line naming the URL', async () => {
    server = await startServer(body, { failWith: 503 });
    await expectFailure(
      downloadWithResume({ url: server.url, dest }),
      new RegExp(`^could not download ${server.url}: HTTP 503 Service Unavailable; check the URL`),
    );
    // A port that was just freed: nothing listens there any more.
    const gone = await startServer(body);
    await gone.close();
    await expectFailure(
      downloadWithResume({ url: gone.url, dest }),
      new RegExp(`^could not download ${gone.url}: connection refused`),
    );
  });
});

describe('downloadWithResume and https', () => {
  let dir: string;
  let dest: string;
  let body: Buffer;
  let secure: TestServer;
  let plain: TestServer;
  // Trust the test server's self-signed certificate in this process, as NODE_EXTRA_CA_CERTS does for a child.
  const previousCa = https.globalAgent.options.ca;
  beforeAll(async () => {
    https.globalAgent.options.ca = readFileSync(TEST_CERT_PATH);
    body = (await miniArchive(2)).zip;
  });
  afterAll(() => {
    https.globalAgent.options.ca = previousCa;
  });
  beforeEach(async () => {
    dir = await makeTempDir();
    dest = path.join(dir, 'cell_images.zip');
    secure = await startServer(body, { tls: true });
    plain = await startServer(body);
  });
  afterEach(async () => {
    await secure.close();
    await plain.close();
    await removeDir(dir);
  });

  /** Refused in one line with exit code 2, naming the http:// address; the http server was never asked. */
  async function expectDowngradeRefused(url: string, httpUrl: string): Promise<void> {
    const err = await downloadWithResume({ url, dest }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toBe(
      `could not download ${url}: it redirects from https to ${httpUrl}, which is not encrypted (anyone on the way could change the file); pass that http:// address itself to accept an unencrypted download`,
    );
    expect(plain.requests).toEqual([]);
    expect(await fsp.readdir(dir)).toEqual([]);
  }

  it('downloads over https, and follows a redirect that stays on https', async () => {
    const result = await downloadWithResume({ url: secure.redirectTo(secure.url), dest });
    expect(result.bytes).toBe(body.length);
    expect(await fsp.readFile(dest)).toEqual(body);
  });

  it('refuses a redirect from https to http, writing nothing', () =>
    expectDowngradeRefused(secure.redirectTo(plain.url), plain.url));

  it('refuses the downgrade at any hop of a redirect chain', async () => {
    // https -> https -> http
    await expectDowngradeRefused(secure.redirectTo(secure.redirectTo(plain.url)), plain.url);
    // http -> https -> http: the address asked for was plain, but once on https the chain may not leave it.
    const start = new URL(plain.redirectTo(secure.redirectTo(plain.url)));
    const err = await downloadWithResume({ url: start.href, dest }).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toMatch(new RegExp(`: it redirects from https to ${plain.url}, which is not`));
    // The first hop only: the file itself was never asked for.
    expect(plain.requests.map((r) => r.path)).toEqual([start.pathname + start.search]);
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it('leaves a partial file from an earlier run as it was when it refuses', async () => {
    const earlier = body.subarray(0, 10);
    await fsp.writeFile(partPath(dest), earlier);
    const err = await downloadWithResume({ url: secure.redirectTo(plain.url), dest }).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(2);
    expect(plain.requests).toEqual([]);
    expect(await fsp.readdir(dir)).toEqual([path.basename(partPath(dest))]);
    expect(await fsp.readFile(partPath(dest))).toEqual(earlier);
  });

  it('follows exactly maxRedirects redirects, and refuses one more', async () => {
    const twice = secure.redirectTo(secure.redirectTo(secure.url));
    expect((await downloadWithResume({ url: twice, dest, maxRedirects: 2 })).bytes).toBe(body.length);
    const thrice = secure.redirectTo(twice);
    const err = await downloadWithResume({ url: thrice, dest: path.join(dir, 'x.zip'), maxRedirects: 2 }).catch(
      (e: unknown) => e,
    );
    expect((err as UserError).message).toMatch(/: more than 2 redirects;/);
    expect(await fse.pathExists(path.join(dir, 'x.zip.part'))).toBe(false);
  });
});
