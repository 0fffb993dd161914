/**
 * Guest networking as the testbed file expresses it (`guests.network`): a libvirt network, or QEMU
 * user networking with each VM's sshd forwarded to its own TCP port on a loopback address of the
 * libvirt host. User networking creates no bridge and no host address (QEMU's 10.0.2.0/24 exists only
 * inside its user-mode stack); the forward listens on loopback only, so nuksm must run on the
 * libvirt host (`host: { kind: local }`) to reach it.
 *
 * Call order for one VM in a step (the driver's start path):
 *
 *   1. plan, before touching the host:
 *        planDomains(vms, nodes, { …, network: guestNetworkOf(guests) })
 *      (user networking plans `sshPort: null`; a libvirt network plans its name and MAC as before)
 *   2. at start, per VM, when `needsSshPort(spec.network)`:
 *        const port = await allocateLoopbackPort(hostExec, spec.network.sshHost, { exclude: portsOfThisStep });
 *        spec = withSshPort(spec, port)          // or: { ...spec, network: vmNetworkFor(guests, spec.name, port) }
 *   3. xml = renderDomainXml(template, file, spec); virsh define; virsh start
 *      If start fails and `isHostfwdConflict(err)` (another process took the port between 2 and 3),
 *      undefine, allocate a new port and retry once.
 *   4. endpoint = needsLibvirtAddress(spec.network)
 *        ? sshEndpointOf(spec.network, await vm.waitForAddress(bootMs))
 *        : sshEndpointOf(spec.network)           // no address wait: 127.0.0.1:<port>
 *      then vm.waitForSsh(endpoint.host, bootMs, endpoint.port) and SSH to the endpoint.
 *
 * The port race: allocateLoopbackPort binds port 0 on the host, reads the port the kernel chose and
 * closes the socket; QEMU binds it a moment later when the domain starts. Anything on the host may
 * take the port in between (an ephemeral port of an outgoing connection, another step). It shows
 * up as `virsh start` failing with QEMU's "Could not set up host forwarding rule
 * 'tcp:127.0.0.1:PORT-:22'" — never as a guest reachable on a wrong port — hence the one retry.
 */
import { HarnessError } from '../../core/errors.ts';
import type { GuestAccess, GuestNetwork } from '../../core/testbed-file.ts';
import type { Executor } from '../exec/types.ts';
import { macForName, type VmNetwork } from './domain-xml.ts';

/**
 * The testbed file's guest networking. Files loaded by the loader carry `networking`; a TestbedFile
 * built in code may only have the older `network` string (a libvirt network name; '' = no NIC → null).
 */
export function guestNetworkOf(guests: GuestAccess): GuestNetwork | null {
  if (guests.networking) return guests.networking;
  return guests.network ? { kind: 'libvirt', name: guests.network } : null;
}

/**
 * What planDomains/renderDomainXml need for VM `name` (DomainSpec.network): its libvirt NIC, or its
 * user-networking NIC with `sshPort` forwarded (null = not allocated yet; rendering refuses it).
 */
export function vmNetworkFor(guests: GuestAccess, name: string, sshPort: number | null = null): VmNetwork | null {
  const net = guestNetworkOf(guests);
  if (net === null) return null;
  const mac = macForName(name);
  return net.kind === 'libvirt' ? { kind: 'libvirt', name: net.name, mac } : { kind: 'user', sshHost: net.sshHost, sshPort, mac };
}

/** True when the VM's SSH endpoint is a loopback forward whose port must be allocated before rendering. */
export function needsSshPort(network: VmNetwork | null): network is Extract<VmNetwork, { kind: 'user' }> {
  return network?.kind === 'user';
}

/** True when the VM's SSH endpoint is its address on a libvirt network (wait for it with `waitForAddress`). */
export function needsLibvirtAddress(network: VmNetwork | null): boolean {
  return network !== null && network.kind !== 'user';
}

/**
 * Where the harness reaches the VM's sshd: the loopback forward for user networking (no address
 * wait), else the libvirt-network address (`addressFromLibvirt`, from `waitForAddress`) on port 22.
 */
export function sshEndpointOf(network: VmNetwork | null, addressFromLibvirt?: string): { host: string; port: number } {
  if (network?.kind === 'user') {
    if (network.sshPort === null) throw new HarnessError('config', 'user networking: the VM has no SSH forward port yet (allocateLoopbackPort + withSshPort before starting it)');
    return { host: network.sshHost, port: network.sshPort };
  }
  if (network === null) throw new HarnessError('config', 'the VM has no network: there is no SSH endpoint');
  if (!addressFromLibvirt) throw new HarnessError('config', `VM on libvirt network '${network.name}': the SSH endpoint needs its address (waitForAddress)`);
  return { host: addressFromLibvirt, port: 22 };
}

// Binds port 0 on the address, prints the port the kernel chose, closes. No SO_REUSEADDR: a port in
// use on that address (or on the wildcard address) is never returned.
const FREE_PORT_PY = [
  'import socket, sys',
  'h = sys.argv[1]',
  's = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET, socket.SOCK_STREAM)',
  's.bind((h, 0))',
  'print(s.getsockname()[1])',
  's.close()',
].join('\n');

/**
 * A TCP port free right now on `host` (a loopback address) of the machine `exec` runs commands on:
 * the libvirt host, where QEMU will listen. `exclude`: ports already handed to other VMs of the same
 * step (the kernel may hand out a just-closed port again). See the header for the race.
 */
export async function allocateLoopbackPort(exec: Executor, host: string, opts: { exclude?: Iterable<number>; timeoutMs?: number } = {}): Promise<number> {
  const exclude = new Set(opts.exclude ?? []);
  for (let attempt = 0; attempt < 8; attempt++) {
    const res = await exec.run(['python3', '-c', FREE_PORT_PY, host], { timeoutMs: opts.timeoutMs ?? 15_000, allowFailure: true });
    if (res.exitCode !== 0) {
      throw new HarnessError('config', `cannot take a free TCP port on ${host} of ${exec.target} (python3 -c bind): ${res.stderr.trim().split('\n').pop() ?? `exit ${res.exitCode}`}`, { host });
    }
    const port = Number(res.stdout.trim());
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HarnessError('config', `port probe on ${exec.target} printed '${res.stdout.trim()}'`, { host });
    if (!exclude.has(port)) return port;
  }
  throw new HarnessError('config', `no free TCP port on ${host} of ${exec.target} outside ${[...exclude].join(', ')} after 8 tries`, { host });
}

/** Did `virsh start` fail because QEMU could not bind the SSH forward (the port was taken)? */
export function isHostfwdConflict(err: unknown): boolean {
  const text = err instanceof HarnessError ? `${err.message}\n${String(err.details.stderr ?? '')}` : err instanceof Error ? err.message : String(err);
  return /Could not set up host forwarding rule/i.test(text);
}
