/**
 * libvirt against a real libvirtd: two TCG guests from vm-templates/ pinned to node 0, booted with
 * direct kernel boot (busybox initramfs), placement read back from virsh and /proc/PID/numa_maps,
 * renice of every QEMU thread, destroy fallback, teardown; bad placements rejected before start.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { InstanceSpec } from '../../src/core/scenario.ts';
import type { NodeSpec } from '../../src/core/testbed-file.ts';
import {
  Virsh,
  comparePlacement,
  loadTemplate,
  planDomains,
  readPlacement,
  reniceProcess,
  renderDomainXml,
  startVms,
  teardownVms,
  verifyPlacement,
  type DomainSpec,
  type StartedVm,
} from '../../src/host/libvirt/index.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { buildInitramfs, ensureGuestKernel, GUEST_UP_MARKER } from '../libvirt/guest-assets.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';

const TEMPLATES = join(import.meta.dirname, '../../vm-templates');
const PREFIX = `nuksm-test-${process.pid}`;

describeWith(['libvirtd', 'qemu', 'root'], 'libvirt: pinned TCG guests on a real libvirtd', () => {
  const exec = new LocalExecutor();
  const virsh = new Virsh(exec, 'qemu:///system');
  let daemons: StartedDaemons | null = null;
  let work = '';
  let nodes: NodeSpec[] = [];
  let specs: DomainSpec[] = [];
  let started: StartedVm[] = [];
  let kernelBoot = { kernel: '', initrd: '', cmdline: '' };

  const instances = (): InstanceSpec[] =>
    [0, 1].map((i) => ({ name: `${PREFIX}-vm${i}`, kind: 'vm', node: 0, vcpus: 1, memoryMiB: 192, nice: 0, template: 'tcg-kernel-boot', startAtS: 0 }));

  const consoleOf = (s: DomainSpec) => (existsSync(s.consoleLog!) ? readFileSync(s.consoleLog!, 'utf8') : '');

  async function waitForConsole(s: DomainSpec, marker: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (consoleOf(s).includes(marker)) return true;
      await new Promise((r) => setTimeout(r, 500));
    }
    return false;
  }

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    work = mkdtempSync(join(tmpdir(), 'nuksm-libvirt-'));
    chmodSync(work, 0o755); // QEMU (user libvirt-qemu) reads the initramfs and writes the console log here
    nodes = await readHostNodes(exec);
    kernelBoot = { kernel: ensureGuestKernel(), initrd: buildInitramfs(join(work, 'initrd.gz')), cmdline: 'console=ttyS0 panic=-1 quiet' };
    const template = await loadTemplate(TEMPLATES, 'tcg-kernel-boot');
    specs = planDomains(instances(), nodes, { sourceFile: 'libvirt.test.ts', disk: null, network: null, kernelBoot, consoleDir: work });
    started = await startVms(
      virsh,
      specs.map((spec) => ({ spec, xml: renderDomainXml(template.text, template.file, spec) })),
      { baseImage: null, waitForGuest: false, timeouts: { startMs: 60_000, shutdownMs: 10_000, addressMs: 0, sshMs: 0 } },
    );
    // Under TCG a boot very rarely faults (BRIEF §3): retry a guest that shows no marker once, and say so.
    for (const { vm } of started) {
      if (await waitForConsole(vm.spec, 'NUKSM-GUEST-FILLED', 90_000)) continue;
      console.warn(`${vm.name}: no boot marker in 90 s, restarting once. Console tail:\n${consoleOf(vm.spec).slice(-800)}`);
      await vm.destroy();
      await vm.start(60_000);
      if (!(await waitForConsole(vm.spec, 'NUKSM-GUEST-FILLED', 90_000))) throw new Error(`${vm.name} did not boot twice`);
    }
  }, 400_000);

  afterAll(async () => {
    try {
      await teardownVms(started.map((s) => s.vm));
      // A failure inside startVms already tore down what it touched; remove any leftover of this run.
      for (const name of (await virsh.listAllDomains().catch(() => [])).filter((n) => n.startsWith(PREFIX))) {
        await virsh.run(['destroy', name], { allowFailure: true });
        await virsh.run(['undefine', name], { allowFailure: true });
      }
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
      await daemons?.stop();
    }
  }, 120_000);

  it('boots both guests from the template, each on its own CPU of node 0', async () => {
    expect(started.map((s) => s.vm.name)).toEqual(specs.map((s) => s.name));
    for (const s of specs) {
      expect(await virsh.domainState(s.name)).toBe('running');
      expect(consoleOf(s)).toContain(GUEST_UP_MARKER);
    }
    const cpus = nodes.find((n) => n.id === 0)!.cpus;
    expect(specs[0].vcpuPins).toEqual([cpus[0]]);
    expect(specs[1].vcpuPins).toEqual([cpus[1 % cpus.length]]);
    const xml = (await virsh.run(['dumpxml', specs[0].name])).stdout;
    expect(xml).toContain("type='qemu'");
    expect(xml).toMatch(/<vcpupin vcpu='0' cpuset='\d+'\/>/);
    expect(xml).toMatch(/<memory mode='strict' nodeset='0'\/>/);
  });

  it('verifies placement: pins, emulator pin, strict numatune and QEMU memory on node 0', async () => {
    for (const s of specs) {
      const report = await verifyPlacement(virsh, s);
      expect(report.problems).toEqual([]);
      expect(report.readback.vcpuAffinity).toEqual([[s.vcpuPins[0]]]);
      expect(report.readback.emulatorAffinity).toEqual(s.emulatorCpus);
      expect(report.readback.numaMode).toBe('strict');
      expect(report.readback.numaNodeset).toEqual([0]);
      // The guest touched its kernel + 32 MiB of tmpfs: QEMU's resident memory is well above that.
      const total = [...report.readback.bytesPerNode.values()].reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(32 * 1024 * 1024);
      expect(report.offNodePct).toBeLessThanOrEqual(5);
    }
  });

  it('flags the same real VM as misplaced when it was meant for another node', async () => {
    const rb = await readPlacement(virsh, specs[0].name);
    const meantForNode1: DomainSpec = { ...specs[0], node: 1, vcpuPins: [99], emulatorCpus: [98, 99] };
    const problems = comparePlacement(meantForNode1, rb).problems.join('\n');
    expect(problems).toMatch(/vCPU 0 affinity is \d+, expected 99/);
    expect(problems).toMatch(/numatune nodeset is 0, expected 1/);
    expect(problems).toMatch(/100\.0% of QEMU's memory is off node 1/);
  });

  it('renices every QEMU thread, not just the main one', async () => {
    const rb = await readPlacement(virsh, specs[1].name);
    const tids = await reniceProcess(exec, rb.qemuPid, -5);
    expect(tids.length).toBeGreaterThan(1); // main loop + vCPU + I/O threads
    for (const tid of readdirSync(`/proc/${rb.qemuPid}/task`)) {
      // Field 19 of stat is nice; comm (field 2) is parenthesised and may hold spaces.
      const stat = readFileSync(`/proc/${rb.qemuPid}/task/${tid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])).toBe(-5);
    }
  });

  it('falls back to destroy when the guest ignores ACPI shutdown, then tears down completely', async () => {
    const [first, second] = started;
    const pid = (await readPlacement(virsh, first.vm.name)).qemuPid;
    // busybox init has no ACPI handler: shutdown cannot complete, destroy must.
    expect(await first.vm.shutdown(3_000)).toBe('destroyed');
    await teardownVms([first.vm, second.vm]);
    const left = await virsh.listAllDomains();
    for (const s of specs) expect(left).not.toContain(s.name);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    started = [];
  });

  it('rejects before start a node that does not exist and memory larger than the node', () => {
    const bad = instances();
    const missing = Math.max(...nodes.map((n) => n.id)) + 1;
    bad[1] = { ...bad[1], node: missing };
    expect(() => planDomains(bad, nodes, { sourceFile: 'libvirt.test.ts', disk: null, network: null, kernelBoot, consoleDir: null })).toThrowError(ConfigError);
    expect(() => planDomains(bad, nodes, { sourceFile: 'libvirt.test.ts', disk: null, network: null, kernelBoot, consoleDir: null })).toThrowError(
      new RegExp(`node ${missing} does not exist on this testbed`),
    );
    const huge = instances();
    huge[0] = { ...huge[0], memoryMiB: Math.ceil(nodes[0].memoryGiB * 1024) + 1 };
    expect(() => planDomains(huge, nodes, { sourceFile: 'libvirt.test.ts', disk: null, network: null, kernelBoot, consoleDir: null })).toThrowError(/is more than node 0 has/);
  });
});
