/**
 * VM lifecycle through virsh: overlay → define → start → address → SSH, and back: shutdown (with a
 * destroy fallback) → undefine → remove overlay. Every wait has a timeout; `startVms` tears down
 * what it started when any VM fails, so a failed step leaves no domain behind.
 */
import { posix } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';
import type { DomainSpec } from './domain-xml.ts';
import type { Virsh } from './virsh.ts';

// timers/promises removes its abort listener when the timer fires (no listener build-up on long polls).
const sleep = (ms: number, signal?: AbortSignal) =>
  delay(ms, undefined, { signal }).catch(() => {
    throw new HarnessError('timeout', 'aborted while waiting for a VM');
  });

export interface VmTimeouts {
  startMs: number;
  shutdownMs: number;
  addressMs: number;
  sshMs: number;
}

/** qemu-img create -f qcow2 -b BASE -F qcow2 OVERLAY: a copy-on-write disk per VM per step. */
export async function createOverlay(exec: Executor, baseImage: string, overlayPath: string, timeoutMs = 60_000): Promise<void> {
  await exec.run(['mkdir', '-p', posix.dirname(overlayPath)], { timeoutMs: 10_000 });
  await exec.run(['rm', '-f', overlayPath], { timeoutMs: 10_000 });
  await exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', baseImage, '-F', 'qcow2', overlayPath], { timeoutMs });
}

/** IPv4 addresses from `virsh domifaddr` output ("vnet0  52:54:00:…  ipv4  192.168.122.5/24"). */
export function parseDomifaddr(stdout: string): string[] {
  return [...stdout.matchAll(/\bipv4\s+(\d+\.\d+\.\d+\.\d+)\/\d+/g)].map((m) => m[1]);
}

export class LibvirtVm {
  private defined = false;

  constructor(
    readonly virsh: Virsh,
    readonly spec: DomainSpec,
    readonly xml: string,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** Define from XML (written to a temp file on the libvirt host). A stale domain of the same name is removed first. */
  async define(): Promise<void> {
    const exec = this.virsh.exec;
    if ((await this.virsh.domainState(this.name)) !== null) await this.teardown();
    const mk = await exec.run(['mktemp', '--suffix=.xml'], { timeoutMs: 10_000 });
    const xmlPath = mk.stdout.trim();
    try {
      await exec.writeFile(xmlPath, this.xml, { timeoutMs: 10_000 });
      await this.virsh.run(['define', xmlPath], { failureClass: 'config' });
      this.defined = true;
    } finally {
      await exec.run(['rm', '-f', xmlPath], { timeoutMs: 10_000, allowFailure: true });
    }
  }

  async start(timeoutMs: number): Promise<void> {
    await this.virsh.run(['start', this.name], { timeoutMs, failureClass: 'boot' });
  }

  async state(): Promise<string | null> {
    return this.virsh.domainState(this.name);
  }

  /** Poll domifaddr (DHCP lease, then ARP) until the guest has an IPv4 address. */
  async waitForAddress(timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const source of ['lease', 'arp']) {
        const res = await this.virsh.run(['domifaddr', this.name, '--source', source], { allowFailure: true, timeoutMs: 15_000 });
        const addrs = parseDomifaddr(res.stdout);
        if (addrs.length > 0) return addrs[0];
      }
      await sleep(2000, signal);
    }
    throw new HarnessError('guest-unreachable', `VM ${this.name} got no IPv4 address within ${timeoutMs / 1000} s (domifaddr lease/arp)`, { vm: this.name });
  }

  /**
   * Wait until the guest's sshd sends its banner, probing from the libvirt host (the guest network
   * is usually only reachable from there). The address goes in as an argument, never into the script.
   */
  async waitForSsh(address: string, timeoutMs: number, port = 22, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const res = await this.virsh.exec.run(
        ['timeout', '5', 'bash', '-c', 'exec 3<>"/dev/tcp/$0/$1" && head -c 8 <&3', address, String(port)],
        { timeoutMs: 10_000, allowFailure: true },
      );
      if (res.exitCode === 0 && res.stdout.startsWith('SSH-')) return;
      last = res.stderr.trim();
      await sleep(2000, signal);
    }
    throw new HarnessError('guest-unreachable', `VM ${this.name}: no SSH banner from ${address}:${port} within ${timeoutMs / 1000} s (${last})`, { vm: this.name, address });
  }

  /** ACPI shutdown; destroy when the guest does not power off in time. Returns how it stopped. */
  async shutdown(timeoutMs: number): Promise<'not-running' | 'shutdown' | 'destroyed'> {
    const state = await this.state();
    if (state === null || state === 'shut off') return 'not-running';
    await this.virsh.run(['shutdown', this.name], { allowFailure: true });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = await this.state();
      if (s === null || s === 'shut off') return 'shutdown';
      await sleep(1000);
    }
    await this.virsh.run(['destroy', this.name], { allowFailure: true });
    const after = await this.state();
    if (after !== null && after !== 'shut off') throw new HarnessError('timeout', `VM ${this.name} still '${after}' after destroy`, { vm: this.name });
    return 'destroyed';
  }

  /** Immediate power-off (experiments do not need a clean guest shutdown). */
  async destroy(): Promise<void> {
    const state = await this.state();
    if (state !== null && state !== 'shut off') await this.virsh.run(['destroy', this.name], { allowFailure: true });
  }

  /** Stop (destroy) if running, undefine, and remove the overlay. Safe to call twice. */
  async teardown(opts: { graceful?: boolean; shutdownTimeoutMs?: number } = {}): Promise<void> {
    if (opts.graceful) await this.shutdown(opts.shutdownTimeoutMs ?? 60_000);
    else await this.destroy();
    if ((await this.state()) !== null) await this.virsh.run(['undefine', this.name], { allowFailure: true });
    this.defined = false;
    if (this.spec.disk) await this.virsh.exec.run(['rm', '-f', this.spec.disk.overlayPath], { timeoutMs: 10_000, allowFailure: true });
  }

  get isDefined(): boolean {
    return this.defined;
  }
}

export interface StartVmsOptions {
  baseImage: string | null;
  timeouts: VmTimeouts;
  /** Wait for an address and SSH (guests with a network and sshd). */
  waitForGuest: boolean;
  /** Called after each VM is up, e.g. to verify placement; a throw tears everything down. */
  afterStart?: (vm: LibvirtVm, address: string | null) => Promise<void>;
  /** Seconds to wait before starting each VM, relative to the call (the scenario's stagger). */
  startAtS?: (vm: LibvirtVm) => number;
  signal?: AbortSignal;
}

export interface StartedVm {
  vm: LibvirtVm;
  address: string | null;
}

/** Define and start VMs in order; on any failure every VM this call touched is torn down. */
export async function startVms(virsh: Virsh, domains: readonly { spec: DomainSpec; xml: string }[], opts: StartVmsOptions): Promise<StartedVm[]> {
  const t0 = Date.now();
  const touched: LibvirtVm[] = [];
  const started: StartedVm[] = [];
  let ok = false;
  try {
    for (const d of domains) {
      const vm = new LibvirtVm(virsh, d.spec, d.xml);
      touched.push(vm);
      const waitMs = (opts.startAtS?.(vm) ?? 0) * 1000 - (Date.now() - t0);
      if (waitMs > 0) await sleep(waitMs, opts.signal);
      if (d.spec.disk) {
        if (!opts.baseImage) throw new HarnessError('config', `VM ${d.spec.name} needs a disk overlay but no base image is configured`);
        await createOverlay(virsh.exec, opts.baseImage, d.spec.disk.overlayPath);
      }
      await vm.define();
      await vm.start(opts.timeouts.startMs);
      let address: string | null = null;
      if (opts.waitForGuest) {
        address = await vm.waitForAddress(opts.timeouts.addressMs, opts.signal);
        await vm.waitForSsh(address, opts.timeouts.sshMs, 22, opts.signal);
      }
      await opts.afterStart?.(vm, address);
      started.push({ vm, address });
    }
    ok = true;
    return started;
  } finally {
    if (!ok) await teardownVms(touched);
  }
}

/** Tear down every VM, continuing past individual failures; throws the first error at the end. */
export async function teardownVms(vms: readonly LibvirtVm[]): Promise<void> {
  let first: unknown = null;
  for (const vm of [...vms].reverse()) {
    try {
      await vm.teardown();
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}
