// The daemon's control socket: a Unix stream socket, mode 0600, JSON lines (PROTOCOL.md).
// Requests on one connection are answered in order; a bad line gets an error and the connection
// stays open. The handler never runs synchronously against the mount: it is the daemon's own code.

import { createServer, type Server, type Socket } from 'node:net';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ControlPaths } from './paths.js';

export type ControlRequest = { id?: unknown; cmd: string; [arg: string]: unknown };
export type ControlHandler = (req: ControlRequest) => Promise<Record<string, unknown>>;

/** An error with an errno name (FsError has one); the response carries it. */
interface MaybeErrno {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
}

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly paths: ControlPaths,
    private readonly handler: ControlHandler,
  ) {}

  async listen(info: Record<string, unknown>): Promise<void> {
    await mkdir(dirname(this.paths.socket), { recursive: true, mode: 0o700 });
    await rm(this.paths.socket, { force: true });
    const server = createServer((sock) => this.serve(sock));
    this.server = server;
    // Create the socket with no permissions for group/other from the start (no chmod window).
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.paths.socket, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    await chmod(this.paths.socket, 0o600);
    await writeFile(this.paths.info, JSON.stringify({ ...info, socket: this.paths.socket }) + '\n', { mode: 0o600 });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.paths.socket, { force: true });
    await rm(this.paths.info, { force: true });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setEncoding('utf8');
    let buffered = '';
    let chain: Promise<void> = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > 64 * 1024 * 1024) {
        sock.end(JSON.stringify({ id: null, ok: false, error: 'request line longer than 64 MiB' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        chain = chain.then(() => this.answer(sock, line));
      }
    });
  }

  private async answer(sock: Socket, line: string): Promise<void> {
    let id: unknown = null;
    let reply: Record<string, unknown>;
    try {
      const req = JSON.parse(line) as unknown;
      if (!req || typeof req !== 'object' || Array.isArray(req)) throw new TypeError('a request is a JSON object');
      const r = req as ControlRequest;
      id = r.id ?? null;
      if (typeof r.cmd !== 'string') throw new TypeError('request has no "cmd" string');
      reply = { id, ok: true, ...(await this.handler(r)) };
    } catch (e) {
      const err = e as MaybeErrno;
      reply = { id, ok: false, error: String(err?.message ?? e) };
      if (typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code)) reply.errno = err.code;
    }
    if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
  }
}
