// A resumable HTTP(S) download: bytes go to `<dest>.part`, a rerun asks for the rest with a Range
// header, and the file is renamed to `<dest>` only once it is complete.
import { createWriteStream, promises as fsp } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeFsError, UserError } from '../errors.js';

export interface DownloadOptions {
  url: string;
  /** Final path of the file; the partial download lives at `${dest}.part`. */
  dest: string;
  /** Redirects followed before giving up. */
  maxRedirects?: number;
  /** Milliseconds without any data before the connection counts as dead. */
  idleTimeoutMs?: number;
  /** Called as bytes arrive: bytes on disk so far and the full size when the server said it. */
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** Called once per response with the byte offset it starts at and the total size (for a progress bar). */
  onStart?: (offset: number, total: number | undefined) => void;
}

export interface DownloadResult {
  bytes: number;
  /** Bytes that were already on disk from an interrupted run and were not fetched again. */
  resumedFrom: number;
  /** The server ignored the Range request (status 200), so the partial file was discarded. */
  restarted: boolean;
}

/** Where the bytes of an unfinished download are kept between runs. */
export const partPath = (dest: string): string => `${dest}.part`;

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch (err) {
    // ENOTDIR: a file stands where a folder of the path should be, so no partial download can be there either.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 0;
    throw err;
  }
}

/**
 * One GET, following up to `maxRedirects` redirects (the Range header goes along). A redirect from https to plain
 * http is refused at any hop: it would let anyone on the way swap the file the user asked to fetch securely.
 */
async function get(
  url: URL,
  headers: Record<string, string>,
  maxRedirects: number,
  idleTimeoutMs: number,
): Promise<IncomingMessage> {
  for (let redirects = 0; ; redirects++) {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const client = url.protocol === 'https:' ? https : http;
      const request = client.get(url, { headers }, resolve);
      request.setTimeout(idleTimeoutMs, () =>
        request.destroy(new Error(`no data for ${Math.round(idleTimeoutMs / 1000)} s`)),
      );
      request.on('error', reject);
    });
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && status !== 304 && location) {
      response.resume(); // discard the redirect's body so the socket is freed
      if (redirects >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new Error(`redirect to unsupported ${next.protocol} URL`);
      if (url.protocol === 'https:' && next.protocol === 'http:') throw new DowngradeRefused(next);
      url = next;
      continue;
    }
    return response;
  }
}

/** A redirect from https to http, refused before anything is asked of the http address. */
class DowngradeRefused extends Error {
  constructor(readonly target: URL) {
    super(
      `it redirects from https to ${target.href}, which is not encrypted (anyone on the way could change the file); pass that http:// address itself to accept an unencrypted download`,
    );
  }
}

// "bytes 100-199/200" -> {start: 100, total: 200}; "bytes */200" (sent with 416) -> {total: 200}.
export function parseContentRange(header: string | undefined): { start?: number; total?: number } {
  const match = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header?.trim() ?? '');
  if (!match) return {};
  return {
    start: match[1] === undefined ? undefined : Number(match[1]),
    total: match[2] === '*' ? undefined : Number(match[2]),
  };
}

/**
 * Downloads `url` to `dest`, resuming from `dest.part`. Network problems and HTTP errors become a
 * UserError (exit code 1) naming the URL; the .part file is kept so the next run resumes. A redirect from https
 * to http is a UserError with exit code 2. Nothing is written, not even `dest`'s folder, until a server answers
 * with the file.
 */
export async function downloadWithResume(options: DownloadOptions): Promise<DownloadResult> {
  const part = partPath(options.dest);
  const maxRedirects = options.maxRedirects ?? 5;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  let restarted = false;
  let resumedFrom = 0;
  try {
    // At most two rounds: a second one only when the partial file turned out unusable.
    for (let round = 0; round < 2; round++) {
      const offset = await sizeOf(part);
      const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
      const response = await get(new URL(options.url), headers, maxRedirects, idleTimeoutMs);
      const status = response.statusCode ?? 0;
      const range = parseContentRange(response.headers['content-range']);
      let append: boolean;
      let total: number | undefined;
      if (status === 416 && offset > 0) {
        response.resume();
        // The server has nothing past our last byte: the .part file is the whole file, unless its size disagrees.
        if (range.total === undefined || range.total === offset) {
          await fsp.rename(part, options.dest);
          return { bytes: offset, resumedFrom: offset, restarted };
        }
        await fsp.rm(part, { force: true });
        restarted = true;
        continue;
      } else if (status === 206 && offset > 0) {
        if (range.start !== offset) {
          response.resume();
          await fsp.rm(part, { force: true });
          restarted = true;
          continue;
        }
        append = true;
        total = range.total;
        resumedFrom = offset;
      } else if (status === 200) {
        append = false;
        restarted ||= offset > 0;
        const length = Number(response.headers['content-length']);
        total = Number.isFinite(length) && response.headers['content-length'] !== undefined ? length : undefined;
      } else {
        response.resume();
        throw new Error(`HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`);
      }

      await makeFolderOf(part).catch((err: unknown) => {
        response.destroy();
        throw err;
      });
      let bytes = append ? offset : 0;
      options.onStart?.(bytes, total);
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          options.onProgress?.(bytes, total);
          callback(null, chunk);
        },
      });
      try {
        await pipeline(response, counter, createWriteStream(part, { flags: append ? 'a' : 'w' }));
      } catch (err) {
        // (bytes counted here may exceed what reached the disk; the message below reports the .part size)
        throw new Error(`interrupted: ${describeNetworkError(err)}`, { cause: err });
      }
      if (!response.complete || (total !== undefined && bytes !== total)) {
        throw new Error(`the connection closed after ${bytes} of ${total ?? '?'} bytes`);
      }
      await fsp.rename(part, options.dest);
      return { bytes, resumedFrom, restarted };
    }
    throw new Error('the server keeps answering the resume request inconsistently');
  } catch (err) {
    if (err instanceof DowngradeRefused) throw new UserError(`could not download ${options.url}: ${err.message}`);
    if (err instanceof UserError) throw err;
    const problem = describeNetworkError(err);
    const kept = await sizeOf(part);
    const resume =
      kept > 0
        ? `; run the command again to resume (${kept.toLocaleString('en-US')} bytes kept in ${part})`
        : '; check the URL and your connection, then run the command again';
    throw new UserError(`could not download ${options.url}: ${problem}${resume}`, 1);
  }
}

/** Creates the folder `file` goes in (and its parents); a folder that cannot be made is one line, exit 2. */
async function makeFolderOf(file: string): Promise<void> {
  const folder = path.dirname(file);
  try {
    await fsp.mkdir(folder, { recursive: true });
  } catch (err) {
    // mkdir says EEXIST when `folder` itself is a file.
    const code = (err as NodeJS.ErrnoException).code === 'EEXIST' ? { code: 'ENOTDIR' } : err;
    const problem = describeFsError(code, `cannot create ${folder}`);
    if (problem) throw new UserError(problem);
    throw err;
  }
}

function describeNetworkError(err: unknown): string {
  const error = err as NodeJS.ErrnoException;
  switch (error?.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${(error as { hostname?: string }).hostname ?? 'DNS lookup failed'})`;
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
      return 'the connection timed out';
    case 'ENOSPC':
      return 'the disk is full';
    default:
      return error instanceof Error ? error.message.split('\n')[0] : String(err);
  }
}
