import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadWithResume, parseContentRange, partPath } from '../../src/data/download.js';
import { UserError } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { miniArchive } from '../support/zip.js';
import { startServer, type TestServer } from '../support/server.js';

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
