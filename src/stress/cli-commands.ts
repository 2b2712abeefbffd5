// The `stress` and `validate` commands of the faultline CLI. src/cli.ts calls
// registerStressCommands(program) once.

import { Command, Option } from 'commander';
import { mountOptionList, toMountOptions } from '../daemon/options.js';
import { SCENARIOS } from './scenarios.js';

function fail(e: unknown, code = 2): never {
  process.stderr.write(`faultline: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(code);
}

function positiveSeconds(what: string) {
  return (v: string): number => {
    const n = parseDuration(v);
    if (!(n > 0)) throw new Error(`${what} must be a positive duration (e.g. 10, 2.5, 90s, 5m, 1h), got "${v}"`);
    return n;
  };
}

/** "10" / "10s" / "5m" / "1h" / "1h30m" → seconds. NaN when malformed. */
export function parseDuration(v: string): number {
  const t = v.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)(h|m|s)/g;
  let total = 0;
  let used = 0;
  for (const m of t.matchAll(re)) {
    total += Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
    used += m[0].length;
  }
  return used === t.length && used > 0 ? total : NaN;
}

function seedArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--seed must be a non-negative integer, got "${v}"`);
  return n;
}

const SCENARIO_HELP = () => '\nscenarios:\n' + SCENARIOS.map((s) => `  ${s.name.padEnd(26)} ${s.description}`).join('\n') + '\n';

export function registerStressCommands(program: Command): void {
  // ---- stress ---------------------------------------------------------------------------------
  const stress = program
    .command('stress')
    .description('run C stress programs (scenario presets) against a fresh faultline mount, or any directory with --target; exit 0 clean, 1 violations, 2 set-up error / vacuous')
    .argument('[scenarios...]', 'scenario presets to run, one after the other (default: page-aligned)')
    .option('-t, --target <dir>', 'run in this directory (tmpfs, ext4, an existing mount) instead of a fresh faultline mount')
    .addOption(new Option('-d, --duration <sec>', 'run time of each scenario (e.g. 20, 90s, 5m)').argParser(positiveSeconds('--duration')).default(10))
    .addOption(new Option('--seed <n>', 'seed of the stress programs (scenario i gets seed+i) and of the daemon\'s fault RNG (default: time-based)').argParser(seedArg))
    .option('-j, --json <file>', 'write all runs (with each program\'s key numbers, timeline and the daemon witness) to one JSON file')
    .option('--args <args>', 'extra arguments for the C program, appended to the preset\'s (e.g. "--mappers 2 --churn 1")')
    .option('--list', 'list the scenario presets and exit')
    .option('-q, --quiet', 'only the summary table')
    .option('--keep-reports', 'keep the per-program JSON reports in a temp directory');
  for (const o of mountOptionList()) if (o.long !== '--seed') stress.addOption(o.hideHelp(false));
  stress.addHelpText('after', SCENARIO_HELP());
  stress.action(async (names: string[], opts: Record<string, unknown>) => {
    if (opts.list) {
      process.stdout.write(SCENARIO_HELP().trimStart());
      return;
    }
    const { runStress } = await import('./stress.js');
    const { findScenario } = await import('./scenarios.js');
    try {
      for (const n of names) findScenario(n);
    } catch (e) {
      fail(e);
    }
    const seed = (opts.seed as number | undefined) ?? Math.floor(Date.now() / 1000) % 1_000_000;
    const mount = { ...toMountOptions(opts), seed };
    try {
      const res = await runStress({
        scenarios: names.length ? names : ['page-aligned'],
        target: opts.target as string | undefined,
        mount,
        duration: opts.duration as number,
        seed,
        json: opts.json as string | undefined,
        extraArgs: typeof opts.args === 'string' ? (opts.args as string).split(/\s+/).filter(Boolean) : [],
        quiet: Boolean(opts.quiet),
        keepReports: Boolean(opts.keepReports),
      });
      process.exitCode = res.exitCode;
    } catch (e) {
      fail(e);
    }
  });

  // ---- validate -------------------------------------------------------------------------------
  program
    .command('validate')
    .description('the coherency matrix: negative controls (tmpfs, ext4, faultline correct under every cache configuration), positive controls (each bug mode must be DETECTED) and the kernel findings (REPRODUCED / NOT REPRODUCED); --save / --baseline for fix validation; writes report.json and report.html')
    .option('--quick', 'short durations (1-5 s per row): the whole matrix in about 75 s; default: 5-30 s per row, about 7 minutes')
    .addOption(new Option('--soak <duration>', 'long runs: the whole matrix takes about DURATION (e.g. 1h), split over the rows like the default durations (with --only, fewer rows take proportionally less)').argParser(positiveSeconds('--soak')))
    .addOption(new Option('-d, --duration <sec>', 'override the duration of every row').argParser(positiveSeconds('--duration')))
    .option('--only <rows>', 'run only these rows: comma-separated row ids, prefixes (e.g. "neg-", "bug-") or groups (negative, positive, kernel)')
    .option('--list', 'list the matrix rows and exit')
    .addOption(new Option('--seed <n>', 'base seed (row i gets seed+i; default: time-based)').argParser(seedArg))
    .option('--save <file>', 'write the results (the report JSON) to FILE, for a later --baseline')
    .option('--baseline <file>', 'compare with a saved run: per row FIXED / REGRESSED / UNCHANGED / NEW; exit non-zero on a regression')
    .option('--report <dir>', 'where report.json and report.html go (default ./reports/<timestamp>)')
    .option('--no-report', 'write no report directory')
    .option('--tmpfs-dir <dir>', 'the tmpfs negative control directory', '/dev/shm')
    .option('--disk-dir <dir>', 'the local-disk negative control directory', '/var/tmp')
    .action(async (opts: Record<string, unknown>) => {
      const { runValidate } = await import('./validate.js');
      try {
        const code = await runValidate({
          profile: opts.soak ? 'soak' : opts.quick ? 'quick' : 'default',
          soakS: opts.soak as number | undefined,
          duration: opts.duration as number | undefined,
          only: opts.only as string | undefined,
          list: Boolean(opts.list),
          seed: (opts.seed as number | undefined) ?? Math.floor(Date.now() / 1000) % 1_000_000,
          save: opts.save as string | undefined,
          baseline: opts.baseline as string | undefined,
          reportDir: opts.report === false ? null : ((opts.report as string | undefined) ?? undefined),
          tmpfsDir: opts.tmpfsDir as string,
          diskDir: opts.diskDir as string,
        });
        process.exitCode = code;
      } catch (e) {
        fail(e);
      }
    });
}
