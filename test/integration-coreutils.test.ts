// The same coreutils / util-linux script on ext4 and on a faultline mount must print the same
// thing: sizes, block counts, holes, types, link counts, modes and content checksums after dd,
// fallocate (allocate, punch, zero), truncate, cp, mv, ln, rm, mkdir, chmod, ls -l and stat.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMount, type MountHandle } from '../src/stress/mount.js';
import { fuseAvailable, run } from './helpers/run.js';

const FUSE = fuseAvailable();

// Runs in the directory given as $1; prints one line per observation. Times and inode numbers are
// left out (they differ by nature); everything else must match ext4.
const SCRIPT = String.raw`
set -e
cd "$1"
st() { stat -c '%n size=%s blocks=%b type=%F links=%h mode=%a' "$@"; }
dd if=/dev/zero of=a bs=64k count=16 status=none
st a
fallocate -p -o 4096 -l 8192 a;            st a
fallocate -z -o 65536 -l 100 a;            st a
fallocate -o 2097152 -l 65536 a;           st a
fallocate -n -o 4194304 -l 8192 a;         st a
truncate -s 100000 a;                      st a
truncate -s 300k a;                        st a
sha256sum a
printf 'hello\n' > b; cp a c;              st b c; cmp a c && echo same
mv c d; ls; ln d e; st d
ln -s d f; readlink f; st e
mkdir -p x/y; mv b x/y/; ls -R x | tr '\n' ' '; echo
chmod 640 x/y/b; st x/y/b x
ls -l x/y | awk 'NR>1 {print $1, $2, $5, $9}'
rm d e f; rm -r x; ls | tr '\n' ' '; echo
python3 -c "import os,sys; fd=os.open('a', os.O_RDONLY); print('hole at', os.lseek(fd, 0, os.SEEK_HOLE), 'data at', os.lseek(fd, 4096, os.SEEK_DATA))"
dd if=a bs=4k skip=1 count=2 status=none | tr -d '\000' | wc -c
`;

describe.skipIf(!FUSE)('coreutils on faultline behave as on ext4', () => {
  let m: MountHandle;
  let ext4: string;
  beforeAll(async () => {
    m = await startMount();
    ext4 = await mkdtemp(join(tmpdir(), 'fl-ext4-'));
  });
  afterAll(async () => {
    await m?.stop();
    if (ext4) await rm(ext4, { recursive: true, force: true });
  });

  it('prints the same on both', async () => {
    const fstype = await run('stat', ['-f', '-c', '%T', ext4]);
    expect(fstype.stdout.trim()).toBe('ext2/ext3'); // stat -f names ext4 this way
    expect((await stat(ext4)).isDirectory()).toBe(true);
    const onExt4 = await run('bash', ['-c', SCRIPT, 'script', ext4]);
    expect(onExt4.code, onExt4.stderr).toBe(0);
    const onFl = await run('bash', ['-c', SCRIPT, 'script', m.mountpoint]);
    expect(onFl.code, onFl.stderr).toBe(0);
    expect(onFl.stdout.split('\n')).toEqual(onExt4.stdout.split('\n'));
    expect(onFl.stdout).toMatch(/hole at 4096 data at 12288/);
  });
});
