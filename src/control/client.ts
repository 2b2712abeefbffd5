// Client side of the control socket, used by `faultline ctl`, the stress orchestrator and tests.

import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { controlPaths } from './paths.js';

export class ControlError extends Error {
  constructor(
    message: string,
    readonly errno?: string,
  ) {
    super(message);
  }
}

export class ControlClient {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    const fail = (e?: Error) => {
      for (const w of this.waiting.values()) w.reject(e ?? new ControlError('control socket closed'));
      this.waiting.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  static async connect(socketPath: string): Promise<ControlClient> {
    const sock = connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new ControlError(
            e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
              ? `no faultline daemon listens on ${socketPath} (is the filesystem mounted with faultline mount?)`
              : e.code === 'EACCES'
                ? `permission denied on ${socketPath}: the control socket belongs to the user who mounted (mode 0600)`
                : `cannot connect to ${socketPath}: ${e.message}`,
          ),
        ),
      );
    });
    return new ControlClient(sock);
  }

  /** Connect to the daemon serving `mountpoint`. */
  static async forMount(mountpoint: string): Promise<ControlClient> {
    const paths = await controlPaths(mountpoint).catch((e: NodeJS.ErrnoException) => {
      throw new ControlError(`cannot resolve mountpoint ${mountpoint}: ${e.message}`);
    });
    try {
      await readFile(paths.info, 'utf8');
    } catch {
      throw new ControlError(`${mountpoint} is not a faultline mount (no ${paths.info}); mount it with: faultline mount ${mountpoint}`);
    }
    return ControlClient.connect(paths.socket);
  }

  /** Send one request; resolves with the response, rejects with ControlError when ok is false. */
  request(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ ...args, id, cmd }) + '\n');
    });
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const w = this.waiting.get(msg.id as number);
      if (!w) continue;
      this.waiting.delete(msg.id as number);
      if (msg.ok === true) w.resolve(msg);
      else w.reject(new ControlError(String(msg.error ?? 'request failed'), typeof msg.errno === 'string' ? msg.errno : undefined));
    }
  }
}
