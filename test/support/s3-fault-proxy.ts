import { createServer, request as forward, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * An HTTP proxy in front of the local S3 server that records every request and can misbehave on
 * cue: hold part uploads (so the backup stalls mid-stream with pg_dump alive), hold backup
 * downloads after their first bytes (so a restore stalls mid-stream with pg_restore alive), or go
 * down and come back (S3 unreachable mid-upload). Tests read `requests` to see what the task
 * really sent, e.g. that it aborted its multipart upload.
 */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  status?: number;
}

export interface S3FaultProxy {
  endpoint: string;
  requests: RecordedRequest[];
  holdPartUploads(): void;
  /** Answers matching requests with an S3 error document instead of forwarding them. */
  rejectRequests(predicate: (request: RecordedRequest) => boolean, error: { status: number; code: string; message: string }): void;
  releasePartUploads(): void;
  /** Backup data objects downloaded from now on send their headers and first `afterBytes` bytes, then stall. */
  holdObjectDownloads(options?: { afterBytes?: number }): void;
  releaseObjectDownloads(): void;
  /**
   * Matching requests from now on are accepted and never answered, their bodies never read: a
   * black-holed route (the connection stays open, nothing comes back). `heal` lets new requests through.
   */
  blackHole(predicate?: (request: RecordedRequest) => boolean): void;
  heal(): void;
  /** Matching requests are forwarded only after `delayMs`: a slow S3. */
  delayRequests(predicate: (request: RecordedRequest) => boolean, delayMs: number): void;
  /**
   * The next matching request is forwarded and S3 answers it, but the answer is kept from the
   * client: `'drop'` destroys the client's connection at once (a network failure after S3 did the
   * work); `'hold'` keeps it waiting until the client gives up (a task stopped mid-request).
   */
  loseAnswer(predicate: (request: RecordedRequest) => boolean, how: 'drop' | 'hold'): Promise<RecordedRequest>;
  /** Matching requests are parked unforwarded (S3 never sees them) until the client gives up. */
  holdRequests(predicate: (request: RecordedRequest) => boolean): void;
  goDown(): Promise<void>;
  comeBack(): Promise<void>;
  waitForRequest(predicate: (request: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  stop(): Promise<void>;
}

export const isPartUpload = (request: RecordedRequest): boolean => request.method === 'PUT' && request.query.has('partNumber') && request.query.has('uploadId');
export const isAbortUpload = (request: RecordedRequest): boolean => request.method === 'DELETE' && request.query.has('uploadId');
export const isCompleteUpload = (request: RecordedRequest): boolean => request.method === 'POST' && request.query.has('uploadId');
export const isCreateUpload = (request: RecordedRequest): boolean => request.method === 'POST' && request.query.has('uploads');
/**
 * A write of object bytes (PutObject, UploadPart) that carries neither Content-MD5 nor a checksum
 * (an x-amz-checksum-* header, or one announced as an aws-chunked trailer): S3 refuses those on a
 * bucket under Object Lock. moto enforces that only for PutObject, so tests check parts with this.
 */
export const isUncheckedWrite = (request: RecordedRequest): boolean =>
  request.method === 'PUT' &&
  !('x-amz-copy-source' in request.headers) &&
  !('content-md5' in request.headers) &&
  !Object.keys(request.headers).some((name) => name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-mode') &&
  !/x-amz-checksum-/i.test(String(request.headers['x-amz-trailer'] ?? ''));
export const isObjectDownload = (request: RecordedRequest): boolean =>
  request.method === 'GET' && request.path.endsWith('.dump.zst') && !request.query.has('tagging') && !request.query.has('uploadId');

/**
 * Lets `allowance` bytes through, then parks the next chunk until released. A parked chunk's
 * callback is not called, so the stream stops pulling from upstream (backpressure, no buffering).
 */
class DownloadGate extends Transform {
  constructor(
    private allowance: number,
    private readonly isHeld: () => boolean,
    private readonly park: (resume: () => void) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.isHeld() || chunk.length <= this.allowance) {
      this.allowance -= Math.min(this.allowance, chunk.length);
      callback(null, chunk);
      return;
    }
    const head = chunk.subarray(0, this.allowance);
    this.allowance = 0;
    if (head.length > 0) this.push(head);
    this.park(() => callback(null, chunk.subarray(head.length)));
  }
}

export async function startS3FaultProxy(upstreamEndpoint: string): Promise<S3FaultProxy> {
  const upstream = new URL(upstreamEndpoint);
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters: { predicate: (request: RecordedRequest) => boolean; resolve: (request: RecordedRequest) => void }[] = [];
  let held: (() => void)[] = [];
  let holding = false;
  let heldDownloads: (() => void)[] = [];
  let holdingDownloads: { afterBytes: number } | undefined;
  const rejections: { predicate: (request: RecordedRequest) => boolean; error: { status: number; code: string; message: string } }[] = [];

  let blackHoled: ((request: RecordedRequest) => boolean) | undefined;
  const delays: { predicate: (request: RecordedRequest) => boolean; delayMs: number }[] = [];
  const parkedForever: ((request: RecordedRequest) => boolean)[] = [];
  const lostAnswers: { predicate: (request: RecordedRequest) => boolean; how: 'drop' | 'hold'; resolve: (request: RecordedRequest) => void }[] = [];

  const pass = (incoming: IncomingMessage, outgoing: ServerResponse, record: RecordedRequest): void => {
    const lost = lostAnswers.find((candidate) => candidate.predicate(record));
    if (lost) lostAnswers.splice(lostAnswers.indexOf(lost), 1);
    const proxied = forward(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        record.status = response.statusCode;
        if (lost) {
          // S3 has done the work; the client never hears of it.
          response.resume();
          response.on('end', () => {
            if (lost.how === 'drop') outgoing.socket?.destroy();
            lost.resolve(record);
          });
          return;
        }
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        if (holdingDownloads && isObjectDownload(record) && response.statusCode === 200) {
          const gate = new DownloadGate(
            holdingDownloads.afterBytes,
            () => holdingDownloads !== undefined,
            (resume) => heldDownloads.push(resume),
          );
          response.pipe(gate).pipe(outgoing);
        } else {
          response.pipe(outgoing);
        }
      },
    );
    proxied.on('error', () => outgoing.destroy());
    // The client may go away mid-response (a task stopped while its download is held).
    outgoing.on('error', () => proxied.destroy());
    incoming.pipe(proxied);
  };

  const server: Server = createServer((incoming, outgoing) => {
    const url = new URL(incoming.url ?? '/', 'http://proxy');
    const record: RecordedRequest = { method: incoming.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: incoming.headers };
    requests.push(record);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(record)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(record);
      }
    }
    const rejection = rejections.find((candidate) => candidate.predicate(record));
    if (rejection) {
      record.status = rejection.error.status;
      incoming.resume();
      outgoing.writeHead(rejection.error.status, { 'content-type': 'application/xml' });
      outgoing.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${rejection.error.code}</Code><Message>${rejection.error.message}</Message></Error>`);
      return;
    }
    // A held request's body is left unread, so TCP backpressure stalls the sender.
    if (blackHoled?.(record) || parkedForever.some((predicate) => predicate(record))) return;
    if (holding && isPartUpload(record)) {
      held.push(() => pass(incoming, outgoing, record));
      return;
    }
    const delay = delays.find((candidate) => candidate.predicate(record));
    if (delay) setTimeout(() => pass(incoming, outgoing, record), delay.delayMs);
    else pass(incoming, outgoing, record);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    holdPartUploads: () => {
      holding = true;
    },
    rejectRequests: (predicate, error) => {
      rejections.push({ predicate, error });
    },
    releasePartUploads: () => {
      holding = false;
      const release = held;
      held = [];
      for (const resume of release) resume();
    },
    holdObjectDownloads: (options = {}) => {
      holdingDownloads = { afterBytes: options.afterBytes ?? 256 * 1024 };
    },
    releaseObjectDownloads: () => {
      holdingDownloads = undefined;
      const release = heldDownloads;
      heldDownloads = [];
      for (const resume of release) resume();
    },
    blackHole: (predicate = () => true) => {
      blackHoled = predicate;
    },
    heal: () => {
      blackHoled = undefined;
    },
    delayRequests: (predicate, delayMs) => {
      delays.push({ predicate, delayMs });
    },
    loseAnswer: (predicate, how) => new Promise((resolve) => lostAnswers.push({ predicate, how, resolve })),
    holdRequests: (predicate) => {
      parkedForever.push(predicate);
    },
    goDown: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      held = [];
      heldDownloads = [];
      await closed;
    },
    comeBack: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    waitForRequest: (predicate, timeoutMs = 60_000) => {
      const seen = requests.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for a matching S3 request')), timeoutMs);
        waiters.push({
          predicate,
          resolve: (request) => {
            clearTimeout(timer);
            resolve(request);
          },
        });
      });
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
