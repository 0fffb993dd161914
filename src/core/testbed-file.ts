/**
 * The shape of a testbed file (YAML under experiments/testbeds/), after validation by
 * src/campaign/testbed-file.ts. Testbed drivers are constructed from this.
 */
import type { KernelMode } from './scenario.ts';

export type HostAccess =
  | { kind: 'local' }
  | {
      kind: 'ssh';
      host: string;
      port: number;
      user: string;
      identityFile: string;
      /** Host keys are checked against this file; there is no accept-anything mode. */
      knownHostsFile: string;
      /** Explicit opt-in: record the key on first contact, then enforce it. */
      pinHostKeyOnFirstUse: boolean;
    };

export interface NodeSpec {
  id: number;
  cpus: number[];
  memoryGiB: number;
}

export interface KernelSpec {
  /** GRUB menu entry (title or id) for grub-reboot. */
  bootEntry: string;
  /** Expected `uname -r` after boot. */
  release: string;
  /** KSM knobs this kernel needs written (e.g. nuKSM: smart_ksm=1). */
  ksmKnobs: Record<string, string>;
}

export interface ModeSpec {
  /**
   * Names of entries in `kernels` the mode runs on (the YAML `kernel:` takes one name or a
   * non-empty list). Usually one; several when the same mode is compared across kernels (the
   * emulated testbed runs stock KSM on both Debian kernels). The planner makes one step per kernel.
   */
  kernels: string[];
  /** Extra KSM knobs for this mode on top of the kernel's. */
  ksmKnobs: Record<string, string>;
  /**
   * Who places merged pages: 'kernel' (the mode's kernel does, e.g. a nuKSM kernel) or 'userspace' (the
   * placement engine of src/host/placement runs next to stock ksmd during the step; nuksm-fair/-priority only).
   */
  placement?: 'kernel' | 'userspace';
}

/**
 * How the VMs are networked (testbed-file key `guests.network`):
 * - `libvirt`: a NIC on a libvirt network (`<interface type='network'>`); the guest's address comes
 *   from libvirt (DHCP lease / ARP) and SSH is on its port 22.
 * - `user`: QEMU user networking (no bridge, no address on the host); each VM's sshd is forwarded to
 *   its own TCP port on `sshHost`, a loopback address of the libvirt host (127.0.0.0/8 or ::1).
 */
export type GuestNetwork = { kind: 'libvirt'; name: string } | { kind: 'user'; sshHost: string };

export interface GuestAccess {
  user: string;
  /** Relative paths in the file are resolved against its directory by the loader (absolute here, `~/` kept). */
  identityFile: string;
  knownHostsFile: string;
  /**
   * Compatibility view of `networking`: the libvirt network's name, or '' when the guests use QEMU
   * user networking (or, in a hand-built TestbedFile, have no network). New code reads `networking`
   * (through `guestNetworkOf` in src/host/libvirt/network.ts, which also handles files without it).
   */
  network: string;
  /** How the VMs are networked; always set by the loader. Optional only for TestbedFile literals built in code. */
  networking?: GuestNetwork;
  /** qcow2 base image the per-VM overlays are created on. */
  baseImage: string;
  overlayDir: string;
}

export interface TimeoutsSpec {
  bootS: number;
  sshConnectS: number;
  commandS: number;
  vmStartS: number;
  vmShutdownS: number;
}

export interface TestbedFile {
  /** Path the file was read from (for error messages and manifests). */
  file: string;
  name: string;
  kind: 'model' | 'emulated' | 'physical';
  host: HostAccess;
  nodes: NodeSpec[];
  kernels: Record<string, KernelSpec>;
  modes: Partial<Record<KernelMode, ModeSpec>>;
  /** Key into the perf event-set data file ('skylake-sp', 'cascadelake-sp', 'zen3', 'zen4', 'none'). */
  perfEventSet: string;
  guests: GuestAccess | null;
  libvirtUri: string;
  timeouts: TimeoutsSpec;
  /** How a campaign continues after a reboot of the host. */
  resume: 'systemd' | 'cron' | 'none';
  /** Emulated testbed only: QEMU machine shape. */
  emulated: {
    cpusPerNode: number;
    memoryMiBPerNode: number;
    imageCacheDir: string;
    sshPort: number;
    /** True in the copy of the file inside the machine, where the campaign runs (see src/campaign/in-machine.ts). */
    inside: boolean;
  } | null;
}
