/**
 * One emulated two-node machine per kernel ('bookworm' = 6.1, 'backports' = 6.12), booted once per
 * `npm test` run and shared by every system test file that asks for it. Why: a TCG boot into a chosen
 * kernel costs 2–4 minutes, and many test files only need "a real kernel with KSM and two nodes".
 *
 * How it is shared: the system project runs its files one at a time in a single fork
 * (vitest.config.ts), whose globalThis outlives each file's module graph; the machines live in a
 * registry there. Their state (overlay, qemu.pid, consoles) is under NUKSM_SHARED_MACHINES_DIR, set
 * by the system project's globalSetup (shared-machine-setup.ts), whose teardown kills every QEMU
 * recorded there at the end of the run, whatever happened to the fork.
 *
 * Call order for a test file:
 *   beforeAll: `m = await useSharedMachine(kernel, 'my-test', log)` — boots on first use, else checks
 *              the machine still answers; gives a fresh work dir under /var/lib/nuksm/tests.
 *   tests:     use `m.exec`; start processes with their files under `m.workDir`.
 *   afterAll:  `await releaseSharedMachine(m)` — kills every process whose cwd or argv is under the
 *              work dir, unmerges KSM, restores the KSM knobs, kernel.numa_balancing and THP as they
 *              were at boot, removes the work dir. Never power the machine off yourself.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HarnessError } from '../../src/core/errors.ts';
import type { SshExecutor } from '../../src/host/exec/index.ts';
import { KernelControl } from '../../src/host/kernel/index.ts';
import { buildEmulatedImage, imageKernels, QemuMachine, type EmulatedImage } from '../../src/testbeds/emulated/index.ts';
import { freePort } from '../host/sshd-harness.ts';

export type SharedKernel = 'bookworm' | 'backports';

export interface SharedMachine {
  kernel: SharedKernel;
  /** `uname -r` of the running kernel. */
  release: string;
  exec: SshExecutor;
  image: EmulatedImage;
  /** A fresh directory in the guest for this user; removed by releaseSharedMachine. */
  workDir: string;
}

/** A reboot into the chosen kernel: TCG boots to SSH have taken up to 260 s on a loaded host, 6.1's reboot ~150 s. */
const REBOOT_UP_TIMEOUT_S = 480;

/** Shape of every shared machine: two nodes, one vCPU and 1 GiB each. */
export const SHARED_MACHINE_SHAPE = { nodes: 2, cpusPerNode: 1, memoryMiBPerNode: 1024 } as const;

interface Entry {
  machine: QemuMachine;
  exec: SshExecutor;
  release: string;
  image: EmulatedImage;
  /** Shell that writes back the knobs as they were at boot. */
  restoreScript: string;
}

interface Registry {
  entries: Map<SharedKernel, Promise<Entry>>;
  users: number;
}

const registry = ((globalThis as { __nuksmSharedMachines?: Registry }).__nuksmSharedMachines ??= { entries: new Map(), users: 0 });

const KSM = '/sys/kernel/mm/ksm';
/** Writable KSM knobs restored after each user (run last: it may be 1). */
const KSM_KNOBS = ['pages_to_scan', 'sleep_millisecs', 'merge_across_nodes', 'max_page_sharing', 'use_zero_pages', 'stable_node_chains_prune_millisecs', 'smart_scan', 'advisor_mode'];
const THP = '/sys/kernel/mm/transparent_hugepage/enabled';

function stateRoot(): string {
  const dir = process.env.NUKSM_SHARED_MACHINES_DIR ?? join(tmpdir(), `nuksm-shared-machines-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}


async function sh(exec: SshExecutor, script: string, timeoutMs = 120_000): Promise<string> {
  return (await exec.run(['sh', '-c', script], { timeoutMs })).stdout;
}

async function boot(kernel: SharedKernel, log: (l: string) => void): Promise<Entry> {
  const t0 = Date.now();
  const image = await buildEmulatedImage({ log });
  const spec = imageKernels(image)[kernel];
  if (!spec) throw new Error(`emulated image ${image.key} has no '${kernel}' kernel (backports reachable when built: ${image.backportsReachable})`);
  const dir = join(stateRoot(), kernel);
  const machine = new QemuMachine({
    baseDisk: image.disk,
    stateDir: dir,
    shape: SHARED_MACHINE_SHAPE,
    sshPort: await freePort(),
    identityFile: image.identityFile,
    knownHostsFile: image.knownHostsFile,
    commandTimeoutS: 300,
    // TCG on a loaded 2-core host: a boot to SSH has taken up to 260 s (QemuMachine's default is 240 s).
    bootTimeoutS: 600,
    log,
  });
  await machine.resetDisk();
  const consoleDir = join(dir, 'console');
  // Up to REBOOT_UP_TIMEOUT_S for the guest to come back on the chosen kernel. Once (2026-12-03) 6.1 hung
  // after the warm reboot at "pnp: PnP ACPI init" with QEMU spinning; a hung boot is killed and tried once
  // more from a fresh QEMU process, and a machine that failed to boot is never left running.
  const kernels = (e: SshExecutor) => new KernelControl(e, { pollMs: 3_000, upTimeoutMs: REBOOT_UP_TIMEOUT_S * 1000 });
  let exec: SshExecutor;
  let booted: Awaited<ReturnType<KernelControl['bootInto']>>;
  try {
    try {
      exec = await machine.start(consoleDir);
      booted = await kernels(exec).bootInto(spec.bootEntry, spec.release);
    } catch (err) {
      if (!(err instanceof HarnessError && err.failureClass === 'boot')) throw err;
      log(`shared machine '${kernel}': ${err.message}; killing QEMU and booting once more (consoles in ${consoleDir})`);
      await machine.kill();
      exec = await machine.start(consoleDir);
      booted = await kernels(exec).bootInto(spec.bootEntry, spec.release);
    }
  } catch (err) {
    await machine.kill().catch(() => undefined);
    throw err;
  }
  // Knobs as the kernel booted with them (files absent on a kernel are skipped).
  const restoreScript = (
    await sh(
      exec,
      [
        ...KSM_KNOBS.map((k) => `[ -w ${KSM}/${k} ] && printf 'echo %s > ${KSM}/${k} 2>/dev/null;' "$(cat ${KSM}/${k})"`),
        `printf 'echo %s > ${KSM}/run;' "$(cat ${KSM}/run)"`,
        `printf 'sysctl -qw kernel.numa_balancing=%s 2>/dev/null;' "$(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo 0)"`,
        `[ -w ${THP} ] && printf 'echo %s > ${THP};' "$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' ${THP})"`,
        'true',
      ].join('; '),
    )
  ).trim();
  log(`shared machine '${kernel}' running ${booted.release} (rebooted into it: ${booted.rebooted}) after ${((Date.now() - t0) / 1000).toFixed(0)} s; state in ${dir}`);
  return { machine, exec, release: booted.release, image, restoreScript };
}

/** The shared machine for `kernel`, booted on first use; `user` names the work dir. */
export async function useSharedMachine(kernel: SharedKernel, user: string, log: (l: string) => void = () => undefined): Promise<SharedMachine> {
  let pending = registry.entries.get(kernel);
  if (pending) {
    const entry = await pending.catch(() => null);
    const alive = entry !== null && entry.machine.running && (await entry.exec.run(['true'], { timeoutMs: 30_000 }).then(() => true, () => false));
    if (!alive) {
      log(`shared machine '${kernel}' is gone or does not answer: booting it again`);
      if (entry) await entry.machine.kill().catch(() => undefined);
      pending = undefined;
    }
  }
  if (!pending) {
    pending = boot(kernel, log);
    registry.entries.set(kernel, pending);
  }
  const entry = await pending;
  const workDir = `/var/lib/nuksm/tests/${user.replace(/[^A-Za-z0-9_.-]/g, '_')}-${++registry.users}`;
  await sh(entry.exec, `rm -rf '${workDir}' && mkdir -p '${workDir}'`);
  return { kernel, release: entry.release, exec: entry.exec, image: entry.image, workDir };
}

/**
 * Leave the machine as this user found it: its processes gone, KSM unmerged, boot-time knobs back,
 * the work dir removed. Throws if KSM still holds merged pages afterwards (a leak between files).
 */
export async function releaseSharedMachine(m: SharedMachine): Promise<void> {
  const entry = await registry.entries.get(m.kernel)?.catch(() => null);
  if (!entry || !entry.machine.running) return;
  const w = m.workDir;
  await sh(
    entry.exec,
    [
      // One grep and one find over /proc (a fork per process is slow under TCG); not this shell or its parent.
      `for p in $({ grep -lsF -- '${w}' /proc/[0-9]*/cmdline; find /proc -maxdepth 2 -name cwd \\( -lname '${w}' -o -lname '${w}/*' \\) 2>/dev/null; } | cut -d/ -f3 | sort -u); do`,
      `  [ "$p" = "$$" ] || [ "$p" = "$PPID" ] || kill -9 "$p" 2>/dev/null;`,
      'done; sleep 1',
      `echo 2 > ${KSM}/run`,
      entry.restoreScript,
      // Trace events a user enabled: off, buffer emptied.
      `[ -w /sys/kernel/tracing/events/enable ] && { echo 0 > /sys/kernel/tracing/events/enable; echo > /sys/kernel/tracing/trace; }`,
      `rm -rf '${w}'`,
    ].join('\n'),
    300_000,
  );
  const shared = Number((await sh(entry.exec, `cat ${KSM}/pages_shared`)).trim());
  if (shared !== 0) throw new Error(`shared machine '${m.kernel}': ${shared} KSM pages still shared after ${w} was released (a process outside the work dir?)`);
}
