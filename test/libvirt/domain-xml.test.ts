import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, HarnessError } from '../../src/core/errors.ts';
import type { InstanceSpec } from '../../src/core/scenario.ts';
import type { GuestAccess, NodeSpec } from '../../src/core/testbed-file.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import type { Executor } from '../../src/host/exec/types.ts';
import { addQemuArgs, formatCpuList, macForName, parseCpuList, planDomains, renderDomainXml, withSshPort } from '../../src/host/libvirt/domain-xml.ts';
import { allocateLoopbackPort, guestNetworkOf, isHostfwdConflict, needsLibvirtAddress, needsSshPort, sshEndpointOf, vmNetworkFor } from '../../src/host/libvirt/network.ts';
import { comparePlacement, parseEmulatorpin, parseNumaMaps, parseNumatune, parseVcpupin } from '../../src/host/libvirt/placement.ts';
import { parseDomifaddr } from '../../src/host/libvirt/vm.ts';

const TEMPLATE_FILE = 'vm-templates/guest-kvm.xml';
const template = readFileSync(TEMPLATE_FILE, 'utf8');

// A two-socket server like the paper's: 18 cores per node, node 1 starting at CPU 18.
const nodes: NodeSpec[] = [
  { id: 0, cpus: Array.from({ length: 18 }, (_, i) => i), memoryGiB: 192 },
  { id: 1, cpus: Array.from({ length: 18 }, (_, i) => 18 + i), memoryGiB: 192 },
];

const inst = (name: string, node: number, vcpus = 4, memoryMiB = 60_000): InstanceSpec => ({
  name,
  kind: 'vm',
  node,
  vcpus,
  memoryMiB,
  nice: 0,
  template: 'guest-kvm',
  startAtS: 0,
});

const planOpts = { sourceFile: 'spec.yaml', disk: { overlayDir: '/var/lib/nuksm/overlays' }, network: 'nuksm-net', kernelBoot: null, consoleDir: null };

describe('domain XML rendering', () => {
  it('pins one vCPU per host CPU of the node, emulator on the node, strict numatune', () => {
    const [vm0, vm1] = planDomains([inst('vm0', 0), inst('vm1', 1)], nodes, planOpts);
    expect(vm0.vcpuPins).toEqual([0, 1, 2, 3]);
    expect(vm1.vcpuPins).toEqual([18, 19, 20, 21]);
    const xml = renderDomainXml(template, TEMPLATE_FILE, vm1);
    expect(xml).toContain('<name>vm1</name>');
    expect(xml).toContain(`<memory unit='KiB'>${60_000 * 1024}</memory>`);
    expect(xml).toContain("<vcpu placement='static'>4</vcpu>");
    for (const [v, cpu] of [[0, 18], [1, 19], [2, 20], [3, 21]]) expect(xml).toContain(`<vcpupin vcpu='${v}' cpuset='${cpu}'/>`);
    expect(xml).toContain("<emulatorpin cpuset='18-35'/>");
    expect(xml).toContain("<memory mode='strict' nodeset='1'/>");
    expect(xml).toContain("<source file='/var/lib/nuksm/overlays/vm1.qcow2'/>");
    expect(xml).toContain("<source network='nuksm-net'/>");
    expect(xml).toContain(`<mac address='${macForName('vm1')}'/>`);
    expect(xml).toContain("<boot dev='hd'/>");
    expect(xml).not.toMatch(/\{\{\w+\}\}/);
    // KSM must see guest RAM: the template may not opt out of page sharing.
    expect(xml).not.toMatch(/<nosharepages/);
  });

  it('is well-formed XML (xmllint)', () => {
    const [vm0] = planDomains([inst('vm0', 0)], nodes, { ...planOpts, kernelBoot: { kernel: '/k/vmlinuz', initrd: '/k/initrd', cmdline: 'console=ttyS0 a<b' }, consoleDir: '/tmp/c' });
    const xml = renderDomainXml(template, TEMPLATE_FILE, vm0);
    expect(xml).toContain('<cmdline>console=ttyS0 a&lt;b</cmdline>');
    const out = execFileSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('gives VMs sharing a node disjoint CPUs, wrapping when the node is full', () => {
    const small: NodeSpec[] = [{ id: 0, cpus: [0, 1], memoryGiB: 4 }];
    const [a, b, c] = planDomains([inst('a', 0, 1, 128), inst('b', 0, 1, 128), inst('c', 0, 1, 128)], small, planOpts);
    expect([a.vcpuPins, b.vcpuPins, c.vcpuPins]).toEqual([[0], [1], [0]]);
  });

  it('derives a stable, locally administered MAC from the name', () => {
    expect(macForName('vm0')).toBe(macForName('vm0'));
    expect(macForName('vm0')).not.toBe(macForName('vm1'));
    expect(macForName('vm0')).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    // Pinned value: changing the derivation would silently change guests' DHCP leases.
    expect(macForName('ubuntu_nuksm_1')).toBe('52:54:00:' + (execFileSync('sh', ['-c', 'printf %s ubuntu_nuksm_1 | sha256sum'], { encoding: 'utf8' }).slice(0, 6).match(/../g) ?? []).join(':'));
  });

  it('rejects a node that does not exist, naming file and key', () => {
    expect(() => planDomains([inst('vm0', 0), inst('vm1', 2)], nodes, planOpts)).toThrowError(ConfigError);
    expect(() => planDomains([inst('vm0', 0), inst('vm1', 2)], nodes, planOpts)).toThrowError(/spec\.yaml: instances\[1\] \(vm1\)\.node: node 2 does not exist on this testbed \(nodes: 0, 1\)/);
  });

  it('rejects memory larger than the node', () => {
    expect(() => planDomains([inst('vm0', 0, 4, 192 * 1024 + 1)], nodes, planOpts)).toThrowError(/memoryMiB: 196609 MiB is more than node 0 has \(196608 MiB\)/);
  });

  it('rejects templates that would leave a VM unpinned or use unknown placeholders', () => {
    const [vm0] = planDomains([inst('vm0', 0)], nodes, planOpts);
    expect(() => renderDomainXml(template.replace('{{numatune}}', ''), 'x.xml', vm0)).toThrowError(/x\.xml: \{\{numatune\}\}: required placeholder missing/);
    expect(() => renderDomainXml(template + '{{bogus}}', 'x.xml', vm0)).toThrowError(/unknown placeholder/);
  });

  it('parses CPU lists both ways', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(formatCpuList([11, 0, 1, 2, 3, 8, 10])).toBe('0-3,8,10-11');
  });
});

describe('placement read-back parsing and rules', () => {
  it('parses virsh vcpupin / emulatorpin / numatune / domifaddr output', () => {
    // Formats of libvirt 9.0 (Debian bookworm) with -q.
    expect(parseVcpupin(' 0   0\n 1   1-3\n')).toEqual([[0], [1, 2, 3]]);
    expect(parseEmulatorpin('0-1\n')).toEqual([0, 1]);
    expect(parseEmulatorpin('emulator: CPU Affinity\n----------------------------------\n       *: 0-1\n')).toEqual([0, 1]);
    expect(parseNumatune('numa_mode      : strict\nnuma_nodeset   : 0\n')).toEqual({ mode: 'strict', nodeset: [0] });
    expect(parseDomifaddr(' vnet0      52:54:00:aa:bb:cc    ipv4         192.168.122.17/24\n')).toEqual(['192.168.122.17']);
  });

  it('sums numa_maps per node with the mapping page size', () => {
    const maps = [
      '7f0000000000 default anon=100 dirty=100 N0=60 N1=40 kernelpagesize_kB=4',
      '7f1000000000 bind:0 file=/dev/hugepages/x huge dirty=2 N0=2 kernelpagesize_kB=2048',
      '7f2000000000 default file=/usr/bin/qemu mapped=10 N1=10 kernelpagesize_kB=4',
    ].join('\n');
    const per = parseNumaMaps(maps);
    expect(per.get(0)).toBe(60 * 4096 + 2 * 2048 * 1024);
    expect(per.get(1)).toBe(50 * 4096);
  });

  it('flags memory off the node beyond the limit and wrong pins', () => {
    const [spec] = planDomains([inst('vm0', 0, 2, 1024)], nodes, planOpts);
    const good = {
      vcpuAffinity: [[0], [1]],
      emulatorAffinity: spec.emulatorCpus,
      numaMode: 'strict',
      numaNodeset: [0],
      qemuPid: 1,
      bytesPerNode: new Map([[0, 96], [1, 4]]),
    };
    expect(comparePlacement(spec, good).problems).toEqual([]);
    const bad = { ...good, vcpuAffinity: [[0], [0, 1]], bytesPerNode: new Map([[0, 90], [1, 10]]), numaMode: 'preferred' };
    const problems = comparePlacement(spec, bad).problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/vCPU 1 affinity is 0-1, expected 1/);
    expect(problems.join('\n')).toMatch(/10\.0% of QEMU's memory is off node 0 \(limit 5%\)/);
    expect(comparePlacement(spec, bad, 20).problems).toHaveLength(2);
  });
});

const TCG_FILE = 'vm-templates/guest-tcg.xml';
const tcgTemplate = readFileSync(TCG_FILE, 'utf8');
const xmlTmp = mkdtempSync(join(tmpdir(), 'nuksm-domxml-'));
afterAll(() => rmSync(xmlTmp, { recursive: true, force: true }));

const hasValidator = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v virt-xml-validate'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** xmllint well-formedness always; libvirt's own RNG schema (virt-xml-validate) where installed. */
function validate(xml: string, name: string): void {
  expect(execFileSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' })).toBe('');
  if (!hasValidator) return;
  const file = join(xmlTmp, `${name}.xml`);
  writeFileSync(file, xml);
  const res = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8' });
  expect(`${res.stdout}${res.stderr}`, name).toMatch(/validates/);
  expect(res.status, `${name}: ${res.stderr}`).toBe(0);
}

const userNet = { kind: 'user' as const, sshHost: '127.0.0.1' };
const guests = (network: Partial<GuestAccess>): GuestAccess => ({ user: 'root', identityFile: '/k', knownHostsFile: '/kh', network: '', baseImage: '/b.qcow2', overlayDir: '/o', ...network });

describe('guest networking in the domain XML', () => {
  it('user networking: netdev/device pair with the loopback SSH forward in qemu:commandline, no <interface>', () => {
    const [a, b] = planDomains([inst('vm0', 0, 2, 1024), inst('vm1', 0, 2, 1024)], nodes, { ...planOpts, network: userNet });
    expect(a.network).toEqual({ kind: 'user', sshHost: '127.0.0.1', sshPort: null, mac: macForName('vm0') });
    // The port is chosen on the host at start: rendering without it is refused.
    expect(() => renderDomainXml(tcgTemplate, TCG_FILE, a)).toThrowError(/needs its SSH port/);
    const xml = renderDomainXml(tcgTemplate, TCG_FILE, withSshPort(a, 42022));
    expect(xml).toMatch(/<domain type='qemu' xmlns:qemu='http:\/\/libvirt\.org\/schemas\/domain\/qemu\/1\.0'>/);
    expect(xml).toContain("<qemu:arg value='-netdev'/>");
    expect(xml).toContain("<qemu:arg value='user,id=nuksmnet0,hostfwd=tcp:127.0.0.1:42022-:22'/>");
    expect(xml).toContain("<qemu:arg value='-device'/>");
    // A fixed slot: libvirt places the disk at slot 2 without knowing about this device.
    expect(xml).toContain(`<qemu:arg value='virtio-net-pci,netdev=nuksmnet0,mac=${macForName('vm0')},bus=pci.0,addr=0x1e'/>`);
    expect(xml.indexOf('<qemu:commandline>')).toBeGreaterThan(xml.indexOf('</devices>'));
    expect(xml.trimEnd().endsWith('</domain>')).toBe(true);
    expect(xml).not.toContain('<interface');
    expect(xml).toContain("<boot dev='hd'/>");
    expect(xml).toContain("<source file='/var/lib/nuksm/overlays/vm0.qcow2'/>");
    expect(xml).not.toMatch(/\{\{\w+\}\}/);
    validate(xml, 'user-vm0');
    // Each VM its own port and MAC.
    const xml1 = renderDomainXml(tcgTemplate, TCG_FILE, withSshPort(b, 42023));
    expect(xml1).toContain('hostfwd=tcp:127.0.0.1:42023-:22');
    expect(xml1).toContain(`mac=${macForName('vm1')}`);
    // A q35 template's root bus is pcie.0.
    const q35 = tcgTemplate.replace("machine='pc'", "machine='q35'");
    expect(renderDomainXml(q35, 'q35.xml', withSshPort(a, 42022))).toContain(',bus=pcie.0,addr=0x1e');
  });

  it('an IPv6 loopback forward is bracketed as QEMU wants', () => {
    const [a] = planDomains([inst('vm0', 0, 1, 512)], nodes, { ...planOpts, network: { kind: 'user', sshHost: '::1' } });
    const xml = renderDomainXml(tcgTemplate, TCG_FILE, withSshPort(a, 2200));
    expect(xml).toContain('hostfwd=tcp:[::1]:2200-:22');
    validate(xml, 'user-v6');
  });

  it('a libvirt network (plain name or parsed) renders <interface type=network> as before; withSshPort leaves it alone', () => {
    for (const network of ['nuksm-net', { kind: 'libvirt' as const, name: 'nuksm-net' }]) {
      const [a] = planDomains([inst('vm0', 0, 2, 1024)], nodes, { ...planOpts, network });
      expect(withSshPort(a, 1234)).toBe(a);
      const xml = renderDomainXml(tcgTemplate, TCG_FILE, a);
      expect(xml).toContain("<interface type='network'>");
      expect(xml).toContain("<source network='nuksm-net'/>");
      expect(xml).not.toContain('qemu:commandline');
      expect(xml).not.toContain('xmlns:qemu');
      validate(xml, 'libvirt-net');
    }
    // No network at all ('' or null): no NIC.
    for (const network of ['', null]) {
      const [a] = planDomains([inst('vm0', 0, 2, 1024)], nodes, { ...planOpts, network });
      expect(a.network).toBeNull();
      expect(renderDomainXml(tcgTemplate, TCG_FILE, a)).not.toMatch(/<interface|qemu:commandline/);
    }
  });

  it('the KVM and kernel-boot templates take user networking too; a console file and kernel boot still render', () => {
    for (const file of ['vm-templates/guest-kvm.xml', 'vm-templates/tcg-kernel-boot.xml']) {
      const [a] = planDomains([inst('vm0', 0, 1, 512)], nodes, { ...planOpts, network: userNet, consoleDir: '/tmp/c', kernelBoot: { kernel: '/k/vmlinuz', initrd: '/k/initrd', cmdline: 'console=ttyS0' } });
      const xml = renderDomainXml(readFileSync(file, 'utf8'), file, withSshPort(a, 40000));
      expect(xml).toContain("<source path='/tmp/c/vm0.console.log'/>");
      expect(xml).toContain('hostfwd=tcp:127.0.0.1:40000-:22');
      // The template's leading comment mentions "domain": the namespace goes on the element, once.
      expect(xml.match(/xmlns:qemu=/g)).toHaveLength(1);
      expect(xml).toMatch(/<domain type='(kvm|qemu)' xmlns:qemu=/);
      validate(xml, `user-${file.replace(/\W/g, '_')}`);
    }
  });

  it("a template's own qemu:commandline and namespace are reused, not duplicated", () => {
    const own = tcgTemplate
      .replace("<domain type='qemu'>", "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
      .replace('</domain>', "  <qemu:commandline>\n    <qemu:arg value='-no-user-config'/>\n  </qemu:commandline>\n</domain>");
    const [a] = planDomains([inst('vm0', 0, 1, 512)], nodes, { ...planOpts, network: userNet });
    const xml = renderDomainXml(own, 'own.xml', withSshPort(a, 40001));
    expect(xml.match(/<qemu:commandline>/g)).toHaveLength(1);
    expect(xml.match(/xmlns:qemu=/g)).toHaveLength(1);
    expect(xml).toContain("<qemu:arg value='-no-user-config'/>");
    expect(xml).toContain('hostfwd=tcp:127.0.0.1:40001-:22');
    validate(xml, 'own-cmdline');
    expect(() => addQemuArgs('<!-- no domain -->', 'x.xml', ['-a'])).toThrowError(/x\.xml: <domain>: no <domain> element/);
  });

  it('the TCG disk-boot template has the placeholders of the KVM one and renders to valid libvirt XML', () => {
    const ph = (t: string) => [...new Set([...t.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]))].sort();
    expect(ph(tcgTemplate)).toEqual(ph(template));
    expect(tcgTemplate).toContain("<domain type='qemu'>");
    expect(tcgTemplate).not.toMatch(/<nosharepages/);
    const [a] = planDomains([inst('vm0', 0, 2, 1024)], nodes, { ...planOpts, network: null, consoleDir: '/var/tmp/console' });
    const xml = renderDomainXml(tcgTemplate, TCG_FILE, a);
    expect(xml).toContain("<serial type='file'>");
    validate(xml, 'tcg-plain');
  });
});

describe('guest networking helpers (src/host/libvirt/network.ts)', () => {
  it('guestNetworkOf / vmNetworkFor: parsed networking first, else the older string', () => {
    expect(guestNetworkOf(guests({ network: 'nuksm-net' }))).toEqual({ kind: 'libvirt', name: 'nuksm-net' });
    expect(guestNetworkOf(guests({ network: '' }))).toBeNull();
    expect(guestNetworkOf(guests({ network: '', networking: userNet }))).toEqual(userNet);
    expect(vmNetworkFor(guests({ network: '', networking: userNet }), 'vm0', 4000)).toEqual({ kind: 'user', sshHost: '127.0.0.1', sshPort: 4000, mac: macForName('vm0') });
    expect(vmNetworkFor(guests({ network: '', networking: userNet }), 'vm0')).toMatchObject({ sshPort: null });
    expect(vmNetworkFor(guests({ network: 'n' }), 'vm1', 4000)).toEqual({ kind: 'libvirt', name: 'n', mac: macForName('vm1') });
    expect(vmNetworkFor(guests({ network: '' }), 'vm1')).toBeNull();
  });

  it('sshEndpointOf: the loopback forward without an address wait, or the libvirt address on port 22', () => {
    const user = vmNetworkFor(guests({ networking: userNet }), 'vm0', 4000);
    expect(needsSshPort(user)).toBe(true);
    expect(needsLibvirtAddress(user)).toBe(false);
    expect(sshEndpointOf(user)).toEqual({ host: '127.0.0.1', port: 4000 });
    expect(() => sshEndpointOf(vmNetworkFor(guests({ networking: userNet }), 'vm0'))).toThrowError(/no SSH forward port yet/);
    const lv = vmNetworkFor(guests({ network: 'n' }), 'vm0');
    expect(needsSshPort(lv)).toBe(false);
    expect(needsLibvirtAddress(lv)).toBe(true);
    expect(sshEndpointOf(lv, '192.0.2.7')).toEqual({ host: '192.0.2.7', port: 22 });
    expect(() => sshEndpointOf(lv)).toThrowError(HarnessError);
    expect(() => sshEndpointOf(null)).toThrowError(/no network/);
  });

  it('allocateLoopbackPort returns a port that is free on loopback of the executor host', async () => {
    const port = await allocateLoopbackPort(new LocalExecutor(), '127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
    // Free: this process can listen on it right away (QEMU does the same a moment later).
    const srv = createServer();
    await new Promise<void>((res, rej) => srv.once('error', rej).listen(port, '127.0.0.1', () => res()));
    expect((srv.address() as { port: number }).port).toBe(port);
    // A port in use is never returned: while srv holds it, fresh allocations differ from it.
    for (let i = 0; i < 5; i++) expect(await allocateLoopbackPort(new LocalExecutor(), '127.0.0.1')).not.toBe(port);
    await new Promise<void>((res) => srv.close(() => res()));
  });

  it('allocateLoopbackPort skips excluded ports and reports a failed probe', async () => {
    const answers = ['5000\n', '5000\n', '5001\n'];
    const fake = { target: 'fake', run: async () => ({ exitCode: 0, stdout: answers.shift()!, stderr: '', durationMs: 1 }) } as unknown as Executor;
    expect(await allocateLoopbackPort(fake, '127.0.0.1', { exclude: [5000] })).toBe(5001);
    const broken = { target: 'fake', run: async () => ({ exitCode: 1, stdout: '', stderr: 'Traceback…\nOSError: [Errno 99] Cannot assign requested address', durationMs: 1 }) } as unknown as Executor;
    await expect(allocateLoopbackPort(broken, '127.0.0.1')).rejects.toThrowError(/Cannot assign requested address/);
  });

  it('isHostfwdConflict recognises QEMU failing to bind the forward', () => {
    const err = new HarnessError('boot', "virsh start vm0 failed (exit 1) on local: error: Failed to start domain 'vm0'\nerror: internal error: process exited while connecting to monitor: 2026-12-01T20:00:00.000000Z qemu-system-x86_64: -netdev user,id=nuksmnet0,hostfwd=tcp:127.0.0.1:4000-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:4000-:22'");
    expect(isHostfwdConflict(err)).toBe(true);
    expect(isHostfwdConflict(new HarnessError('boot', 'virsh start vm0 failed: Cannot allocate memory'))).toBe(false);
  });
});
