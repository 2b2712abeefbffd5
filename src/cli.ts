#!/usr/bin/env node
// faultline: mount a FUSE test filesystem, inject faults, run mmap-vs-punch stress programs,
// validate coherency fixes against a baseline, and benchmark. Every command's --help says more.

import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { mountOptionList, parseSize, toMountOptions } from './daemon/options.js';
import { VERSION } from './version.js';
import { registerStressCommands } from './stress/cli-commands.js';

class UsageError extends Error {}

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`faultline: error: ${msg}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
}

function run(p: Promise<unknown>): void {
  p.catch(fail);
}

const program = new Command();
program
  .name('faultline')
  .description('A FUSE test bench for races between page faults and hole punching / truncate')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');

// ---- mount ------------------------------------------------------------------------------------

const mountCmd = program
  .command('mount')
  .description('mount a faultline filesystem on MOUNTPOINT and serve it in the foreground; Ctrl-C (SIGINT) or SIGTERM unmounts')
  .argument('<mountpoint>', 'an existing empty directory');
for (const o of mountOptionList()) mountCmd.addOption(o);
mountCmd.action((mountpoint: string, opts: Record<string, unknown>) =>
  run(
    (async () => {
      const options = toMountOptions(opts);
      const { startDaemon } = await import('./daemon/daemon.js');
      let daemon;
      try {
        daemon = await startDaemon(mountpoint, options);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        if (++signals > 1) {
          process.stderr.write(`faultline: second ${sig}: exiting without a clean unmount (auto_unmount removes the mount)\n`);
          process.exit(1);
        }
        void daemon.stop().then(
          () => process.exit(0),
          (e: unknown) => fail(e),
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
    })(),
  ),
);

// ---- unmount ----------------------------------------------------------------------------------

program
  .command('unmount')
  .alias('umount')
  .description('unmount a faultline mount (the daemon then exits)')
  .argument('<mountpoint>')
  .option('-l, --lazy', 'lazy unmount (for a dead or busy mount)')
  .action((mountpoint: string, opts: { lazy?: boolean }) =>
    run(
      (async () => {
        const { readMountInfo } = await import('./fuse/preflight.js');
        let real = mountpoint;
        try {
          real = await realpath(mountpoint);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOTCONN') throw new UsageError(`cannot resolve ${mountpoint}: ${(e as Error).message}`);
        }
        const m = (await readMountInfo()).find((l) => l.mountPoint === real);
        if (!m) throw new UsageError(`${real} is not mounted`);
        if (!m.fstype.startsWith('fuse')) throw new UsageError(`${real} is a ${m.fstype} mount, not a FUSE mount: use umount`);
        const asRoot = process.getuid?.() === 0;
        const [cmd, args] = asRoot ? ['umount', opts.lazy ? ['-l', real] : [real]] : ['fusermount3', opts.lazy ? ['-u', '-z', real] : ['-u', real]];
        await new Promise<void>((resolve, reject) => {
          const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'pipe'], cwd: '/' });
          let err = '';
          p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
          p.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.trim() || `exit ${code}`}${/busy/i.test(err) ? ' (a process uses the mount: close it, or use --lazy)' : ''}`))));
        });
        process.stdout.write(`faultline: unmounted ${real}\n`);
      })(),
    ),
  );

// ---- ctl --------------------------------------------------------------------------------------

async function ctl(mountpoint: string, cmd: string, args: Record<string, unknown>): Promise<void> {
  const { ControlClient } = await import('./control/client.js');
  let client;
  try {
    client = await ControlClient.forMount(mountpoint);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  try {
    const res = await client.request(cmd, args);
    delete res.id;
    delete res.ok;
    process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  } catch (e) {
    const errno = (e as { errno?: string }).errno;
    throw new Error(`${cmd}: ${(e as Error).message}${errno && !(e as Error).message.startsWith(errno) ? ` (${errno})` : ''}`);
  } finally {
    client.close();
  }
}

const num = (what: string) => (v: string) => {
  const n = parseSize(v, what);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${what} must be a non-negative integer with an optional K/M/G suffix, got "${v}"`);
  return n;
};

const CTL_HELP = `
commands:
  status                               mount options, bugs and delays, what INIT negotiated
  stats                                per-op counts and latency percentiles, cache, lock waits,
                                       notifies, watchdog EIOs, witness
  set <knob> <value>                   bug.<mode> on|off|on@PROB, delay.<point> MS[@PROB]|off, seed N
  punch <file> <offset> <length>       server-side hole punch, then notify_inval_inode
  zero <file> <offset> <length>        server-side zero range (size unchanged), then notify
  truncate <file> <size>               server-side truncate, then notify
  write <file> <offset> <data>         server-side write of DATA (text; or base64:..., or fill:BYTE:LEN)
  evict-kernel-cache <file> [off len]  notify_inval_inode only (whole file without a range)
  trace on [file] | trace off          JSON-lines request trace
<file> is a path inside the mount (absolute, or relative to the mount root). Sizes take K/M/G.`;

program
  .command('ctl')
  .description('talk to the daemon serving a mount through its control socket (prints JSON)')
  .argument('<mountpoint>')
  .argument('<command>', 'see below')
  .argument('[args...]')
  .addHelpText('after', CTL_HELP)
  .action((mountpoint: string, cmd: string, args: string[]) =>
    run(
      (async () => {
        const need = (n: number, usage: string) => {
          if (args.length < n) throw new UsageError(`usage: faultline ctl MOUNTPOINT ${cmd} ${usage}`);
        };
        const n = (i: number, what: string) => num(what)(args[i]!);
        switch (cmd) {
          case 'status':
          case 'stats':
            return ctl(mountpoint, cmd, {});
          case 'set':
            need(2, '<knob> <value>');
            return ctl(mountpoint, 'set', { knob: args[0], value: args[1] });
          case 'punch':
          case 'zero':
            need(3, '<file> <offset> <length>');
            return ctl(mountpoint, cmd, { path: args[0], offset: n(1, 'offset'), length: n(2, 'length') });
          case 'truncate':
            need(2, '<file> <size>');
            return ctl(mountpoint, cmd, { path: args[0], size: n(1, 'size') });
          case 'write': {
            need(3, '<file> <offset> <data>   (data: text, base64:B64, or fill:BYTE:LENGTH)');
            const d = args.slice(2).join(' ');
            let data: Buffer;
            const fill = /^fill:(\d+):(\S+)$/.exec(d);
            if (fill) {
              const b = Number(fill[1]);
              if (b > 255) throw new UsageError(`fill byte must be 0-255, got ${b}`);
              data = Buffer.alloc(num('fill length')(fill[2]!), b);
            } else if (d.startsWith('base64:')) data = Buffer.from(d.slice(7), 'base64');
            else data = Buffer.from(d, 'utf8');
            return ctl(mountpoint, 'write', { path: args[0], offset: n(1, 'offset'), data: data.toString('base64') });
          }
          case 'evict-kernel-cache':
            need(1, '<file> [offset length]');
            return ctl(mountpoint, cmd, args.length >= 3 ? { path: args[0], offset: n(1, 'offset'), length: n(2, 'length') } : { path: args[0] });
          case 'trace':
            if (args[0] !== 'on' && args[0] !== 'off') throw new UsageError('usage: faultline ctl MOUNTPOINT trace on [FILE] | trace off');
            return ctl(mountpoint, 'trace', { on: args[0] === 'on', file: args[1] });
          default:
            throw new UsageError(`unknown ctl command "${cmd}"; run faultline ctl --help for the list`);
        }
      })(),
    ),
  );

// ---- demo -------------------------------------------------------------------------------------

program
  .command('demo')
  .description('mount faultline in a temp dir, run the punch_seq smoke and a short mmap_punch stress against it, unmount')
  .option('-d, --duration <sec>', 'mmap_punch duration', '5')
  .action((o: { duration: string }) =>
    run(
      (async () => {
        const { demo } = await import('./stress/demo.js');
        process.exitCode = await demo(Number(o.duration));
      })(),
    ),
  );

// ---- bench ------------------------------------------------------------------------------------

program
  .command('bench')
  .description('performance side by side: tmpfs, a C libfuse3 low-level server, fuse-native (libfuse 2), faultline (with and without its page cache); interleaved rounds, medians, ratios against the C server')
  .option('--smoke', 'every workload for about a second per peer, one round (proves the bench works; no thresholds)')
  .option('--rounds <n>', 'interleaved rounds', (v) => num('rounds')(v))
  .option('--seconds <s>', 'seconds per workload, peer and round', (v) => Number(v))
  .option('--size <bytes>', 'bench file size (e.g. 256M)', (v) => num('size')(v))
  .option('--workloads <list>', 'comma-separated: randread,seqread,seqwrite,punch,mapfault,mapfault-random,meta', (v) => v.split(','))
  .option('--peers <list>', 'comma-separated peer names (default: all available)', (v) => v.split(','))
  .option('--no-faultline', 'leave faultline out (peers only)')
  .option('--rotate', 'rotate the peer order every round')
  .option('--noise-floor', 'add a second copy of the C server: the spread between the two is the noise floor')
  .option('--readahead-kb <n>', 'set read_ahead_kb on every FUSE mount', (v) => num('readahead-kb')(v))
  .option('--no-hold-latency', 'do not hold /dev/cpu_dma_latency at 0 during the run')
  .option('--out <dir>', 'write bench.json, bench.txt and bench.svg to DIR', 'reports/bench')
  .option('--json', 'print the result JSON instead of the table')
  .action((o: Record<string, unknown>) =>
    run(
      (async () => {
        const { runBench, formatBenchTable, writeBenchReports } = await import('./stress/bench.js');
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const result = await runBench({
          smoke: Boolean(o.smoke),
          rounds: o.rounds as number | undefined,
          seconds: o.seconds as number | undefined,
          fileSize: o.size as number | undefined,
          workloads: o.workloads as never,
          peers: o.peers as string[] | undefined,
          faultline: o.faultline !== false,
          order: o.rotate ? 'rotate' : 'fixed',
          noiseFloor: Boolean(o.noiseFloor),
          readaheadKb: o.readaheadKb as number | undefined,
          holdCpuDmaLatency: o.holdLatency !== false,
          signal: ac.signal,
          log: process.stderr.isTTY ? (l: string) => process.stderr.write(`bench: ${l}\n`) : undefined,
        });
        const dir = String(o.out);
        await writeBenchReports(result, dir);
        process.stdout.write(o.json ? JSON.stringify(result, null, 2) + '\n' : formatBenchTable(result));
        process.stderr.write(`faultline: bench reports in ${dir}/ (bench.json, bench.txt, bench.svg)\n`);
      })(),
    ),
  );

// ---- bugs -------------------------------------------------------------------------------------

program
  .command('bugs')
  .description('list the deliberate bug modes and the delay points')
  .action(() =>
    run(
      (async () => {
        const { BUG_MODES, DELAY_POINTS, describeBug } = (await import('./faults/index.js')) as typeof import('./faults/index.js') & { describeBug?: (m: string) => string };
        process.stdout.write('bug modes (--bug MODE, or at runtime: faultline ctl MNT set bug.MODE on):\n');
        for (const m of BUG_MODES) process.stdout.write(`  ${m}${describeBug ? `  ${describeBug(m)}` : ''}\n`);
        process.stdout.write('\ndelay points (--delay POINT=MS[@PROB], or: faultline ctl MNT set delay.POINT MS[@PROB]):\n');
        for (const p of DELAY_POINTS) process.stdout.write(`  ${p}\n`);
      })(),
    ),
  );

registerStressCommands(program);
program.addOption(new Option('--no-color').hideHelp());
program.parseAsync(process.argv).catch(fail);
