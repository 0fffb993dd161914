import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import type { InstanceSpec } from '../../src/core/scenario.ts';
import type { NodeSpec } from '../../src/core/testbed-file.ts';
import { formatCpuList, macForName, parseCpuList, planDomains, renderDomainXml } from '../../src/host/libvirt/domain-xml.ts';
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
