/**
 * Domain XML for one VM: a template from vm-templates/ (what is fixed per VM kind: domain type,
 * machine, CPU model, devices) filled with what is specific to the instance (name, size, pinning,
 * NUMA memory binding, disk overlay, NIC with a MAC derived from the name, optional kernel boot).
 *
 * Placement is decided here, at render time, against the testbed file's nodes, so a scenario that
 * names a missing node or asks for more memory than a node has fails before anything is started.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, HarnessError } from '../../core/errors.ts';
import type { InstanceSpec } from '../../core/scenario.ts';
import type { GuestNetwork, NodeSpec } from '../../core/testbed-file.ts';

export interface KernelBoot {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/**
 * A VM's network attachment (what renderDomainXml needs):
 * - libvirt network: `<interface type='network'>` with a MAC derived from the name (the `kind` may
 *   be left out, as before it existed);
 * - QEMU user networking: a `-netdev user` + `virtio-net-pci` pair in `<qemu:commandline>` with the
 *   guest's port 22 forwarded to `sshHost:sshPort` on the libvirt host. `sshPort` is null from
 *   planDomains (ports are taken on the host, at start) and must be set before rendering.
 */
export type VmNetwork =
  | { kind?: 'libvirt'; name: string; mac: string }
  | { kind: 'user'; sshHost: string; sshPort: number | null; mac: string };

export const QEMU_XMLNS = 'http://libvirt.org/schemas/domain/qemu/1.0';

export interface DomainSpec {
  name: string;
  node: number;
  vcpus: number;
  memoryMiB: number;
  /** Host CPU of each vCPU, index = vCPU number. */
  vcpuPins: number[];
  /** Host CPUs of QEMU's emulator threads (I/O, main loop): the node's CPUs. */
  emulatorCpus: number[];
  /** qcow2 overlay on the testbed's base image; null for diskless (kernel-boot) guests. */
  disk: { overlayPath: string } | null;
  network: VmNetwork | null;
  kernelBoot: KernelBoot | null;
  /** Serial console written to this host file; null = a pty console. */
  consoleLog: string | null;
}

/** Placeholders a template must contain: without them a VM would run unpinned or unnamed. */
const REQUIRED_PLACEHOLDERS = ['name', 'memoryKiB', 'vcpus', 'cputune', 'numatune'] as const;
const KNOWN_PLACEHOLDERS = new Set([...REQUIRED_PLACEHOLDERS, 'osBoot', 'disks', 'interfaces', 'console']);

/** Locally administered QEMU prefix 52:54:00 + 3 bytes of sha256(name): stable across runs and hosts. */
export function macForName(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  const tail = [digest[0], digest[1], digest[2]].map((b) => b.toString(16).padStart(2, '0'));
  return ['52', '54', '00', ...tail].join(':');
}

/** "0-3,8,10-11" → [0,1,2,3,8,10,11] (the format of numactl, sysfs cpulist and virsh). */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`not a CPU list: '${text}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) cpus.push(c);
  }
  return cpus;
}

export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export interface PlanOptions {
  /** File the instances came from, for error messages (the testbed file or the spec). */
  sourceFile: string;
  /** Overlay directory when the VMs boot from a qcow2 overlay on the base image. */
  disk: { overlayDir: string } | null;
  /**
   * A libvirt network name (as before), the testbed file's parsed `guests.network` (see
   * `guestNetworkOf`), or null/'' for no NIC. User networking plans `sshPort: null`.
   */
  network: string | GuestNetwork | null;
  kernelBoot: KernelBoot | null;
  consoleDir: string | null;
}

/** The planned attachment of VM `name` (user networking: port not yet chosen). */
export function plannedNetwork(network: PlanOptions['network'], name: string): VmNetwork | null {
  if (network === null || network === '') return null;
  const mac = macForName(name);
  if (typeof network === 'string') return { kind: 'libvirt', name: network, mac };
  return network.kind === 'libvirt' ? { kind: 'libvirt', name: network.name, mac } : { kind: 'user', sshHost: network.sshHost, sshPort: null, mac };
}

/**
 * Where each VM runs. vCPUs are pinned one per host CPU of the instance's node; instances sharing a
 * node take CPUs in turn (the first from the start of the node's list, the next after it), wrapping
 * around when the node has fewer CPUs than the VMs together need (the paper's Fig. 8 puts both VMs
 * on one node). Throws ConfigError for a missing node or a VM larger than its node.
 */
export function planDomains(instances: readonly InstanceSpec[], nodes: readonly NodeSpec[], opts: PlanOptions): DomainSpec[] {
  const used = new Map<number, number>();
  return instances.map((inst, i) => {
    const key = `instances[${i}] (${inst.name})`;
    const node = nodes.find((n) => n.id === inst.node);
    if (!node) {
      throw new ConfigError(opts.sourceFile, `${key}.node`, `node ${inst.node} does not exist on this testbed (nodes: ${nodes.map((n) => n.id).join(', ') || 'none'})`);
    }
    if (node.cpus.length === 0) throw new ConfigError(opts.sourceFile, `${key}.node`, `node ${node.id} has no CPUs`);
    const nodeMiB = node.memoryGiB * 1024;
    if (inst.memoryMiB > nodeMiB) {
      throw new ConfigError(opts.sourceFile, `${key}.memoryMiB`, `${inst.memoryMiB} MiB is more than node ${node.id} has (${nodeMiB} MiB)`);
    }
    if (!Number.isInteger(inst.vcpus) || inst.vcpus < 1) throw new ConfigError(opts.sourceFile, `${key}.vcpus`, `must be a positive integer, got ${inst.vcpus}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(inst.name)) {
      throw new ConfigError(opts.sourceFile, `${key}.name`, 'VM names may contain only letters, digits, ".", "_" and "-"');
    }
    const offset = used.get(node.id) ?? 0;
    used.set(node.id, offset + inst.vcpus);
    const vcpuPins = Array.from({ length: inst.vcpus }, (_, v) => node.cpus[(offset + v) % node.cpus.length]);
    return {
      name: inst.name,
      node: node.id,
      vcpus: inst.vcpus,
      memoryMiB: inst.memoryMiB,
      vcpuPins,
      emulatorCpus: [...node.cpus],
      disk: opts.disk ? { overlayPath: join(opts.disk.overlayDir, `${inst.name}.qcow2`) } : null,
      network: plannedNetwork(opts.network, inst.name),
      kernelBoot: opts.kernelBoot,
      consoleLog: opts.consoleDir ? join(opts.consoleDir, `${inst.name}.console.log`) : null,
    };
  });
}

const esc = (s: string | number): string =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

function blocks(spec: DomainSpec): Record<string, string> {
  const pins = spec.vcpuPins.map((cpu, v) => `    <vcpupin vcpu='${v}' cpuset='${cpu}'/>`);
  const cputune = ['<cputune>', ...pins, `    <emulatorpin cpuset='${formatCpuList(spec.emulatorCpus)}'/>`, '  </cputune>'].join('\n');
  const numatune = `<numatune>\n    <memory mode='strict' nodeset='${spec.node}'/>\n  </numatune>`;
  const osBoot = spec.kernelBoot
    ? [`<kernel>${esc(spec.kernelBoot.kernel)}</kernel>`, `<initrd>${esc(spec.kernelBoot.initrd)}</initrd>`, `<cmdline>${esc(spec.kernelBoot.cmdline)}</cmdline>`].join('\n    ')
    : "<boot dev='hd'/>";
  const disks = spec.disk
    ? [
        "<disk type='file' device='disk'>",
        "      <driver name='qemu' type='qcow2'/>",
        `      <source file='${esc(spec.disk.overlayPath)}'/>`,
        "      <target dev='vda' bus='virtio'/>",
        '    </disk>',
      ].join('\n')
    : '';
  const interfaces = spec.network && spec.network.kind !== 'user'
    ? [
        "<interface type='network'>",
        `      <source network='${esc(spec.network.name)}'/>`,
        `      <mac address='${spec.network.mac}'/>`,
        "      <model type='virtio'/>",
        '    </interface>',
      ].join('\n')
    : '';
  const console = spec.consoleLog
    ? [
        "<serial type='file'>",
        `      <source path='${esc(spec.consoleLog)}'/>`,
        "      <target port='0'/>",
        '    </serial>',
        "    <console type='file'>",
        `      <source path='${esc(spec.consoleLog)}'/>`,
        "      <target type='serial' port='0'/>",
        '    </console>',
      ].join('\n')
    : "<serial type='pty'><target port='0'/></serial>\n    <console type='pty'><target type='serial' port='0'/></console>";
  return {
    name: esc(spec.name),
    memoryKiB: String(spec.memoryMiB * 1024),
    vcpus: String(spec.vcpus),
    cputune,
    numatune,
    osBoot,
    disks,
    interfaces,
    console,
  };
}

/** QEMU's `hostfwd` host address: IPv6 in brackets. */
const hostfwdAddress = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * PCI slot of the pass-through NIC. libvirt gives its own devices explicit addresses from slot 2
 * upwards but does not know about this one, and QEMU would put it on the first free slot before
 * libvirt's devices are placed ("slot 2 function 0 not available for virtio-blk-pci, in use by
 * virtio-net-pci"). Slot 0x1e is never auto-assigned by libvirt unless a VM has ~28 PCI devices
 * (on q35, 0x1f is the LPC bridge and 0x1e stays free as well).
 */
export const USER_NIC_PCI_SLOT = '0x1e';

/** The QEMU arguments of a user-networking NIC: netdev with the SSH forward, virtio-net device with the VM's MAC at a fixed PCI slot. */
export function userNetworkArgs(net: { sshHost: string; sshPort: number; mac: string }, pciBus = 'pci.0'): string[] {
  return ['-netdev', `user,id=nuksmnet0,hostfwd=tcp:${hostfwdAddress(net.sshHost)}:${net.sshPort}-:22`, '-device', `virtio-net-pci,netdev=nuksmnet0,mac=${net.mac},bus=${pciBus},addr=${USER_NIC_PCI_SLOT}`];
}

/** The root PCI bus name QEMU gives the template's machine type (q35: pcie.0, i440fx 'pc': pci.0). */
function rootPciBus(xml: string): string {
  const machine = /<type\b[^>]*\bmachine=['"]([^'"]+)['"]/.exec(xml)?.[1] ?? 'pc';
  return /q35/.test(machine) ? 'pcie.0' : 'pci.0';
}

/** First match of `re` outside XML comments (templates start with a comment that may mention tags). */
function indexOutsideComments(xml: string, re: RegExp): RegExpExecArray | null {
  const comments = [...xml.matchAll(/<!--[\s\S]*?-->/g)].map((m) => [m.index, m.index + m[0].length] as const);
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
  for (let m = g.exec(xml); m !== null; m = g.exec(xml)) {
    const at = m.index;
    if (!comments.some(([a, b]) => at >= a && at < b)) return m;
  }
  return null;
}

/**
 * Add QEMU command-line arguments to a rendered domain: `xmlns:qemu` on `<domain>` (unless the
 * template declares it) and the `<qemu:arg>`s in the template's own `<qemu:commandline>` or in a new
 * one before `</domain>`. libvirt has no element for a slirp port forward, hence the pass-through.
 */
export function addQemuArgs(xml: string, templateFile: string, args: readonly string[]): string {
  const open = indexOutsideComments(xml, /<domain\b[^>]*>/);
  if (!open) throw new ConfigError(templateFile, '<domain>', 'no <domain> element in the template');
  let out = xml;
  let shift = 0;
  if (!/\bxmlns:qemu\s*=/.test(open[0])) {
    const tag = open[0].replace(/\s*(\/?)>$/, ` xmlns:qemu='${QEMU_XMLNS}'$1>`);
    out = out.slice(0, open.index) + tag + out.slice(open.index + open[0].length);
    shift = tag.length - open[0].length;
  }
  const argLines = args.map((a) => `    <qemu:arg value='${esc(a)}'/>`).join('\n');
  const existing = indexOutsideComments(out.slice(open.index + shift), /<qemu:commandline\s*>/);
  if (existing) {
    const at = open.index + shift + existing.index + existing[0].length;
    return `${out.slice(0, at)}\n${argLines}${out.slice(at)}`;
  }
  const close = out.lastIndexOf('</domain>');
  if (close < 0) throw new ConfigError(templateFile, '</domain>', 'the template does not end its <domain> element');
  return `${out.slice(0, close)}  <qemu:commandline>\n${argLines}\n  </qemu:commandline>\n${out.slice(close)}`;
}

/**
 * Fill a template. Unknown or missing required placeholders are template errors (ConfigError).
 * A VM on QEMU user networking also gets its netdev/device pair in `<qemu:commandline>` (any
 * template works; `{{interfaces}}` renders empty for it).
 */
export function renderDomainXml(template: string, templateFile: string, spec: DomainSpec): string {
  const found = new Set([...template.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]));
  for (const p of found) {
    if (!KNOWN_PLACEHOLDERS.has(p)) throw new ConfigError(templateFile, `{{${p}}}`, `unknown placeholder (known: ${[...KNOWN_PLACEHOLDERS].join(', ')})`);
  }
  for (const p of REQUIRED_PLACEHOLDERS) {
    if (!found.has(p)) throw new ConfigError(templateFile, `{{${p}}}`, 'required placeholder missing: every VM must be named, sized and pinned');
  }
  if (spec.disk && !found.has('disks')) throw new ConfigError(templateFile, '{{disks}}', 'the VM has a disk overlay but the template has no {{disks}}');
  if (spec.network && spec.network.kind !== 'user' && !found.has('interfaces')) throw new ConfigError(templateFile, '{{interfaces}}', 'the VM has a network but the template has no {{interfaces}}');
  if (spec.kernelBoot && !found.has('osBoot')) throw new ConfigError(templateFile, '{{osBoot}}', 'kernel boot asked for but the template has no {{osBoot}}');
  const values = blocks(spec);
  const xml = template.replace(/\{\{(\w+)\}\}/g, (_, p: string) => values[p]);
  const net = spec.network;
  if (net?.kind !== 'user') return xml;
  if (net.sshPort === null) {
    throw new HarnessError('config', `VM ${spec.name}: user networking needs its SSH port before the domain is rendered (allocateLoopbackPort, then withSshPort)`, { vm: spec.name });
  }
  return addQemuArgs(xml, templateFile, userNetworkArgs({ sshHost: net.sshHost, sshPort: net.sshPort, mac: net.mac }, rootPciBus(xml)));
}

/** The spec with its user-networking SSH port set (a libvirt-network or NIC-less spec is returned unchanged). */
export function withSshPort(spec: DomainSpec, port: number): DomainSpec {
  if (spec.network?.kind !== 'user') return spec;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HarnessError('config', `VM ${spec.name}: bad SSH forward port ${port}`, { vm: spec.name });
  return { ...spec, network: { ...spec.network, sshPort: port } };
}

/** vm-templates/<name>.xml (name without extension, as in InstanceSpec.template). */
export async function loadTemplate(templatesDir: string, template: string): Promise<{ file: string; text: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(template)) throw new ConfigError(templatesDir, 'template', `bad template name '${template}'`);
  const file = join(templatesDir, template.endsWith('.xml') ? template : `${template}.xml`);
  try {
    return { file, text: await readFile(file, 'utf8') };
  } catch (err) {
    throw new ConfigError(file, 'template', `cannot read VM template: ${(err as Error).message}`);
  }
}
