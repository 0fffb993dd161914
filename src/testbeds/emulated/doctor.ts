/**
 * `nuksm doctor` for the emulated testbed: what this host needs to build the image and run the
 * machine (root, QEMU, debootstrap, gcc), whether a base image is cached (and with which kernels),
 * and whether the SSH port of the machine is free. KSM itself runs inside the machine.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { DoctorFinding } from '../physical/doctor.ts';

async function onPath(bin: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${bin}`], { reject: false })).exitCode === 0;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

export async function emulatedDoctorChecks(tb: TestbedFile): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const root = process.getuid?.() === 0;
  out.push({ check: 'root', status: root ? 'ok' : 'fail', message: root ? 'running as root' : 'building the image (debootstrap, loop mounts) needs root', fix: root ? null : 'run nuksm as root' });
  for (const [bin, pkg] of [['qemu-system-x86_64', 'qemu-system-x86'], ['qemu-img', 'qemu-utils'], ['debootstrap', 'debootstrap'], ['gcc', 'gcc'], ['sfdisk', 'fdisk']] as const) {
    const ok = await onPath(bin);
    out.push({ check: bin, status: ok ? 'ok' : 'fail', message: ok ? `${bin} found` : `${bin} not on PATH`, fix: ok ? null : `apt-get install ${pkg}` });
  }
  const cache = resolve(tb.emulated?.imageCacheDir ?? '.cache/emulated');
  const bases = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith('base-') && existsSync(join(cache, d, 'manifest.json'))) : [];
  if (bases.length === 0) {
    out.push({ check: 'image cache', status: 'warn', message: `no base image in ${cache}: the first run builds it from Debian packages (about 4 min)`, fix: 'nuksm testbed build emulated' });
  } else {
    const kernels = bases.map((b) => {
      const m = JSON.parse(readFileSync(join(cache, b, 'manifest.json'), 'utf8')) as { kernels?: { release: string }[] };
      return `${b}: ${(m.kernels ?? []).map((k) => k.release).join(', ')}`;
    });
    out.push({ check: 'image cache', status: 'ok', message: kernels.join('; '), fix: null });
  }
  const port = tb.emulated?.sshPort;
  if (port !== undefined) {
    const free = await portFree(port);
    out.push({ check: 'ssh port', status: free ? 'ok' : 'warn', message: free ? `127.0.0.1:${port} is free for the machine's SSH forward` : `127.0.0.1:${port} is in use (another machine running?)`, fix: free ? null : `stop it, or set emulated.sshPort in ${tb.file}` });
  }
  return out;
}
