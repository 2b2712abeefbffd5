// A stand-in for the faultline daemon's control socket, for testing server_punch without a FUSE
// mount: it applies punch / zero / truncate / write directly to the file (on tmpfs or ext4, whose
// page cache is shared with the mappings, so no notify is needed) and answers like PROTOCOL.md.
// Punch and zero write zeros (same content semantics as a hole). Usage:
//   node mock-ctl.mjs SOCKET ROOT      (ROOT: the directory that request paths are relative to)
// Prints "ready" when listening. Options: --fail-punch-rate R answers ok but skips that share
// of punches (a buggy daemon, for the self-test).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

const [sock, root, ...rest] = process.argv.slice(2);
if (!sock || !root) {
  console.error('usage: node mock-ctl.mjs SOCKET ROOT [--fail-punch-rate R]');
  process.exit(2);
}
let failRate = 0;
for (let i = 0; i < rest.length; i++) if (rest[i] === '--fail-punch-rate') failRate = Number(rest[++i]);
const stats = { punch: 0, zero: 0, truncate: 0, write: 0, skipped: 0 };

function resolve(p) {
  const rel = String(p).replace(/^\/+/, '');
  const full = path.resolve(root, rel);
  if (!full.startsWith(path.resolve(root) + path.sep)) throw Object.assign(new Error('path escapes root'), { code: 'EINVAL' });
  return full;
}

async function zeroRange(file, offset, length) {
  const fh = await fs.promises.open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const end = Math.min(size, offset + length);
    if (end > offset) await fh.write(Buffer.alloc(end - offset), 0, end - offset, offset);
  } finally {
    await fh.close();
  }
}

async function handle(req) {
  switch (req.cmd) {
    case 'status':
      return { mountpoint: root, pid: process.pid, version: 'mock', options: {}, bugs: [], delays: {}, init: {} };
    case 'stats':
      return { stats };
    case 'punch':
    case 'zero': {
      stats[req.cmd]++;
      if (req.cmd === 'punch' && failRate > 0 && Math.random() < failRate) {
        stats.skipped++;
        return { notify: { sent: true, rc: 0 } };
      }
      await zeroRange(resolve(req.path), req.offset, req.length);
      return { notify: { sent: true, rc: 0, offset: req.offset, length: req.length } };
    }
    case 'truncate':
      stats.truncate++;
      await fs.promises.truncate(resolve(req.path), req.size);
      return { size: req.size, notify: { sent: true, rc: 0 } };
    case 'write': {
      stats.write++;
      const data = Buffer.from(req.data, 'base64');
      const fh = await fs.promises.open(resolve(req.path), 'r+');
      try {
        await fh.write(data, 0, data.length, req.offset);
      } finally {
        await fh.close();
      }
      return { notify: { sent: true, rc: 0 } };
    }
    default:
      throw Object.assign(new Error(`unknown command ${req.cmd}`), { code: 'EINVAL' });
  }
}

try { fs.unlinkSync(sock); } catch {}
const server = net.createServer((c) => {
  const rl = readline.createInterface({ input: c, crlfDelay: Infinity });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      let req;
      try {
        req = JSON.parse(line);
      } catch (e) {
        c.write(JSON.stringify({ id: null, ok: false, error: 'malformed' }) + '\n');
        return;
      }
      try {
        const res = await handle(req);
        c.write(JSON.stringify({ id: req.id, ok: true, ...res }) + '\n');
      } catch (e) {
        c.write(JSON.stringify({ id: req.id, ok: false, error: String(e.message), errno: e.code }) + '\n');
      }
    });
  });
  c.on('error', () => {});
});
server.listen(sock, () => console.log('ready'));
process.on('SIGTERM', () => { server.close(); try { fs.unlinkSync(sock); } catch {} process.exit(0); });
