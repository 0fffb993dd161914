/**
 * The physical driver's VM path against a real libvirtd, as far as this machine allows: a step
 * whose guest (TCG, busybox, no network) boots pinned to node 0 but never gets an address must
 * fail as 'guest-unreachable' within the boot timeout and leave nothing behind: no domain, KSM
 * knobs restored. (A full VM step needs a guest image with sshd; see docs/testbed-physical.md.)
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { HarnessError } from '../../src/core/errors.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { Virsh } from '../../src/host/libvirt/index.ts';
import { createPhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { buildInitramfs, ensureGuestKernel } from '../libvirt/guest-assets.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';

describeWith(['libvirtd', 'qemu', 'root', 'ksm'], 'physical testbed: VM step on a real libvirtd', () => {
  const exec = new LocalExecutor();
  const virsh = new Virsh(exec, 'qemu:///system');
  let daemons: StartedDaemons | null = null;
  let work = '';

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    work = mkdtempSync(join(tmpdir(), 'nuksm-physical-vm-'));
    chmodSync(work, 0o755);
  }, 120_000);

  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await daemons?.stop();
  });

  it('fails an unreachable guest as guest-unreachable and tears the VM down', async () => {
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    const file: TestbedFile = {
      file: 'physical-vm.test.yaml',
      name: 'this-host',
      kind: 'physical',
      host: { kind: 'local' },
      nodes: await readHostNodes(exec),
      kernels: { running: { bootEntry: 'current', release, ksmKnobs: {} } },
      modes: { ksm: { kernel: 'running', ksmKnobs: {} } },
      perfEventSet: 'none',
      // No network: the guest boots but never has an address.
      guests: { user: 'root', identityFile: join(work, 'key'), knownHostsFile: join(work, 'known_hosts'), network: '', baseImage: '', overlayDir: join(work, 'overlays') },
      libvirtUri: 'qemu:///system',
      timeouts: { bootS: 8, sshConnectS: 5, commandS: 60, vmStartS: 60, vmShutdownS: 10 },
      resume: 'none',
      emulated: null,
    };
    const kernelBoot = { kernel: ensureGuestKernel(), initrd: buildInitramfs(join(work, 'initrd.gz'), 8), cmdline: 'console=ttyS0 panic=-1 quiet' };
    const testbed = await createPhysicalTestbed(file, { kernelBoot, hostWorkRoot: join(work, 'hostwork') });
    const name = `nuksm-pvm-${process.pid}`;
    const scenario: Scenario = {
      campaign: 'test',
      experiment: 'vm-path',
      configId: 'unreachable',
      kernelMode: 'ksm',
      iteration: 0,
      seed: 1,
      memoryHog: null,
      ksm: { run: true, pagesToScan: 100, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
      instances: [{ name, kind: 'vm', node: 0, vcpus: 1, memoryMiB: 128, nice: -5, template: 'tcg-kernel-boot', startAtS: 0 }],
      workloads: [{ instance: name, workload: 'mysql', params: {} }],
      timeline: { staggerS: 0, mergeWait: { kind: 'fixed', seconds: 0 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 120 },
      monitors: ['ksm', 'meminfo'],
    };
    const ksm = new KsmControl(exec);
    const before = await ksm.readKnobs();
    const samples: Sample[] = [];
    let sawRunning = false;
    const poll = setInterval(() => {
      void virsh.domainState(name).then((s) => {
        if (s === 'running') sawRunning = true;
      });
    }, 500);
    const t0 = Date.now();
    const err = await testbed
      .runScenario(scenario, { emit: (s) => samples.push(...s), log: pino({ level: 'silent' }), signal: new AbortController().signal, rawDir: join(work, 'raw') })
      .then(() => null, (e: unknown) => e);
    clearInterval(poll);
    await testbed.close();
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('guest-unreachable');
    expect((err as Error).message).toMatch(new RegExp(`VM ${name} got no IPv4 address within 8 s`));
    expect(sawRunning).toBe(true);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(await virsh.listAllDomains()).not.toContain(name);
    expect(await ksm.readKnobs()).toEqual(before);
    // Host monitors ran while the VM was up; oom is recorded even for a failed step.
    expect(samples.some((s) => s.metric === 'mem_free_gib' && s.t !== null)).toBe(true);
    expect(samples.find((s) => s.metric === 'oom')?.value).toBe(0);
  }, 180_000);
});
