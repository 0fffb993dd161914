/**
 * The physical driver's VM path against a real libvirtd:
 * - two TCG guests (busybox + the host's sshd in an initramfs, QEMU user networking with a
 *   loopback port forward) started by a step, pinned to node 0, placement verified, logged into
 *   over SSH with checked host keys, monitored per QEMU process while KSM merges their identical
 *   memory, then torn down. They run no benchmark: none of the five fits in an initramfs.
 * - a guest that never gets an address fails as 'guest-unreachable' and leaves nothing behind.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { HarnessError } from '../../src/core/errors.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { Virsh } from '../../src/host/libvirt/index.ts';
import { createPhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import { thisHostTestbedFile } from '../support/this-host.ts';
import { buildInitramfs, buildSshInitramfs, ensureGuestKernel } from '../libvirt/guest-assets.ts';
import { freePort } from '../host/sshd-harness.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';

describeWith(['libvirtd', 'qemu', 'root', 'ksm', 'sshd'], 'physical testbed: VM step on a real libvirtd', () => {
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

  it('runs a step with two SSH-reachable guests pinned to node 0, monitored while KSM merges them', async () => {
    const kernel = ensureGuestKernel();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'guest_host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'client_key')]);
    const initrd = buildSshInitramfs(join(work, 'ssh-initrd.gz'), kernel, { hostKeyPath: join(work, 'guest_host_key'), authorizedKey: readFileSync(join(work, 'client_key.pub'), 'utf8') });
    const names = [0, 1].map((i) => `nuksm-pvm-${process.pid}-ssh${i}`);
    const ports = new Map<string, number>();
    const templatesDir = join(work, 'templates');
    execFileSync('mkdir', ['-p', templatesDir]);
    const base = readFileSync(join(import.meta.dirname, '../../vm-templates/tcg-kernel-boot.xml'), 'utf8');
    const hostKeyType = readFileSync(join(work, 'guest_host_key.pub'), 'utf8').split(/\s+/).slice(0, 2).join(' ');
    const knownHosts: string[] = [];
    for (const name of names) {
      const port = await freePort();
      ports.set(name, port);
      knownHosts.push(`[127.0.0.1]:${port} ${hostKeyType}`);
      // QEMU user networking: no bridge or address on the host, sshd reachable on loopback only.
      const forward = `user,id=nuksmnet,hostfwd=tcp:127.0.0.1:${port}-:22`;
      writeFileSync(
        join(templatesDir, `${name}.xml`),
        base
          .replace("<domain type='qemu'>", "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
          .replace('</domain>', `  <qemu:commandline><qemu:arg value='-netdev'/><qemu:arg value='${forward}'/><qemu:arg value='-device'/><qemu:arg value='virtio-net-pci,netdev=nuksmnet'/></qemu:commandline>\n</domain>`),
      );
    }
    writeFileSync(join(work, 'guest_known_hosts'), `${knownHosts.join('\n')}\n`);
    const file = await thisHostTestbedFile({
      file: 'physical-vm.test.yaml',
      guests: { user: 'root', identityFile: join(work, 'client_key'), knownHostsFile: join(work, 'guest_known_hosts'), network: '', baseImage: '', overlayDir: join(work, 'overlays') },
      timeouts: { bootS: 90, sshConnectS: 10, commandS: 60, vmStartS: 60, vmShutdownS: 10 },
    });
    const testbed = await createPhysicalTestbed(file, {
      kernelBoot: { kernel, initrd, cmdline: 'console=ttyS0 panic=-1 quiet' },
      templatesDir,
      // The templates carry the loopback forwards; the guest is reached there.
      networking: { attach: async (spec) => spec, endpoint: async (_vm, _spec, inst) => ({ host: '127.0.0.1', port: ports.get(inst.name)! }) },
      hostWorkRoot: join(work, 'hostwork'),
    });
    const scenario: Scenario = {
      campaign: 'test',
      experiment: 'vm-path',
      configId: 'two-guests',
      kernelMode: 'ksm',
      iteration: 0,
      seed: 1,
      memoryHog: null,
      ksm: { run: true, pagesToScan: 1000, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
      instances: names.map((name, i) => ({ name, kind: 'vm' as const, node: 0, vcpus: 1, memoryMiB: 256, nice: i === 1 ? -5 : 0, template: name, startAtS: 0 })),
      workloads: [],
      timeline: { staggerS: 0, staggerFrom: 'launch', ksmdStart: 'step', mergeWait: { kind: 'converged', maxS: 60, windowS: 6, epsilonPct: 2 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 400 },
      monitors: ['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement'],
    };
    const ksm = new KsmControl(exec);
    const before = await ksm.readKnobs();
    const samples: Sample[] = [];
    const rawDir = join(work, 'raw');
    try {
      await testbed.runScenario(scenario, { emit: (s) => samples.push(...s), log: pino({ level: 'silent' }), signal: new AbortController().signal, rawDir });
    } catch (err) {
      // The guests' serial consoles are the only record of what they were doing; afterAll deletes them.
      for (const f of existsSync(rawDir) ? readdirSync(rawDir).filter((n) => n.endsWith('.console.log')) : []) {
        console.error(`--- ${f} (last 40 lines) ---\n${readFileSync(join(rawDir, f), 'utf8').split('\n').slice(-40).join('\n')}`);
      }
      throw err;
    } finally {
      await testbed.close();
    }
    const once = (metric: string, inst: string) => samples.filter((s) => s.metric === metric && s.instance === inst && s.t === null);
    for (const name of names) {
      expect(once('instance_mem_on_node_mib', name).find((s) => s.node === 0)!.value).toBeGreaterThan(32);
      expect(once('instance_mem_off_node_pct', name)[0].value).toBeLessThanOrEqual(5);
      expect(once('ksm_pages_on_node', name).find((s) => s.node === 0)!.value).toBeGreaterThan(0);
      expect(once('ksm_local_pct', name)[0].value).toBe(100);
    }
    expect(samples.find((s) => s.metric === 'ksm_pages_sharing' && s.t === null)!.value).toBeGreaterThan(1000);
    // Domains are named per attempt (nuksm-<step tag>-<instance>); none is left.
    const left = await virsh.listAllDomains();
    for (const name of names) expect(left.filter((d) => d.endsWith(`-${name}`))).toEqual([]);
    expect(await ksm.readKnobs()).toEqual(before);
  }, 400_000);

  it('fails an unreachable guest as guest-unreachable and tears the VM down', async () => {
    const file = await thisHostTestbedFile({
      file: 'physical-vm.test.yaml',
      // No network: the guest boots but never has an address.
      guests: { user: 'root', identityFile: join(work, 'key'), knownHostsFile: join(work, 'known_hosts'), network: '', baseImage: '', overlayDir: join(work, 'overlays') },
      timeouts: { bootS: 8, sshConnectS: 5, commandS: 60, vmStartS: 60, vmShutdownS: 10 },
    });
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
      timeline: { staggerS: 0, staggerFrom: 'launch', ksmdStart: 'step', mergeWait: { kind: 'fixed', seconds: 0 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 120 },
      monitors: ['ksm', 'meminfo'],
    };
    const ksm = new KsmControl(exec);
    const before = await ksm.readKnobs();
    const samples: Sample[] = [];
    let sawRunning = false;
    const poll = setInterval(() => {
      void virsh.listAllDomains().then(async (all) => {
        for (const d of all.filter((x) => x.endsWith(`-${name}`))) if ((await virsh.domainState(d)) === 'running') sawRunning = true;
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
    expect((err as Error).message).toMatch(new RegExp(`VM nuksm-\\S+-${name} got no IPv4 address within 8 s`));
    expect(sawRunning).toBe(true);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect((await virsh.listAllDomains()).filter((d) => d.endsWith(`-${name}`))).toEqual([]);
    expect(await ksm.readKnobs()).toEqual(before);
    // Host monitors ran while the VM was up; oom is recorded even for a failed step.
    expect(samples.some((s) => s.metric === 'mem_free_gib' && s.t !== null)).toBe(true);
    expect(samples.find((s) => s.metric === 'oom')?.value).toBe(0);
  }, 180_000);
});
