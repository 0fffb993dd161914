/**
 * QEMU user networking as a testbed file expresses it (`guests.network: { user: { sshHost } }`),
 * against a real libvirtd: a TCG domain rendered by planDomains/renderDomainXml with its sshd
 * forwarded to a loopback port from allocateLoopbackPort, reached at sshEndpointOf (no address
 * wait), logged into with a strict known_hosts entry for any port, next to a disk at libvirt's PCI
 * slot 2 (the NIC has its own fixed slot); then a port taken by another
 * process shows up as `virsh start` failing with isHostfwdConflict. No bridge, no host address.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { HarnessError } from '../../src/core/errors.ts';
import type { InstanceSpec } from '../../src/core/scenario.ts';
import { LocalExecutor, SshExecutor } from '../../src/host/exec/index.ts';
import {
  LibvirtVm,
  Virsh,
  allocateLoopbackPort,
  isHostfwdConflict,
  needsLibvirtAddress,
  planDomains,
  renderDomainXml,
  sshEndpointOf,
  vmNetworkFor,
  withSshPort,
} from '../../src/host/libvirt/index.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { buildSshInitramfs, ensureGuestKernel } from '../libvirt/guest-assets.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';

describeWith(['libvirtd', 'qemu', 'root', 'sshd'], 'libvirt: QEMU user networking with SSH on a loopback port', () => {
  const exec = new LocalExecutor();
  const virsh = new Virsh(exec, 'qemu:///system');
  const TEMPLATE = join(import.meta.dirname, '../../vm-templates/tcg-kernel-boot.xml');
  let daemons: StartedDaemons | null = null;
  let work = '';
  const vms: LibvirtVm[] = [];
  let kernelBoot = { kernel: '', initrd: '', cmdline: 'console=ttyS0 panic=-1 quiet' };

  const inst = (name: string): InstanceSpec => ({ name, kind: 'vm', node: 0, vcpus: 1, memoryMiB: 256, nice: 0, template: 'tcg-kernel-boot', startAtS: 0 });
  const guests = () => ({ user: 'root', identityFile: join(work, 'client_key'), knownHostsFile: join(work, 'known_hosts'), network: '', networking: { kind: 'user' as const, sshHost: '127.0.0.1' }, baseImage: '', overlayDir: join(work, 'overlays') });

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    work = mkdtempSync(join(tmpdir(), 'nuksm-usernet-'));
    chmodSync(work, 0o755);
    const kernel = ensureGuestKernel();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'guest_host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'client_key')]);
    const initrd = buildSshInitramfs(join(work, 'ssh-initrd.gz'), kernel, { hostKeyPath: join(work, 'guest_host_key'), authorizedKey: readFileSync(join(work, 'client_key.pub'), 'utf8') });
    kernelBoot = { ...kernelBoot, kernel, initrd };
    // One entry for every port: the forward's port is chosen per VM at start (as the guest image's known_hosts does).
    const hostKey = readFileSync(join(work, 'guest_host_key.pub'), 'utf8').split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(join(work, 'known_hosts'), `[127.0.0.1]:* ${hostKey}\n`);
  }, 300_000);

  afterAll(async () => {
    for (const vm of vms) await vm.teardown().catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
    await daemons?.stop();
  });

  async function domainFor(name: string, port: number, withDisk = false): Promise<LibvirtVm> {
    const nodes = await readHostNodes(exec);
    const [planned] = planDomains([inst(name)], nodes, { sourceFile: 'libvirt-usernet.test.ts', disk: withDisk ? { overlayDir: join(work, 'overlays') } : null, network: guests().networking, kernelBoot, consoleDir: work });
    // A blank disk: libvirt places it at PCI slot 2, where QEMU would otherwise put the pass-through NIC.
    if (planned.disk) {
      execFileSync('mkdir', ['-p', join(work, 'overlays')]);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', planned.disk.overlayPath, '16M']);
    }
    // The plan and vmNetworkFor agree on the attachment (port null until allocated).
    expect(planned.network).toEqual(vmNetworkFor(guests(), name));
    const spec = withSshPort(planned, port);
    const vm = new LibvirtVm(virsh, spec, renderDomainXml(readFileSync(TEMPLATE, 'utf8'), TEMPLATE, spec));
    vms.push(vm);
    return vm;
  }

  it('boots a TCG guest whose sshd answers on the forwarded loopback port, logs in with a checked host key', async () => {
    const name = `nuksm-usernet-${process.pid}-a`;
    const port = await allocateLoopbackPort(exec, '127.0.0.1');
    const vm = await domainFor(name, port, true);
    expect(vm.xml).toContain(`hostfwd=tcp:127.0.0.1:${port}-:22`);
    await vm.define();
    const dumped = (await virsh.run(['dumpxml', name])).stdout;
    expect(dumped).toContain(`hostfwd=tcp:127.0.0.1:${port}-:22`);
    expect(dumped).not.toContain('<interface');
    const t0 = Date.now();
    await vm.start(60_000);
    expect(needsLibvirtAddress(vm.spec.network)).toBe(false);
    const endpoint = sshEndpointOf(vm.spec.network);
    expect(endpoint).toEqual({ host: '127.0.0.1', port });
    // QEMU listens on loopback only: the forward is bound to 127.0.0.1, not the wildcard address.
    const ss = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    expect(ss).toContain(`127.0.0.1:${port}`);
    expect(ss).not.toMatch(/(0\.0\.0\.0|\*|\[::\]):\d+/);
    await vm.waitForSsh(endpoint.host, 120_000, endpoint.port);
    const bannerS = (Date.now() - t0) / 1000;
    const ssh = new SshExecutor({ host: endpoint.host, port: endpoint.port, username: 'root', privateKeyPath: join(work, 'client_key'), knownHostsFile: join(work, 'known_hosts'), hostKeyPolicy: 'strict', connectTimeoutMs: 20_000, defaultTimeoutMs: 30_000 });
    try {
      const res = await ssh.run(['sh', '-c', 'cat /sys/class/net/eth0/address; ip -4 addr show eth0; for d in 02 1e; do echo "slot $d $(cat /sys/bus/pci/devices/0000:00:$d.0/device)"; done']);
      expect(res.stdout).toContain(vm.spec.network!.mac);
      expect(res.stdout).toContain('10.0.2.15');
      // Both on the bus: libvirt's virtio-blk at slot 2 (0x1001), the pass-through virtio-net at 0x1e (0x1000).
      expect(res.stdout).toContain('slot 02 0x1001');
      expect(res.stdout).toContain('slot 1e 0x1000');
    } finally {
      await ssh.close();
    }
    console.log(`user networking: virsh start → SSH banner on 127.0.0.1:${port} in ${bannerS.toFixed(1)} s, login ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await vm.teardown();
    expect(await virsh.domainState(name)).toBeNull();
  }, 300_000);

  it('a forward port taken between allocation and start fails virsh start as a hostfwd conflict; a new port then works', async () => {
    const name = `nuksm-usernet-${process.pid}-b`;
    const port = await allocateLoopbackPort(exec, '127.0.0.1');
    // Someone else takes the port in the race window.
    const squatter: Server = createServer();
    await new Promise<void>((res, rej) => squatter.once('error', rej).listen(port, '127.0.0.1', () => res()));
    try {
      const vm = await domainFor(name, port);
      await vm.define();
      const err = await vm.start(60_000).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(HarnessError);
      expect(isHostfwdConflict(err)).toBe(true);
      expect((err as Error).message).toContain(`Could not set up host forwarding rule 'tcp:127.0.0.1:${port}-:22'`);
      await vm.teardown();
    } finally {
      await new Promise<void>((res) => squatter.close(() => res()));
    }
    // The retry the driver does: a new port, a new definition, start succeeds.
    const retry = await domainFor(name, await allocateLoopbackPort(exec, '127.0.0.1', { exclude: [port] }));
    await retry.define();
    await retry.start(60_000);
    expect(await retry.state()).toBe('running');
    await retry.teardown();
    expect(await virsh.domainState(name)).toBeNull();
  }, 300_000);
});
