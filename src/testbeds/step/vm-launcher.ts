/**
 * libvirt VMs as instances: overlay on the base image → define → start → SSH endpoint → SSH up →
 * placement verified (vCPU pins, emulator pin, memory on the node) → QEMU reniced → SSH login
 * checked against the pinned host key. Names of the domain, its overlay and its console log carry
 * the attempt's step tag, so a late teardown of one attempt can never touch another's VM, and each
 * is written to the ledger before it is created. stop(): the console log is copied into the raw
 * directory, the domain destroyed and undefined, the overlay removed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../../core/errors.ts';
import type { InstanceSpec } from '../../core/scenario.ts';
import type { GuestAccess, NodeSpec } from '../../core/testbed-file.ts';
import { SshExecutor } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { loadTemplate, planDomains, renderDomainXml, type DomainSpec, type KernelBoot } from '../../host/libvirt/domain-xml.ts';
import { allocateLoopbackPort, isHostfwdConflict, needsSshPort, sshEndpointOf, vmNetworkFor } from '../../host/libvirt/network.ts';
import { DEFAULT_MAX_OFF_NODE_PCT, reniceProcess, verifyPlacement } from '../../host/libvirt/placement.ts';
import type { Virsh } from '../../host/libvirt/virsh.ts';
import { LibvirtVm } from '../../host/libvirt/vm.ts';
import type { InstanceLauncher, LaunchContext, LaunchedInstance } from './types.ts';
import { wrapPhase } from './process-launcher.ts';

/** How the harness reaches a guest's sshd, and what the domain needs for it. */
export interface GuestNetworking {
  /** Fill the domain's network attachment for this VM (e.g. a loopback port forward). */
  attach(spec: DomainSpec, instance: InstanceSpec): Promise<DomainSpec>;
  /** Where the guest's sshd answers once the domain runs. */
  endpoint(vm: LibvirtVm, spec: DomainSpec, instance: InstanceSpec, timeoutMs: number, signal: AbortSignal): Promise<{ host: string; port: number }>;
  /** A failed `virsh start` worth one retry with a fresh attach (a forward port taken meanwhile). */
  retryStart?: (err: unknown) => boolean;
}

/**
 * Networking as the testbed file's `guests.network` says (src/host/libvirt/network.ts): a libvirt
 * network (the guest's DHCP address, port 22), or QEMU user networking with the guest's sshd
 * forwarded to a free port on a loopback address of the libvirt host (no address wait).
 */
export function fileNetworking(guests: GuestAccess, exec: Executor): GuestNetworking {
  const taken = new Set<number>();
  return {
    attach: async (spec) => {
      const net = vmNetworkFor(guests, spec.name);
      if (!needsSshPort(net)) return { ...spec, network: net };
      const port = await allocateLoopbackPort(exec, net.sshHost, { exclude: taken });
      taken.add(port);
      return { ...spec, network: { ...net, sshPort: port } };
    },
    // A loopback forward needs no address wait; otherwise the guest's address comes from libvirt
    // (a VM without a NIC never gets one and fails as guest-unreachable at the boot deadline).
    endpoint: async (vm, spec, _instance, timeoutMs, signal) =>
      needsSshPort(spec.network) ? sshEndpointOf(spec.network) : { host: await vm.waitForAddress(timeoutMs, signal), port: 22 },
    retryStart: isHostfwdConflict,
  };
}

export interface VmLauncherOptions {
  exec: Executor;
  virsh: Virsh;
  guests: GuestAccess;
  nodes: readonly NodeSpec[];
  templatesDir: string;
  networking: GuestNetworking;
  timeouts: { bootS: number; sshConnectS: number; commandS: number; vmStartS: number };
  /** Boot guests with this kernel/initrd instead of their disk's bootloader (tests). */
  kernelBoot?: KernelBoot | null;
  maxOffNodePct?: number;
  /** Roots inside the guests (the guest image pre-builds the workloads there). */
  guestInstallRoot: string;
  guestCacheDir: string;
  guestWorkRoot: string;
  /** Resolves `~/` in key paths. */
  expandPath: (p: string) => string;
}

export class VmLauncher implements InstanceLauncher {
  readonly kind = 'vm' as const;
  constructor(private readonly o: VmLauncherOptions) {}

  /** Node capacity, names and pins: refused before anything starts. */
  check(instances: readonly InstanceSpec[], sourceFile: string): void {
    this.plan(instances, sourceFile);
  }

  private plan(instances: readonly InstanceSpec[], sourceFile: string): DomainSpec[] {
    return planDomains(instances.filter((i) => i.kind === 'vm'), this.o.nodes, {
      sourceFile,
      disk: this.o.kernelBoot ? null : { overlayDir: this.o.guests.overlayDir },
      network: null,
      kernelBoot: this.o.kernelBoot ?? null,
      consoleDir: this.o.guests.overlayDir,
    });
  }

  async launch(inst: InstanceSpec, ctx: LaunchContext): Promise<LaunchedInstance> {
    const o = this.o;
    // Pins for this VM as the whole scenario would give them (VMs sharing a node take CPUs in turn).
    const base = this.plan(ctx.instances, ctx.stepTag).find((d) => d.name === inst.name)!;
    const domName = `nuksm-${ctx.stepTag}-${inst.name}`.slice(0, 120);
    let spec: DomainSpec = {
      ...base,
      name: domName,
      disk: base.disk ? { overlayPath: join(o.guests.overlayDir, `${domName}.qcow2`) } : null,
      consoleLog: join(o.guests.overlayDir, `${domName}.console.log`),
    };
    spec = await o.networking.attach(spec, inst);
    const template = await loadTemplate(o.templatesDir, inst.template ?? 'guest-kvm');
    let vm = new LibvirtVm(o.virsh, spec, renderDomainXml(template.text, template.file, spec));
    // Written down before creation: a kill from here on is undone on resume.
    ctx.ledger.record({ kind: 'domain', name: domName, uri: o.virsh.uri });
    if (spec.disk) ctx.ledger.record({ kind: 'file', path: spec.disk.overlayPath });
    ctx.ledger.record({ kind: 'file', path: spec.consoleLog! });
    let guest: SshExecutor | null = null;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await guest?.close().catch(() => undefined);
      const console = await o.exec.readFile(spec.consoleLog!, { timeoutMs: 15_000 }).catch(() => null);
      if (console !== null) {
        await mkdir(ctx.rawDir, { recursive: true }).catch(() => undefined);
        await writeFile(join(ctx.rawDir, `${inst.name}.console.log`), console).catch(() => undefined);
      }
      await vm.teardown();
      await o.exec.run(['rm', '-f', spec.consoleLog!], { timeoutMs: 10_000, allowFailure: true });
    };
    try {
      const t = o.timeouts;
      await o.exec.run(['mkdir', '-p', o.guests.overlayDir], { timeoutMs: 10_000 });
      if (spec.disk) {
        await o.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', o.guests.baseImage, '-F', 'qcow2', spec.disk.overlayPath], { timeoutMs: t.commandS * 1000 });
      }
      await vm.define();
      try {
        await vm.start(t.vmStartS * 1000);
      } catch (err) {
        if (!o.networking.retryStart?.(err)) throw err;
        ctx.log.warn({ vm: domName, err: String(err) }, 'VM start failed on its network attachment; once more with a new one');
        await vm.teardown();
        spec = await o.networking.attach({ ...spec, network: null }, inst);
        vm = new LibvirtVm(o.virsh, spec, renderDomainXml(template.text, template.file, spec));
        if (spec.disk) await o.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', o.guests.baseImage, '-F', 'qcow2', spec.disk.overlayPath], { timeoutMs: t.commandS * 1000 });
        await vm.define();
        await vm.start(t.vmStartS * 1000);
      }
      const endpoint = await o.networking.endpoint(vm, spec, inst, t.bootS * 1000, ctx.signal);
      await vm.waitForSsh(endpoint.host, t.bootS * 1000, endpoint.port, ctx.signal);
      const report = await verifyPlacement(o.virsh, spec, o.maxOffNodePct ?? DEFAULT_MAX_OFF_NODE_PCT);
      const qemuPid = report.readback.qemuPid;
      ctx.log.info({ vm: inst.name, domain: domName, endpoint, offNodePct: report.offNodePct, pid: qemuPid }, 'VM up and placed');
      if (inst.nice !== 0) await reniceProcess(o.exec, qemuPid, inst.nice);
      guest = new SshExecutor({
        host: endpoint.host,
        port: endpoint.port,
        username: o.guests.user,
        privateKeyPath: o.expandPath(o.guests.identityFile),
        knownHostsFile: o.expandPath(o.guests.knownHostsFile),
        hostKeyPolicy: 'strict',
        defaultTimeoutMs: t.commandS * 1000,
        connectTimeoutMs: t.sshConnectS * 1000,
      });
      // Log in once now: a wrong key or host key fails the step here, not in the middle of a workload.
      const guestKernel = (await guest.run(['uname', '-r'], { timeoutMs: t.sshConnectS * 1000 + 30_000 })).stdout.trim();
      ctx.log.info({ vm: inst.name, guestKernel }, 'guest SSH login works');
      const marker = `${ctx.stepTag}/${inst.name}`;
      const exec = guest;
      return {
        spec: inst,
        exec,
        installRoot: o.guestInstallRoot,
        cacheDir: o.guestCacheDir,
        workDir: `${o.guestWorkRoot}/${ctx.stepTag}`,
        residentPid: qemuPid,
        wrap: (phase) => wrapPhase({ spec: inst, marker }, phase),
        memoryPid: async () => qemuPid,
        stop,
      };
    } catch (err) {
      await stop().catch((e: unknown) => ctx.log.warn({ err: String(e), vm: domName }, 'teardown of a VM that failed to start failed'));
      if (err instanceof HarnessError) throw err;
      throw new HarnessError('guest-unreachable', `VM ${inst.name}: ${(err as Error).message}`, {}, { cause: err });
    }
  }
}
