/**
 * Integration tests need real system components. Locally a missing component skips the suite
 * with a visible reason; under CI (CI=true) it is a failure, so nothing is skipped silently.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe } from 'vitest';
import { artifactPresent } from './artifact.ts';

function onPath(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const CHECKS: Record<string, () => boolean> = {
  sshd: () => existsSync('/usr/sbin/sshd') && onPath('ssh-keygen'),
  qemu: () => onPath('qemu-system-x86_64') && onPath('qemu-img'),
  libvirtd: () => onPath('libvirtd') && onPath('virsh') && onPath('virtlogd'),
  mariadb: () => onPath('mariadbd') || existsSync('/usr/sbin/mariadbd'),
  sysbench: () => onPath('sysbench'),
  perf: () => onPath('perf'),
  numactl: () => onPath('numactl'),
  debootstrap: () => onPath('debootstrap'),
  gcc: () => onPath('gcc'),
  // Static libnuma for Linux's ksm_tests (libnuma-dev).
  libnuma: () => existsSync('/usr/include/numa.h') && ['/usr/lib/x86_64-linux-gnu/libnuma.a', '/usr/lib/libnuma.a'].some((p) => existsSync(p)),
  // apt-get download + dpkg-deb + xz: Debian packages fetched and unpacked on this host.
  apt: () => onPath('apt-get') && onPath('dpkg-deb') && onPath('xz'),
  artifact: artifactPresent,
  ksm: () => writable('/sys/kernel/mm/ksm/run'),
  root: () => process.getuid?.() === 0,
  netns: () => onPath('ip'),
  chromium: () => existsSync('/usr/bin/chromium'),
  slurm: () => ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'scancel', 'sacct'].every(onPath),
};

export type Component = keyof typeof CHECKS;

export function missingComponents(components: readonly string[]): string[] {
  return components.filter((c) => {
    const check = CHECKS[c];
    if (!check) throw new Error(`unknown component '${c}' (known: ${Object.keys(CHECKS).join(', ')})`);
    return !check();
  });
}

/**
 * describe() that needs system components. Under CI a missing component throws at collection
 * time (the file fails); elsewhere the suite is reported as skipped, naming what is missing.
 */
export function describeWith(components: readonly string[], name: string, fn: () => void): void {
  const missing = missingComponents(components);
  if (missing.length > 0 && process.env.CI === 'true') {
    throw new Error(`${name}: required system components missing under CI: ${missing.join(', ')}`);
  }
  const title = missing.length > 0 ? `${name} [needs: ${missing.join(', ')}]` : name;
  describe.skipIf(missing.length > 0)(title, fn); // never skips under CI: a missing component threw above
}
