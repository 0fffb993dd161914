/**
 * The guest image end to end: `buildGuestImage` (or its cache), then ONE libvirt TCG guest booted
 * from a qcow2 overlay on it (vm-templates/guest-tcg.xml: GRUB disk boot, serial console to a
 * file, QEMU user networking with sshd forwarded to a loopback port, as the VM launcher renders it), logged into with the image's
 * key and strict host-key checking against its known_hosts, and the five benchmarks run inside it
 * over SSH with their real install() (pre-built: 'yes'), phases (small) and parse().
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import yargs from 'yargs';
import { testbedBuildCommand } from '../../src/cli/commands/testbed-build.ts';
import { describeWith } from '../support/components.ts';
import { freePort } from '../host/sshd-harness.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';
import type { Sample } from '../../src/core/sample.ts';
import { LocalExecutor, SshExecutor } from '../../src/host/exec/index.ts';
import { renderDomainXml, type DomainSpec } from '../../src/host/libvirt/domain-xml.ts';
import { vmNetworkFor, withSshPort } from '../../src/host/libvirt/index.ts';
import { buildGuestImage, CURRENT_LINK, GUEST_DISABLED_TIMERS, GUEST_WORKLOADS, type GuestImage } from '../../src/testbeds/images/guest.ts';
import { ARTIFACT_SNAPSHOT } from '../../src/workloads/cache.ts';
import { getWorkload, runPhases } from '../../src/workloads/index.ts';
import { testLog } from '../support/log.ts';

const TEMPLATE = join(import.meta.dirname, '../../vm-templates/guest-tcg.xml');
const BOOT_TIMEOUT_MS = 420_000;
// Default: the project's caches (.cache/guest on .cache/emulated's base). Overridable to test a
// build from scratch elsewhere without touching them.
const CACHES = { cacheDir: process.env.NUKSM_TEST_GUEST_CACHE_DIR || undefined, baseCacheDir: process.env.NUKSM_TEST_BASE_CACHE_DIR || undefined };

describeWith(['root', 'debootstrap', 'qemu', 'libvirtd', 'gcc'], 'guest image: build, boot one libvirt TCG guest, run the five benchmarks in it over SSH', () => {
  const local = new LocalExecutor({ defaultTimeoutMs: 120_000 });
  const virsh = (args: string[], allowFailure = false) => local.run(['virsh', '-c', 'qemu:///system', ...args], { allowFailure, timeoutMs: 120_000 });
  const log = testLog('guest-image');
  let daemons: StartedDaemons | null = null;
  let work = '';
  let image: GuestImage;
  let firstBuildS = 0;
  const name = `nuksm-guest-${process.pid}`;
  let ssh: SshExecutor | null = null;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nuksm-guest-image-'));
    // libvirt's QEMU runs as libvirt-qemu: it must reach the overlay and the console file.
    chmodSync(work, 0o755);
    const t0 = Date.now();
    image = await buildGuestImage({ ...CACHES, log });
    firstBuildS = (Date.now() - t0) / 1000;
    log(`image ${image.key}: ${image.builtNow ? `guest layer built in ${image.buildSeconds.guest.toFixed(0)} s` : 'from the cache'}${image.baseBuiltNow ? `, base built in ${image.buildSeconds.base.toFixed(0)} s` : ''}; call took ${firstBuildS.toFixed(1)} s; ${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB`);
    daemons = await ensureLibvirtd();
  }, 2_400_000);

  afterAll(async () => {
    await ssh?.close().catch(() => undefined);
    await virsh(['destroy', name], true).catch(() => undefined);
    await virsh(['undefine', name], true).catch(() => undefined);
    if (work) {
      // The overlay (hundreds of MiB) goes; the benchmarks' raw output, the console and the XML stay.
      rmSync(join(work, `${name}.qcow2`), { force: true });
      log(`raw benchmark output and the guest console are in ${work}`);
    }
    await daemons?.stop();
  }, 180_000);

  it('has the packages, the snapshot and the five benchmarks pre-built, behind a stable `current` pointer', async () => {
    for (const p of ['mariadb-server', 'sysbench', 'python3', 'gcc', 'g++', 'gfortran', 'make', 'libgomp1']) expect(image.packages[p], p).toMatch(/^\S+$/);
    expect(image.snapshotSha256).toBe(ARTIFACT_SNAPSHOT.sha256 ?? '77c9d76d4589853fe99cbfe5208d10ee6c2ca2b21be31a6bc36deeb21b7f85e9');
    expect(Object.keys(image.workloads).sort()).toEqual([...GUEST_WORKLOADS].sort());
    for (const w of GUEST_WORKLOADS) expect(image.guestPaths.workloads[w]).toBe(`/opt/nuksm/workloads/${w}`);
    expect(image.workloads.cg!.compiler).toMatch(/GNU Fortran/);
    expect(image.workloads.mysql!.sysbench).toMatch(/^sysbench 1\.0\./);
    expect(lstatSync(image.current).isSymbolicLink()).toBe(true);
    expect(readlinkSync(image.current)).toBe(`guest-${image.key}`);
    expect(image.current).toBe(join(image.dir, '..', CURRENT_LINK));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(image.current, 'disk.qcow2')], { encoding: 'utf8' })) as { format: string };
    expect(info.format).toBe('qcow2');
    expect(readFileSync(image.knownHostsFile, 'utf8')).toMatch(/^\[127\.0\.0\.1\]:\* ssh-ed25519 \S+\n$/);
    expect(image.accessProblems).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(image.dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ key: image.key, baseKey: image.baseKey, packages: image.packages, workloads: image.workloads });

    const t0 = Date.now();
    const again = await buildGuestImage({ ...CACHES, log });
    const cachedS = (Date.now() - t0) / 1000;
    log(`second build: ${cachedS.toFixed(1)} s (cache)`);
    expect(again.builtNow).toBe(false);
    expect(again.key).toBe(image.key);
    expect(again.disk).toBe(image.disk);

    // The command: same image, from the cache, described as JSON; the text form names disk and packages.
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      const dirArgs = CACHES.cacheDir ? ['--cache-dir', CACHES.cacheDir] : [];
      await yargs([]).command(testbedBuildCommand).strict().parseAsync(['testbed', 'build', 'guest', ...dirArgs, '--json']);
      await yargs([]).command(testbedBuildCommand).strict().parseAsync(['testbed', 'build', 'guest', ...dirArgs]);
    } finally {
      process.stdout.write = write;
    }
    const [json, text] = out.join('').split(/\n(?=guest image )/);
    const described = JSON.parse(json!) as GuestImage;
    expect(described).toMatchObject({ key: image.key, disk: image.disk, builtNow: false, packages: image.packages });
    expect(text).toContain(`guest image ${image.key}: ${image.disk}`);
    expect(text).toMatch(/packages: .*mariadb-server 1:10\.11/);
    expect(text).toContain('built now: no (cached)');
  }, 600_000);

  it('boots from an overlay under libvirt TCG, answers SSH with the pinned host key, runs every benchmark pre-built', async () => {
    const overlay = join(work, `${name}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'qcow2', overlay]);
    const consoleLog = join(work, `${name}.console.log`);
    const spec: DomainSpec = {
      name,
      node: 0,
      vcpus: 1,
      memoryMiB: 1024,
      vcpuPins: [0],
      emulatorCpus: [0],
      disk: { overlayPath: overlay },
      network: null,
      kernelBoot: null,
      consoleLog,
    };

    const boot = async (attempt: number): Promise<{ port: number; sshS: number }> => {
      const port = await freePort();
      // The VM launcher's way: the template plus a user-networking NIC with the loopback forward.
      const xml = renderDomainXml(readFileSync(TEMPLATE, 'utf8'), TEMPLATE, withSshPort({ ...spec, network: vmNetworkFor({ user: 'root', identityFile: '', knownHostsFile: '', network: '', networking: { kind: 'user', sshHost: '127.0.0.1' }, baseImage: '', overlayDir: '' }, name) }, port));
      expect(xml).toContain(`hostfwd=tcp:127.0.0.1:${port}-:22`);
      writeFileSync(join(work, `${name}.xml`), xml);
      await virsh(['define', join(work, `${name}.xml`)]);
      const t0 = Date.now();
      await virsh(['start', name]);
      const exec = new SshExecutor({
        host: '127.0.0.1',
        port,
        username: 'root',
        privateKeyPath: image.identityFile,
        knownHostsFile: image.knownHostsFile,
        hostKeyPolicy: 'strict',
        connectRetries: 0,
        connectTimeoutMs: 15_000,
        defaultTimeoutMs: 120_000,
      });
      for (;;) {
        const r = await exec.run(['cat', '/etc/hostname']).then((x) => x, (e: unknown) => e as Error);
        if (!(r instanceof Error)) {
          expect(r.stdout.trim()).toBe('nuksm-guest');
          ssh = exec;
          return { port, sshS: (Date.now() - t0) / 1000 };
        }
        const state = (await virsh(['domstate', name], true)).stdout.trim();
        if (state !== 'running' || Date.now() - t0 > BOOT_TIMEOUT_MS) {
          await exec.close();
          const tail = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').split('\n').slice(-30).join('\n') : '(no console log)';
          throw new Error(`boot attempt ${attempt}: no SSH after ${((Date.now() - t0) / 1000).toFixed(0)} s (domain ${state}; last error ${r.message})\n${tail}`);
        }
        await new Promise((res) => setTimeout(res, 3_000));
      }
    };
    let booted: { port: number; sshS: number };
    try {
      booted = await boot(1);
    } catch (err) {
      // A TCG boot can very rarely fault (BRIEF §3): retry once, and say so.
      log(`RETRYING the boot once: ${(err as Error).message.split('\n')[0]}`);
      await virsh(['destroy', name], true);
      await virsh(['undefine', name], true);
      booted = await boot(2);
    }
    log(`guest answered SSH ${booted.sshS.toFixed(1)} s after virsh start (port ${booted.port})`);
    const exec = ssh!;
    expect((await exec.run(['uname', '-r'])).stdout.trim()).toBe(image.kernels[0]!.release);
    // The packaged MariaDB service is disabled: the workload runs its own server.
    for (const unit of ['mariadb.service', 'mariadb.socket']) expect((await exec.run(['systemctl', 'is-enabled', unit], { allowFailure: true })).stdout.trim(), unit).toBe('disabled');
    const timers = (await exec.run(['systemctl', 'is-enabled', ...GUEST_DISABLED_TIMERS], { allowFailure: true })).stdout.trim().split('\n');
    expect(timers).toEqual(GUEST_DISABLED_TIMERS.map(() => 'disabled'));
    expect((await exec.run(['systemctl', 'is-active', 'mariadb.service', 'mariadb.socket'], { allowFailure: true })).stdout.trim().split('\n')).toEqual(['inactive', 'inactive']);

    const rawDir = join(work, 'raw');
    mkdirSync(rawDir, { recursive: true });
    const times: string[] = [];
    for (const wname of GUEST_WORKLOADS) {
      const workload = getWorkload(wname);
      const params = workload.resolveParams('small');
      const installDir = image.guestPaths.workloads[wname]!;
      const ti = Date.now();
      const installed = await workload.install({ exec, cacheDir: image.guestPaths.cacheDir, installDir, params });
      const installS = (Date.now() - ti) / 1000;
      expect(installed.record.prebuilt, `${wname} install record ${JSON.stringify(installed.record)}`).toBe('yes');
      const workDir = `/root/nuksm-run/${wname}`;
      await exec.run(['mkdir', '-p', workDir]);
      const phases = workload.phases(params, { installDir, workDir });
      const tr = Date.now();
      const result = await runPhases(exec, phases).catch((e: unknown) => {
        const outcomes = ((e as { details?: { outcomes?: Array<{ phase: string; stdout: string; stderr: string }> } }).details?.outcomes) ?? [];
        writeFileSync(join(rawDir, `${wname}.failed.txt`), outcomes.map((o) => `== ${o.phase}\n${o.stdout}\n${o.stderr}`).join('\n'));
        throw e;
      });
      const wallS = (Date.now() - tr) / 1000;
      writeFileSync(join(rawDir, `${wname}.txt`), result.outcomes.map((o) => `== ${o.phase}: ${o.description} (exit ${o.exitCode}, ${o.durationS.toFixed(1)} s)\n${o.stdout}\n${o.stderr}`).join('\n'));
      const samples: Sample[] = workload.parse(result.parsedOutput, { instance: wname, params });
      const runtime = samples.find((s) => s.metric === 'runtime_s' && s.t === null);
      expect(runtime?.value, `${wname} runtime_s`).toBeGreaterThan(0);
      if (wname === 'xsbench' || wname === 'cg') {
        const verified = samples.find((s) => s.metric === 'verification_passed');
        expect(verified, `${wname} verification_passed`).toBeDefined();
        expect(verified!.value, `${wname} verification_passed`).toBe(1);
      }
      const line = `${wname}: install ${installS.toFixed(1)} s (prebuilt), phases ${wallS.toFixed(1)} s wall, runtime_s ${runtime!.value}${result.timedPhaseS !== null ? `, timed phase ${result.timedPhaseS.toFixed(1)} s` : ''}`;
      times.push(line);
      log(line);
    }
    writeFileSync(join(rawDir, 'times.txt'), `boot-to-ssh ${booted.sshS.toFixed(1)} s\n${times.join('\n')}\n`);
    process.stderr.write(`[guest-image] per-benchmark wall times inside the TCG guest:\n  ${times.join('\n  ')}\n`);
  }, 2_400_000);
});
