import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fse from 'fs-extra';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadDataset } from '../../src/workflows/download.js';
import { silentReporter } from '../../src/report/reporter.js';
import { UserError } from '../../src/errors.js';
import { expectOneErrorLine, runChild, runInProcess } from '../support/cli.js';
import { makeTempDir, removeDir } from '../support/temp.js';
import { miniArchive } from '../support/zip.js';
import { startServer, TEST_CERT_PATH, type TestServer } from '../support/server.js';

/** stderr without the progress bars (downloading, extracting) that runInProcess captures with the messages. */
const messages = (stderr: string[]): string[] =>
  stderr.filter((line) => !/^(downloading \(MB\)|extracting) +\d+\/\d+ \[/.test(line));

describe('malaria download', () => {
  let dir: string;
  let server: TestServer | undefined;
  let archive: Awaited<ReturnType<typeof miniArchive>>;
  beforeEach(async () => {
    dir = await makeTempDir();
    archive = await miniArchive(3);
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await removeDir(dir);
  });

  it('resumes an interrupted download and extracts the official layout', async () => {
    server = await startServer(archive.zip, { cutAfter: Math.floor(archive.zip.length / 2) });
    const failed = await runInProcess(['download', '--url', server.url, '--dir', dir]);
    expect(failed.code).toBe(1);
    expect(messages(failed.stderr)).toHaveLength(1);
    expect(messages(failed.stderr)[0]).toMatch(
      new RegExp(
        `^malaria: could not download ${server.url}: .*resume \\([\\d,]+ bytes kept in .*cell_images\\.zip\\.part\\)$`,
      ),
    );
    const kept = (await fsp.stat(path.join(dir, 'cell_images.zip.part'))).size;

    const done = await runInProcess(['download', '--url', server.url, '--dir', dir]);
    expect(done.code).toBe(0);
    expect(server.requests.map((r) => r.range)).toEqual([undefined, `bytes=${kept}-`]);
    expect(await fsp.readFile(path.join(dir, 'cell_images.zip'))).toEqual(archive.zip);
    expect(await fse.pathExists(path.join(dir, 'cell_images.zip.part'))).toBe(false);

    for (const [rel, bytes] of archive.images)
      expect(await fsp.readFile(path.join(dir, 'cell_images', rel))).toEqual(bytes);
    expect((await fsp.readdir(path.join(dir, 'cell_images'))).sort()).toEqual(['Parasitized', 'Uninfected']);
    expect(done.stdout).toContain(
      `extracted 6 images to ${path.join(dir, 'cell_images')} (Parasitized 3, Uninfected 3)`,
    );
    expect(done.stdout).toContain('skipped 4 non-image entries (Thumbs.db)');
    expect(done.stdout.filter((line) => line.startsWith('skipped 6 duplicate images'))).toHaveLength(1);
    expect(done.stdout[0]).toMatch(/^downloaded .* \(resumed after \d+ MB\)$/);
    // Six is not the 27,558 of the real archive: one warning line.
    expect(messages(done.stderr)).toEqual([
      `warning: expected 27,558 images (the official NIH archive) but found 6; check that ${server.url} serves the full data set`,
    ]);
  });

  it('refuses to extract over existing images without --force, and re-extracts with it', async () => {
    server = await startServer(archive.zip);
    expect((await runInProcess(['download', '--url', server.url, '--dir', dir])).code).toBe(0);
    const again = await runInProcess(['download', '--url', server.url, '--dir', dir]);
    expect(again.code).toBe(2);
    expect(messages(again.stderr)).toEqual([
      `malaria: ${path.join(dir, 'cell_images')} already exists; pass --force to extract the archive over it again`,
    ]);

    // An extraction of ours with an image lost: --force extracts it again (a folder holding anything else is refused).
    const [lost] = await fsp.readdir(path.join(dir, 'cell_images', 'Parasitized'));
    await fsp.rm(path.join(dir, 'cell_images', 'Parasitized', lost));
    const forced = await runInProcess(['download', '--url', server.url, '--dir', dir, '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout[0]).toBe(
      `using ${path.join(dir, 'cell_images.zip')}, downloaded earlier (delete it to download again)`,
    );
    expect(server.requests).toHaveLength(1); // the archive on disk was reused
    expect(await fse.pathExists(path.join(dir, 'cell_images', 'Parasitized', lost))).toBe(true);
  });

  it('refuses an https address that redirects to http: one line, exit 2, no folder made', async () => {
    server = await startServer(archive.zip, { tls: true });
    const plain = await startServer(archive.zip);
    try {
      const target = path.join(dir, 'new', 'data');
      // The built CLI in a child that trusts the test certificate the way a user's Node trusts an extra CA.
      const result = await runChild(['download', '--url', server.redirectTo(plain.url), '--dir', target], {
        env: { NODE_EXTRA_CA_CERTS: TEST_CERT_PATH },
      });
      expect(result.exitCode).toBe(2);
      expectOneErrorLine(
        result,
        new RegExp(`^malaria: could not download .*: it redirects from https to ${plain.url}, `),
      );
      expect(plain.requests).toEqual([]);
      expect(await fsp.readdir(dir)).toEqual([]);

      // Trusting the certificate is what made the https request work: the same address over https still downloads.
      const direct = await runChild(['download', '--url', server.url, '--dir', target], {
        env: { NODE_EXTRA_CA_CERTS: TEST_CERT_PATH },
      });
      expect(direct.exitCode, direct.stderr.join('\n')).toBe(0);
    } finally {
      await plain.close();
    }
  });

  it('rejects a URL that is not http(s) with exit code 2', async () => {
    const { code, stderr } = await runInProcess([
      'download',
      '--url',
      'ftp://example.org/cell_images.zip',
      '--dir',
      dir,
    ]);
    expect(code).toBe(2);
    expect(stderr).toEqual([
      'malaria: --url ftp://example.org/cell_images.zip uses ftp; pass an http:// or https:// address',
    ]);
    await expect(downloadDataset({ url: 'not a url', dir, force: false })).rejects.toThrow(UserError);
  });

  it('does not warn when the image count matches', async () => {
    server = await startServer(archive.zip);
    const warnings: string[] = [];
    const result = await downloadDataset(
      { url: server.url, dir, force: false, expectedImages: 6 },
      { ...silentReporter, note: (line) => warnings.push(line) },
    );
    expect(result.images).toBe(6);
    expect(warnings).toEqual([]);
  });
});
