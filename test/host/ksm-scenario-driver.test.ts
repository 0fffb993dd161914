// The scenario driver's target checks (src/host/ksm/scenario-driver) and the physical testbed's
// recordKsmTrace, on a scripted executor: each refusal names what is missing, and nothing is written
// or run on the target before the checks pass.
import { describe, expect, it } from 'vitest';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { SCENARIO_DRIVER_SOURCE } from '../../src/host/ksm/scenario-driver/index.ts';
import { existsSync } from 'node:fs';
import { PhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import type { KsmScenario } from '../../src/policy/scenario.ts';
import { FakeExecutor } from './fake-executor.ts';

const ARCH = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
const SCENARIO: KsmScenario = { name: 's', family: 0, knobs: { pages_to_scan: 4, merge_across_nodes: 1, max_page_sharing: 256, smart_scan: 0 }, procs: [{ node: 0, contents: [1, 1] }], initial: [0], events: [], endPass: 1 };
const FILE = {
  file: 'host.yaml',
  name: 'host',
  kind: 'physical',
  host: { kind: 'local' },
  nodes: [{ id: 0, cpus: [0], memoryGiB: 1 }],
  kernels: { running: { bootEntry: 'x', release: '6.12.1', ksmKnobs: {} } },
  modes: {},
  perfEventSet: 'none',
  guests: null,
  libvirtUri: 'qemu:///system',
  timeouts: { bootS: 60, sshConnectS: 10, commandS: 60, vmStartS: 60, vmShutdownS: 30 },
  resume: 'none',
  emulated: null,
} as TestbedFile;

/** A target answering the probe with `probe` lines, `mergeable` for the smaps scan, uname -r 6.12.1. */
function target(probe: string[], mergeable = ''): FakeExecutor {
  return new FakeExecutor((argv) => {
    const cmd = argv.join(' ');
    if (cmd === 'uname -r') return { stdout: '6.12.1\n' };
    if (cmd.includes('echo "uid')) return { stdout: `${probe.join('\n')}\n` };
    if (cmd.includes('/smaps')) return { stdout: mergeable };
    throw new Error(`unexpected command before the checks passed: ${cmd}`);
  });
}

const OK = ['uid 0', 'ksm-writable', 'kpageflags', `arch ${ARCH}`];
const refusals: Array<[string, FakeExecutor, RegExp]> = [
  ['not root', target(['uid 1000', 'ksm-writable', 'kpageflags', `arch ${ARCH}`]), /on fake needs root .* runs as uid 1000/],
  ['no KSM', target(['uid 0', 'ksm-missing', 'kpageflags', `arch ${ARCH}`]), /KSM is not available on fake: .*CONFIG_KSM/],
  ['KSM read-only', target(['uid 0', 'ksm-readonly', 'kpageflags', `arch ${ARCH}`]), /KSM is not writable on fake/],
  ['no kpageflags', target(['uid 0', 'ksm-writable', 'no-kpageflags', `arch ${ARCH}`]), /kpageflags or \/proc\/kpagecount is not readable on fake/],
  ['another architecture', target(['uid 0', 'ksm-writable', 'kpageflags', 'arch riscv64']), /fake is riscv64, the driver is built here for/],
  ['another process with mergeable memory', target(OK, '4242 qemu-system-x86\n'), /process\(es\) 4242 qemu-system-x86 have KSM-mergeable memory/],
];

describe('trace record on a physical testbed: the target is checked first', () => {
  it('finds the C source beside its module', () => {
    expect(SCENARIO_DRIVER_SOURCE).toMatch(/src\/host\/ksm\/scenario-driver\/ksm-scenario\.c$/);
    expect(existsSync(SCENARIO_DRIVER_SOURCE)).toBe(true);
  });

  for (const [what, exec, message] of refusals) {
    it(`refuses ${what}, having written nothing`, async () => {
      const tb = new PhysicalTestbed(FILE, exec);
      await expect(tb.recordKsmTrace(SCENARIO, {})).rejects.toThrow(message);
      expect(exec.writes).toEqual([]);
      expect(exec.calls.some((c) => c.join(' ').includes('> /sys'))).toBe(false);
    });
  }

  it('refuses a --kernel that is not the running one (no reboot), before touching the host', async () => {
    const exec = target(OK);
    const tb = new PhysicalTestbed({ ...FILE, kernels: { ...FILE.kernels, other: { bootEntry: 'y', release: '6.1.0-13-amd64', ksmKnobs: {} } } }, exec);
    await expect(tb.recordKsmTrace(SCENARIO, { kernel: 'other' })).rejects.toThrow(/fake runs 6\.12\.1, not kernel 'other' \(6\.1\.0-13-amd64\) of host\.yaml: boot into it first/);
    expect(exec.calls).toEqual([['uname', '-r']]);
  });
});
