/**
 * Testbed files (experiments/testbeds/*.yaml) → TestbedFile, validated with zod plus the
 * cross-key checks zod cannot express (modes naming a kernel that has no boot entry, CPUs in
 * two nodes, …). Every problem is a ConfigError naming the file and the key path.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { KERNEL_MODES } from '../core/scenario.ts';
import type { GuestNetwork, TestbedFile } from '../core/testbed-file.ts';
import { durationS, parseWith, readYaml } from './config-error.ts';
import { knobsSchema } from './spec.ts';

const knobs = knobsSchema;

/**
 * What `uname -r` can print: the kernel's release string is at most 64 characters (utsname), one
 * word of printable ASCII; a Linux release starts with its version number (checked for the testbeds
 * that boot kernels).
 */
const RELEASE = /^[!-.0-~]{1,64}$/;

const hostSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }).strict(),
  z
    .object({
      kind: z.literal('ssh'),
      host: z
        .string()
        .min(1)
        .refine((h) => !h.includes('@'), { message: "a host name or address only: the user goes in 'host.user', not 'user@host'" }),
      port: z.number().int().min(1).max(65535).default(22),
      user: z.string().min(1),
      identityFile: z.string().min(1),
      knownHostsFile: z.string().min(1),
      pinHostKeyOnFirstUse: z.boolean().default(false),
    })
    .strict(),
]);

const nodeSchema = z
  .object({
    id: z.number().int().min(0),
    cpus: z.array(z.number().int().min(0)).min(1),
    memoryGiB: z.number().positive(),
  })
  .strict();

const kernelSchema = z
  .object({
    bootEntry: z.string().min(1, 'a kernel needs a GRUB boot entry'),
    release: z.string().min(1).regex(RELEASE, "not a release 'uname -r' can print: 1–64 printable characters, no spaces or '/'"),
    ksmKnobs: knobs,
  })
  .strict();

/** `kernel: name` or `kernel: [name, …]` → `kernels: [name, …]` (one representation inside). */
const modeSchema = z
  .object({
    kernel: z.union([z.string().min(1), z.array(z.string().min(1)).min(1, 'a mode needs at least one kernel')]),
    ksmKnobs: knobs,
    /** Who places merged pages: the mode's kernel, or the user-space engine (src/host/placement) on a stock kernel. */
    placement: z.enum(['kernel', 'userspace']).default('kernel'),
  })
  .strict()
  .transform(({ kernel, ksmKnobs, placement }) => ({ kernels: typeof kernel === 'string' ? [kernel] : kernel, ksmKnobs, placement }));

/**
 * Loopback only: an address in 127.0.0.0/8 or ::1, written as an address (a name such as
 * `localhost` may resolve to either family). The forwards listen on the libvirt host, and nothing
 * the harness starts may listen on a network reachable from elsewhere.
 */
export function isLoopbackAddress(host: string): boolean {
  if (host === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

const userNetworkSchema = z
  .object({
    user: z
      .object({
        sshHost: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .refine(isLoopbackAddress, (h) => ({
            message: `'${h}' is not a loopback address: each VM's sshd is forwarded to a port on this address of the libvirt host, and only loopback (127.0.0.0/8 or ::1) is allowed so no guest port is exposed to a network`,
          })),
      })
      .strict()
      .nullable()
      .default({})
      .transform((u) => u ?? { sshHost: '127.0.0.1' }),
  })
  .strict()
  .transform(({ user }): GuestNetwork => ({ kind: 'user', sshHost: user.sshHost }));

const libvirtNetworkSchema = z
  .object({ libvirt: z.string().min(1, 'the name of a libvirt network') })
  .strict()
  .transform(({ libvirt }): GuestNetwork => ({ kind: 'libvirt', name: libvirt }));

/**
 * `guests.network`: a libvirt network's name (plain string, as before), `{ libvirt: NAME }`, or
 * `{ user: { sshHost: 127.0.0.1 } }` (QEMU user networking, SSH forwarded to a loopback port per VM;
 * `{ user: {} }` means 127.0.0.1). Dispatched by shape so each error names the exact key.
 */
const networkSchema = z.unknown().transform((v, ctx): GuestNetwork => {
  const schema =
    typeof v === 'string'
      ? z
          .string()
          .min(1, 'the name of a libvirt network')
          .transform((name): GuestNetwork => ({ kind: 'libvirt', name }))
      : v !== null && typeof v === 'object' && !Array.isArray(v) && 'user' in v
        ? userNetworkSchema
        : v !== null && typeof v === 'object' && !Array.isArray(v) && 'libvirt' in v
          ? libvirtNetworkSchema
          : null;
  if (schema === null) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: "expected a libvirt network name, '{ libvirt: NAME }' or '{ user: { sshHost: 127.0.0.1 } }' (QEMU user networking with SSH forwarded to loopback)" });
    return z.NEVER;
  }
  const r = schema.safeParse(v);
  if (!r.success) {
    for (const issue of r.error.issues) ctx.addIssue(issue);
    return z.NEVER;
  }
  return r.data;
});

const guestsSchema = z
  .object({
    user: z.string().min(1),
    identityFile: z.string().min(1),
    knownHostsFile: z.string().min(1),
    network: networkSchema,
    baseImage: z.string().min(1),
    overlayDir: z.string().min(1),
  })
  .strict();

const timeoutsSchema = z
  .object({
    bootS: durationS().default(600),
    sshConnectS: durationS().default(30),
    commandS: durationS().default(600),
    vmStartS: durationS().default(180),
    vmShutdownS: durationS().default(120),
  })
  .strict();

export const testbedFileSchema = z
  .object({
    name: z.string().min(1),
    kind: z.enum(['model', 'emulated', 'physical']),
    host: hostSchema.default({ kind: 'local' }),
    nodes: z.array(nodeSchema).min(1),
    kernels: z.record(z.string(), kernelSchema),
    modes: z.record(z.enum(KERNEL_MODES), modeSchema).default({}),
    perfEventSet: z.enum(['skylake-sp', 'cascadelake-sp', 'zen3', 'zen4', 'none']).default('none'),
    guests: guestsSchema.nullable().default(null),
    libvirtUri: z.string().default('qemu:///system'),
    timeouts: timeoutsSchema.default({}),
    resume: z.enum(['systemd', 'cron', 'none']).default('none'),
    emulated: z
      .object({
        cpusPerNode: z.number().int().positive(),
        memoryMiBPerNode: z.number().int().positive(),
        imageCacheDir: z.string().min(1),
        sshPort: z.number().int().min(1).max(65535),
        /** Set in the copy of the file the harness writes into the machine: nuksm runs inside it. */
        inside: z.boolean().default(false),
      })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

/** Modes whose placement the user-space engine can do (fair and priority; the forest is a kernel data structure). */
const USERSPACE_PLACEMENT_MODES: ReadonlySet<string> = new Set(['nuksm-fair', 'nuksm-priority']);

/**
 * Checks zod cannot express; each names the offending key. `listed`: modes whose YAML `kernel`
 * was a list (their errors name `modes.<m>.kernel[i]`, a single name `modes.<m>.kernel`).
 */
export function checkTestbedFile(tb: TestbedFile, listed: ReadonlySet<string> = new Set()): void {
  const f = tb.file;
  const ids = new Set<number>();
  const cpuOwner = new Map<number, number>();
  tb.nodes.forEach((node, i) => {
    if (ids.has(node.id)) throw new ConfigError(f, `nodes[${i}].id`, `duplicate node id ${node.id}`);
    ids.add(node.id);
    node.cpus.forEach((cpu, j) => {
      const owner = cpuOwner.get(cpu);
      if (owner !== undefined) throw new ConfigError(f, `nodes[${i}].cpus[${j}]`, `CPU ${cpu} is already listed in node ${owner}`);
      cpuOwner.set(cpu, node.id);
    });
  });
  for (const [mode, spec] of Object.entries(tb.modes)) {
    if (!spec) continue;
    spec.kernels.forEach((kernel, i) => {
      // A single name is `modes.<m>.kernel`; a list entry is `modes.<m>.kernel[i]`.
      const key = listed.has(mode) || spec.kernels.length > 1 ? `modes.${mode}.kernel[${i}]` : `modes.${mode}.kernel`;
      if (!Object.hasOwn(tb.kernels, kernel)) {
        throw new ConfigError(f, key, `kernel '${kernel}' has no entry under 'kernels' (no boot entry); known: ${Object.keys(tb.kernels).join(', ') || 'none'}`);
      }
      if (spec.kernels.indexOf(kernel) !== i) throw new ConfigError(f, key, `kernel '${kernel}' listed twice`);
    });
    if (spec.placement === 'userspace') {
      if (!USERSPACE_PLACEMENT_MODES.has(mode)) {
        throw new ConfigError(f, `modes.${mode}.placement`, `'userspace' places merged pages with nuKSM's fair or priority policy: only modes ${[...USERSPACE_PLACEMENT_MODES].join(', ')} can use it`);
      }
      if (tb.kind === 'model') throw new ConfigError(f, `modes.${mode}.placement`, "the model testbed simulates nuKSM itself: 'userspace' placement needs a real kernel (kind emulated or physical)");
    }
  }
  checkBaselineModes(tb);
  if (tb.kind !== 'model') {
    for (const [name, k] of Object.entries(tb.kernels)) {
      if (!/^[0-9]/.test(k.release)) throw new ConfigError(f, `kernels.${name}.release`, `'${k.release}' is not a Linux release as 'uname -r' prints it (it starts with the version number, e.g. 6.1.0-13-amd64)`);
    }
  }
  if (tb.resume !== 'none' && tb.host.kind !== 'local') {
    // The hooks resume the runner on the host that reboots; a controller reaching the host over
    // SSH waits for the reboot itself.
    throw new ConfigError(f, 'resume', `'${tb.resume}' installs hooks on the machine running nuksm, so it needs host.kind 'local' (this host is reached over SSH); use 'none'`);
  }
  // A physical testbed without 'guests' runs bare-metal instances only (Fig. 9); a spec with VMs
  // is refused against it at plan time (src/campaign/plan.ts checkSpecAgainstTestbed).
  const net = tb.guests?.networking;
  if (net?.kind === 'user' && tb.host.kind !== 'local') {
    // The forwards listen on the libvirt host's loopback, which a controller elsewhere cannot reach (no SSH jump support).
    throw new ConfigError(f, 'guests.network.user', `the SSH forwards listen on ${net.sshHost} of the host reached over SSH (${tb.host.host}), which this machine cannot reach: run nuksm on that host (host: { kind: local }) or use a libvirt network`);
  }
  if (tb.kind === 'emulated' && tb.emulated === null) {
    throw new ConfigError(f, 'emulated', "an emulated testbed needs the 'emulated' machine shape");
  }
  if (tb.kind !== 'emulated' && tb.emulated !== null) {
    throw new ConfigError(f, 'emulated', `only allowed for kind 'emulated' (this is '${tb.kind}')`);
  }
}

const GUEST_PATH_KEYS = ['identityFile', 'knownHostsFile', 'baseImage', 'overlayDir'] as const;

/**
 * Relative paths under `guests` are relative to the testbed file's directory (so a file can point
 * at `../../.cache/guest/current/disk.qcow2` in its checkout); `~/…` and absolute paths are kept.
 * With the host reached over SSH, baseImage and overlayDir are paths on that host and must be absolute.
 */
function resolveGuestPaths(file: string, tb: TestbedFile): void {
  const g = tb.guests;
  if (!g) return;
  const base = dirname(resolve(file));
  for (const key of GUEST_PATH_KEYS) {
    const p = g[key];
    if (isAbsolute(p) || p === '~' || p.startsWith('~/')) continue;
    if (tb.host.kind !== 'local' && (key === 'baseImage' || key === 'overlayDir')) {
      throw new ConfigError(file, `guests.${key}`, `'${p}' is relative, but it is a path on the host reached over SSH (${tb.host.host}): write an absolute path`);
    }
    g[key] = resolve(base, p);
  }
}

const expandHome = (p: string): string => (p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);

/** On a local host the guest key and known_hosts are read by this process: they must exist now. */
function checkGuestFiles(file: string, tb: TestbedFile): void {
  const g = tb.guests;
  if (!g || tb.host.kind !== 'local') return;
  if (!existsSync(expandHome(g.identityFile))) {
    throw new ConfigError(file, 'guests.identityFile', `${g.identityFile} does not exist (the private key whose .pub is in the guest image's authorized_keys; relative paths are relative to the testbed file's directory)`);
  }
  if (!existsSync(expandHome(g.knownHostsFile))) {
    throw new ConfigError(file, 'guests.knownHostsFile', `${g.knownHostsFile} does not exist (the guest image's host key, e.g. '[127.0.0.1]:* ssh-ed25519 …' for user networking; relative paths are relative to the testbed file's directory)`);
  }
}

export function parseTestbedFile(file: string, data: unknown): TestbedFile {
  const parsed = parseWith(file, testbedFileSchema, data);
  const { guests, ...rest } = parsed;
  // `networking` is the parsed guests.network; `network` stays the libvirt name ('' for user networking) for older callers.
  const tb: TestbedFile = {
    file,
    ...rest,
    guests: guests ? { ...guests, networking: guests.network, network: guests.network.kind === 'libvirt' ? guests.network.name : '' } : null,
  } as TestbedFile;
  const rawModes = (data as { modes?: Record<string, { kernel?: unknown } | null> }).modes ?? {};
  checkTestbedFile(tb, new Set(Object.keys(rawModes).filter((m) => Array.isArray(rawModes[m]?.kernel))));
  resolveGuestPaths(file, tb);
  checkGuestFiles(file, tb);
  return tb;
}

export function loadTestbedFile(file: string): TestbedFile {
  return parseTestbedFile(file, readYaml(file));
}

/**
 * The baselines (docs/baselines.md) are stock KSM with one Linux setting changed: their knobs must not undo
 * that setting. (User-space placement is refused for every mode but nuksm-fair/-priority in checkTestbedFile.)
 */
function checkBaselineModes(tb: TestbedFile): void {
  const mode = 'ksm-node-local';
  const spec = tb.modes[mode];
  if (!spec) return;
  if (spec.ksmKnobs.merge_across_nodes !== undefined && spec.ksmKnobs.merge_across_nodes !== '0') {
    throw new ConfigError(tb.file, `modes.${mode}.ksmKnobs.merge_across_nodes`, `'${mode}' runs with merge_across_nodes=0; this file sets ${spec.ksmKnobs.merge_across_nodes}`);
  }
  for (const k of spec.kernels) {
    const v = tb.kernels[k]?.ksmKnobs.merge_across_nodes;
    if (v !== undefined && v !== '0') throw new ConfigError(tb.file, `kernels.${k}.ksmKnobs.merge_across_nodes`, `mode '${mode}' runs on kernel '${k}' with merge_across_nodes=0, but the kernel's knobs set ${v}`);
  }
}
