/** Pure parts of the emulated testbed: QEMU argv, GRUB kernel entries, native result parsing; the native program run for real. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { grubKernels } from '../../src/testbeds/emulated/image.ts';
import { qemuArgv } from '../../src/testbeds/emulated/qemu.ts';
import { buildNativeWorkloads, nativeArgv, parseHogSteps, parseNativeResult } from '../../src/workloads/native/index.ts';
import { describeWith } from '../support/components.ts';

describe('qemuArgv', () => {
  it('two NUMA nodes with their own RAM backends and CPUs, loopback-only SSH forward, no -no-reboot', () => {
    const argv = qemuArgv({ disk: '/d.qcow2', shape: { nodes: 2, cpusPerNode: 2, memoryMiBPerNode: 512 }, sshPort: 2222, qmpSocket: '/q.sock', consoleLog: '/c.log', accel: 'tcg' });
    const s = argv.join(' ');
    expect(s).toContain('-smp 4 -m 1024M');
    expect(s).toContain('-object memory-backend-ram,id=m0,size=512M -numa node,nodeid=0,cpus=0-1,memdev=m0');
    expect(s).toContain('-object memory-backend-ram,id=m1,size=512M -numa node,nodeid=1,cpus=2-3,memdev=m1');
    expect(s).toContain('hostfwd=tcp:127.0.0.1:2222-:22');
    expect(s).toContain('-serial file:/c.log');
    expect(s).toContain('accel=tcg');
    expect(s).toContain('mem-merge=off');
    expect(s).toContain('qemu64,-cx16');
    expect(argv).not.toContain('-no-reboot');
  });
});

describe('grubKernels', () => {
  const cfg = `menuentry 'Debian GNU/Linux, with Linux 6.12.95+deb12-cloud-amd64' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-6.12.95+deb12-cloud-amd64-advanced-88b6' {
}
menuentry 'Debian GNU/Linux, with Linux 6.12.95+deb12-cloud-amd64 (recovery mode)' --class debian $menuentry_id_option 'gnulinux-6.12.95+deb12-cloud-amd64-recovery-88b6' {
}
menuentry 'Debian GNU/Linux, with Linux 6.1.0-50-cloud-amd64' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-6.1.0-50-cloud-amd64-advanced-88b6' {
}`;
  it('lists each kernel once with its GRUB id, recovery entries left out', () => {
    expect(grubKernels(cfg, true)).toEqual([
      { release: '6.12.95+deb12-cloud-amd64', bootEntry: 'gnulinux-6.12.95+deb12-cloud-amd64-advanced-88b6', suite: 'bookworm-backports' },
      { release: '6.1.0-50-cloud-amd64', bootEntry: 'gnulinux-6.1.0-50-cloud-amd64-advanced-88b6', suite: 'bookworm' },
    ]);
  });
});

describe('native result parsing', () => {
  it('parses the result line and hog steps', () => {
    const out = 'NUKSM_READY workload=btree pid=7\nNUKSM_RESULT workload=btree runtime_s=0.015329 checksum=0000000402eb6bf0 footprint_mib=8 node=1 pid=7\n';
    expect(parseNativeResult(out)).toEqual({ workload: 'btree', runtimeS: 0.015329, checksum: '0000000402eb6bf0', footprintMiB: 8, node: 1, pid: 7 });
    expect(parseHogSteps('NUKSM_HOG t_s=0.002 registered_mib=4\nNUKSM_HOG t_s=4.1 registered_mib=8\n')).toEqual([
      { tS: 0.002, registeredMiB: 4 },
      { tS: 4.1, registeredMiB: 8 },
    ]);
  });
  it('rejects missing, duplicated or malformed result lines', () => {
    expect(() => parseNativeResult('NUKSM_READY workload=cg pid=1\n')).toThrow(/found 0/);
    const line = 'NUKSM_RESULT workload=cg runtime_s=1 checksum=0000000000000001 footprint_mib=8 node=0 pid=1\n';
    expect(() => parseNativeResult(line + line)).toThrow(/found 2/);
    expect(() => parseNativeResult(line.replace('runtime_s=1', 'runtime_s=x'))).toThrow(/runtime_s/);
    expect(() => parseNativeResult(line.replace('workload=cg', 'workload=mysql'))).toThrow(/unknown workload/);
  });
});

describeWith(['gcc'], 'nuksm-native, compiled and run on this machine', () => {
  it('gives the same checksum for identical instances and a different one for another seed; every kernel runs', async () => {
    const bin = await buildNativeWorkloads(mkdtempSync(join(tmpdir(), 'nuksm-native-')));
    const run = (a: Parameters<typeof nativeArgv>[1]) => {
      const [cmd, ...args] = nativeArgv(bin, a);
      return execFileSync(cmd!, args, { encoding: 'utf8', timeout: 60_000 });
    };
    for (const workload of ['randomaccess', 'btree', 'cg', 'xsbench'] as const) {
      const a = parseNativeResult(run({ workload, footprintMiB: 4, iterations: 1, merge: 'madvise' }));
      const b = parseNativeResult(run({ workload, footprintMiB: 4, iterations: 1, merge: 'madvise' }));
      const c = parseNativeResult(run({ workload, footprintMiB: 4, iterations: 1, merge: 'madvise', seed: 7 }));
      expect(a.checksum, workload).toBe(b.checksum);
      expect(c.checksum, workload).not.toBe(a.checksum);
      expect(a.runtimeS).toBeGreaterThan(0);
    }
    const hog = parseHogSteps(run({ workload: 'memhog', stepMiB: 2, maxMiB: 6, periodS: 0.05, merge: 'madvise' }));
    expect(hog.map((h) => h.registeredMiB)).toEqual([2, 4, 6]);
  });
});
