/** The physical testbed file for "this machine, as it runs now", shared by the physical-testbed system tests. */
import { execFileSync } from 'node:child_process';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';

export async function thisHostTestbedFile(overrides: Partial<TestbedFile> = {}): Promise<TestbedFile> {
  const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  return {
    file: 'this-host.test.yaml',
    name: 'this-host',
    kind: 'physical',
    host: { kind: 'local' },
    nodes: await readHostNodes(new LocalExecutor()),
    kernels: { running: { bootEntry: 'current', release, ksmKnobs: {} } },
    modes: { ksm: { kernels: ['running'], ksmKnobs: {} } },
    perfEventSet: 'none',
    guests: null,
    libvirtUri: 'qemu:///system',
    timeouts: { bootS: 120, sshConnectS: 10, commandS: 60, vmStartS: 60, vmShutdownS: 30 },
    resume: 'none',
    emulated: null,
    ...overrides,
  };
}
