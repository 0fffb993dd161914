import { homedir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { KernelControl } from '../../src/host/kernel/index.ts';
import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../src/core/scenario.ts';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { findGrubEntry, parseGrubMenu } from '../../src/testbeds/physical/grub.ts';
import { PhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import { expandHome } from '../../src/testbeds/physical/host.ts';
import { FakeExecutor } from '../host/fake-executor.ts';
import { wrapPhase } from '../../src/testbeds/step/process-launcher.ts';
import { ksmKnobsFor } from '../../src/testbeds/physical/knobs.ts';
import { registeredBytes } from '../../src/testbeds/physical/memhog.ts';
import { hasConverged, waitForMerge } from '../../src/host/ksm/merge-wait.ts';
import { compareNodes } from '../../src/testbeds/physical/topology.ts';

// Shape of an Ubuntu 16.04 grub.cfg with the artifact's kernels in the "Advanced options" submenu.
const GRUB_CFG = `
set default="0"
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
menuentry 'Ubuntu' --class ubuntu --class gnu-linux $menuentry_id_option 'gnulinux-simple-1234' {
	linux	/boot/vmlinuz-5.4.0 root=UUID=1234 ro
}
submenu 'Advanced options for Ubuntu' $menuentry_id_option 'gnulinux-advanced-1234' {
	menuentry 'Ubuntu, with Linux 5.4.0nuKSMSingleTree+' --class ubuntu $menuentry_id_option 'gnulinux-5.4.0nuKSMSingleTree+-advanced-1234' {
		linux	/boot/vmlinuz-5.4.0nuKSMSingleTree+ root=UUID=1234 ro
	}
	menuentry "Ubuntu, with Linux 5.4.0 (recovery mode)" --class ubuntu {
		linux	/boot/vmlinuz-5.4.0 root=UUID=1234 ro single
	}
}
menuentry 'Memory test (memtest86+)' {
	linux16	/boot/memtest86+.bin
}
`;

describe('GRUB menu', () => {
  const entries = parseGrubMenu(GRUB_CFG);
  it('finds top-level and submenu entries with their ids', () => {
    expect(entries.map((e) => e.title)).toEqual(['Ubuntu', 'Ubuntu, with Linux 5.4.0nuKSMSingleTree+', 'Ubuntu, with Linux 5.4.0 (recovery mode)', 'Memory test (memtest86+)']);
    expect(entries[1].submenus).toEqual([{ title: 'Advanced options for Ubuntu', id: 'gnulinux-advanced-1234' }]);
    expect(entries[3].submenus).toEqual([]);
  });
  it('accepts the names grub-reboot accepts', () => {
    expect(findGrubEntry(entries, 'Ubuntu')?.id).toBe('gnulinux-simple-1234');
    expect(findGrubEntry(entries, 'gnulinux-simple-1234')?.title).toBe('Ubuntu');
    expect(findGrubEntry(entries, 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0nuKSMSingleTree+')).not.toBeNull();
    expect(findGrubEntry(entries, 'gnulinux-advanced-1234>gnulinux-5.4.0nuKSMSingleTree+-advanced-1234')).not.toBeNull();
    // A submenu entry is not reachable by its bare title.
    expect(findGrubEntry(entries, 'Ubuntu, with Linux 5.4.0nuKSMSingleTree+')).toBeNull();
    expect(findGrubEntry(entries, 'Ubuntu, with Linux 6.1')).toBeNull();
  });
});

describe('KSM knobs of a step', () => {
  const file = {
    file: 'tb.yaml',
    kernels: { nuksm: { bootEntry: 'x', release: '5.4.0nuKSMSingleTree+', ksmKnobs: { smart_ksm: '1' } } },
    modes: { 'nuksm-fair': { kernels: ['nuksm'], ksmKnobs: { smart_ksm_nodelist: '15' } } },
  } as unknown as TestbedFile;
  const scenario = {
    kernelMode: 'nuksm-fair',
    ksm: { run: true, pagesToScan: 1000, sleepMillisecs: 100, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: { use_zero_pages: '0' } },
  } as unknown as Scenario;
  it('layers scenario, kernel, mode and extra knobs (the artifact\'s nuKSM knobs)', () => {
    expect(ksmKnobsFor(scenario, file)).toEqual({
      pages_to_scan: '1000',
      sleep_millisecs: '100',
      merge_across_nodes: '1',
      max_page_sharing: '256',
      smart_ksm: '1',
      smart_ksm_nodelist: '15',
      use_zero_pages: '0',
      run: '1',
    });
  });
  it('rejects a mode the testbed does not configure', () => {
    expect(() => ksmKnobsFor({ ...scenario, kernelMode: 'uksm' }, file)).toThrowError(/tb\.yaml: modes\.uksm: kernel mode 'uksm' is not configured/);
  });
});

describe('merge convergence', () => {
  it('needs a full window of history and a change below epsilon', () => {
    expect(hasConverged([[0, 0]], 10, 1)).toBe(false);
    expect(hasConverged([[0, 100], [5, 5000]], 10, 1)).toBe(false); // window not covered yet
    expect(hasConverged([[0, 100], [5, 5000], [10, 9000], [20, 9050]], 10, 1)).toBe(true); // 0.56 % over the last 10 s
    expect(hasConverged([[0, 100], [10, 5000], [20, 9000]], 10, 1)).toBe(false);
    expect(hasConverged([[0, 0], [10, 0]], 10, 1)).toBe(true); // flat series
  });

  it('does not take the flat pages_sharing of the first passes for convergence', async () => {
    // Each read is one poll; full_scans advances every 3 polls; merging starts after the 2nd pass.
    let polls = 0;
    const series = [0, 0, 0, 0, 0, 0, 500, 900, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000];
    const read = async () => {
      const i = Math.min(polls++, series.length - 1);
      return { pagesSharing: series[i], fullScans: Math.floor(i / 3) };
    };
    const result = await waitForMerge({ kind: 'converged', maxS: 30, windowS: 0.4, epsilonPct: 1 }, read, { pollS: 0.2, ksmRunning: true });
    expect(result.converged).toBe(true);
    expect(result.pagesSharing).toBe(1000);
  });

  it('returns at once when KSM is off', async () => {
    const result = await waitForMerge({ kind: 'converged', maxS: 30, windowS: 10, epsilonPct: 1 }, async () => ({ pagesSharing: 0, fullScans: 0 }), { pollS: 1, ksmRunning: false });
    expect(result).toMatchObject({ converged: true, waitedS: 0 });
  });
});

describe('bare-metal instance commands', () => {
  const spec = { name: 'p0', kind: 'process' as const, node: 1, vcpus: 4, memoryMiB: 1024, nice: -20, template: null, startAtS: 0 };
  it('bind to the node, set nice, register with KSM, and tag the environment', () => {
    const argv = wrapPhase({ spec, marker: 'step/p0' }, { argv: ['./XSBench', '-t', '4'], env: { OMP_NUM_THREADS: '4' }, cwd: '/opt/x' });
    expect(argv.slice(0, 11)).toEqual(['env', '-C', '/opt/x', 'OMP_NUM_THREADS=4', 'NUKSM_INSTANCE=step/p0', 'nice', '-n', '-20', 'numactl', '--cpunodebind=1', '--membind=1']);
    expect(argv.slice(11, 13)).toEqual(['python3', '-c']);
    expect(argv[13]).toContain('prctl(67, 1');
    expect(argv.slice(14)).toEqual(['./XSBench', '-t', '4']);
  });
  it('skip the KSM-registering wrapper for a program that registers its memory itself', () => {
    const argv = wrapPhase({ spec, marker: 'step/p0' }, { argv: ['./nuksm-native'] }, { registersItself: true });
    expect(argv).toEqual(['env', 'NUKSM_INSTANCE=step/p0', 'nice', '-n', '-20', 'numactl', '--cpunodebind=1', '--membind=1', './nuksm-native']);
  });
  it('leave VM commands unbound (libvirt pins the guest)', () => {
    expect(wrapPhase({ spec: { ...spec, kind: 'vm' }, marker: 'm' }, { argv: ['true'] })).toEqual(['env', 'NUKSM_INSTANCE=m', 'true']);
  });
});

describe('misc', () => {
  it('reads the memory hog progress', () => {
    expect(registeredBytes('registered 0\nregistered 2147483648\nregistered 4294967296\n')).toBe(4294967296);
    expect(registeredBytes('')).toBe(0);
  });
  it('compares declared and actual nodes', () => {
    const actual = [{ id: 0, cpus: [0, 1], memoryGiB: 4.8 }];
    expect(compareNodes([{ id: 0, cpus: [0, 1], memoryGiB: 4 }], actual)).toEqual([]);
    expect(compareNodes([{ id: 0, cpus: [0, 1, 2], memoryGiB: 8 }, { id: 1, cpus: [3], memoryGiB: 1 }], actual)).toEqual([
      'node 0: CPUs 2 are not on this node (host: 0-1)',
      'node 0: file says 8 GiB, host node has 4.8 GiB',
      'node 1 is in the testbed file but the host has nodes 0',
    ]);
  });
});

describe('ensureKernel (scripted host)', () => {
  const file = {
    file: 'tb.yaml',
    kind: 'physical',
    host: { kind: 'local' },
    nodes: [],
    kernels: {
      v54: { bootEntry: 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0', release: '5.4.0', ksmKnobs: {} },
      nuksm: { bootEntry: 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0nuKSMSingleTree+', release: '5.4.0nuKSMSingleTree+', ksmKnobs: { smart_ksm: '1' } },
    },
    modes: { ksm: { kernels: ['v54', 'nuksm'], ksmKnobs: {} }, 'nuksm-fair': { kernels: ['nuksm'], ksmKnobs: {} } },
    timeouts: { bootS: 60, sshConnectS: 5, commandS: 30, vmStartS: 30, vmShutdownS: 30 },
  } as unknown as TestbedFile;
  const log = pino({ level: 'silent' });
  const host = (release: string, kernelLog = '[    0.000000] Linux version ok\n') =>
    new FakeExecutor((argv) => {
      if (argv[0] === 'sh' && argv[2]?.includes('uname -r')) return { stdout: `${release}\n0f3c1a52-9e1d-4c8b-a4e5-6b7f2c9d0e11\n` };
      if (argv[0] === 'journalctl') return { stdout: kernelLog };
      return {};
    });

  it('is ready without a reboot when the mode\'s kernel runs and its log is clean', async () => {
    const exec = host('5.4.0');
    const state = await new PhysicalTestbed(file, exec).ensureKernel('ksm', log);
    expect(state).toEqual({ status: 'ready', kernelRelease: '5.4.0' });
    expect(exec.calls.some((c) => c[0] === 'grub-reboot')).toBe(false);
  });

  it('selects the entry for the next boot only, reboots, and reports rebooting', async () => {
    const exec = host('5.4.0');
    const state = await new PhysicalTestbed(file, exec).ensureKernel('nuksm-fair', log);
    expect(state).toEqual({ status: 'rebooting', kernelRelease: '5.4.0' });
    const i = exec.calls.findIndex((c) => c[0] === 'grub-reboot');
    expect(exec.calls[i]).toEqual(['grub-reboot', 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0nuKSMSingleTree+']);
    expect(exec.calls.slice(i + 1).some((c) => c.join(' ') === 'systemctl reboot')).toBe(true);
  });

  it('fails with class boot when the right kernel came up with an oops', async () => {
    const exec = host('5.4.0nuKSMSingleTree+', '[   12.3] BUG: unable to handle page fault\n[   12.4] Oops: 0000 [#1] SMP\n');
    await expect(new PhysicalTestbed(file, exec).ensureKernel('nuksm-fair', log)).rejects.toMatchObject({ failureClass: 'boot' });
  });

  it('over SSH waits for the host to come back on the step\'s kernel and verifies it (no resume needed)', async () => {
    let release = '5.4.0';
    let bootId = '0f3c1a52-9e1d-4c8b-a4e5-6b7f2c9d0e11';
    const exec = new FakeExecutor((argv) => {
      if (argv[0] === 'sh' && argv[2]?.includes('uname -r')) return { stdout: `${release}\n${bootId}\n` };
      if (argv.join(' ') === 'systemctl reboot') {
        release = '5.4.0nuKSMSingleTree+';
        bootId = '7a1e0b2c-1111-4c8b-a4e5-6b7f2c9d0e11';
      }
      if (argv[0] === 'journalctl') return { stdout: '[    0.000000] Linux version ok\n' };
      return {};
    });
    const remote = { ...file, host: { kind: 'ssh', host: 'h', port: 22, user: 'u', identityFile: 'k', knownHostsFile: 'kh', pinHostKeyOnFirstUse: false } } as TestbedFile;
    const tb = new PhysicalTestbed(remote, exec);
    (tb as unknown as { kernel: KernelControl }).kernel = new KernelControl(exec, { pollMs: 1, downTimeoutMs: 1000, upTimeoutMs: 1000 });
    expect(await tb.ensureKernel('nuksm-fair', log)).toEqual({ status: 'ready', kernelRelease: '5.4.0nuKSMSingleTree+' });
    expect(exec.calls.find((c) => c[0] === 'grub-reboot')).toEqual(['grub-reboot', 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0nuKSMSingleTree+']);
  });

  it('rejects a mode the testbed does not configure', async () => {
    await expect(new PhysicalTestbed(file, host('5.4.0')).ensureKernel('uksm', log)).rejects.toThrowError(/modes\.uksm/);
  });

  it('boots the step\'s kernel when the mode has several (else the mode\'s first), and rejects a kernel not of the mode', async () => {
    const onV54 = host('5.4.0');
    expect(await new PhysicalTestbed(file, onV54).ensureKernel('ksm', log, 'nuksm')).toEqual({ status: 'rebooting', kernelRelease: '5.4.0' });
    expect(onV54.calls.find((c) => c[0] === 'grub-reboot')).toEqual(['grub-reboot', 'Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0nuKSMSingleTree+']);
    const onNuksm = new PhysicalTestbed(file, host('5.4.0nuKSMSingleTree+'));
    expect(await onNuksm.ensureKernel('ksm', log, 'nuksm')).toEqual({ status: 'ready', kernelRelease: '5.4.0nuKSMSingleTree+' });
    const first = host('5.4.0nuKSMSingleTree+');
    expect(await new PhysicalTestbed(file, first).ensureKernel('ksm', log)).toEqual({ status: 'rebooting', kernelRelease: '5.4.0nuKSMSingleTree+' }); // v54, the first
    await expect(new PhysicalTestbed(file, host('5.4.0')).ensureKernel('nuksm-fair', log, 'v54')).rejects.toThrowError(/modes\.nuksm-fair\.kernel: kernel 'v54' is not one of this mode's kernels/);
  });

  it('a step\'s KSM knobs are those of the kernel it runs on', () => {
    const scenario = { kernelMode: 'ksm', ksm: { run: true, pagesToScan: 100, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} } } as unknown as Scenario;
    expect(ksmKnobsFor(scenario, file, 'nuksm')).toMatchObject({ smart_ksm: '1' });
    expect(ksmKnobsFor(scenario, file, 'v54')).not.toHaveProperty('smart_ksm');
    expect(ksmKnobsFor(scenario, file)).not.toHaveProperty('smart_ksm');
  });
});

describe('testbed file paths', () => {
  it("expands '~/' in key and known_hosts paths", () => {
    expect(expandHome('~/.ssh/nuksm_host')).toBe(join(homedir(), '.ssh/nuksm_host'));
    expect(expandHome('/etc/ssh/key')).toBe('/etc/ssh/key');
    expect(expandHome('~other/x')).toBe('~other/x');
  });
});
