/**
 * `nuksm doctor` for a physical testbed: checks the host against its testbed file before a
 * campaign, and says for each problem what is wrong and how to fix it. Every check runs through
 * the host's Executor (local or SSH), read-only except for writing a KSM knob back to its own
 * current value (the only way to know it is writable without changing anything).
 */
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { Executor } from '../../host/exec/types.ts';
import { Virsh } from '../../host/libvirt/virsh.ts';
import { eventSet, parseCpuinfo, parsePerfStatIntervals, perfEventArgs, selectEventSet, totalsByEvent, type PerfEventSet } from '../../host/perf/index.ts';
import { findGrubEntry, grubNamesOf, parseGrubMenu } from './grub.ts';
import { guestNetworkOf } from '../../host/libvirt/network.ts';
import { expandHome, hostExecutor } from './host.ts';
import { compareNodes, readHostNodes } from './topology.ts';

export type DoctorStatus = 'ok' | 'warn' | 'fail';

export interface DoctorFinding {
  /** Short id of the check, e.g. 'numa', 'ksm-files', 'libvirt', 'grub'. */
  check: string;
  status: DoctorStatus;
  /** What was found (for 'ok' too, so the report shows what was verified). */
  message: string;
  /** How to fix it; null when nothing needs fixing. */
  fix: string | null;
}

const KSM_DIR = '/sys/kernel/mm/ksm';
/** Knobs every KSM kernel has and the harness writes. */
const KSM_KNOBS = ['run', 'pages_to_scan', 'sleep_millisecs', 'merge_across_nodes', 'max_page_sharing'];
const KSM_COUNTERS = ['pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'full_scans'];
const GRUB_CFG_PATHS = ['/boot/grub/grub.cfg', '/boot/grub2/grub.cfg'];

const ok = (check: string, message: string): DoctorFinding => ({ check, status: 'ok', message, fix: null });
const warn = (check: string, message: string, fix: string): DoctorFinding => ({ check, status: 'warn', message, fix });
const fail = (check: string, message: string, fix: string): DoctorFinding => ({ check, status: 'fail', message, fix });

async function sh(exec: Executor, argv: string[], timeoutMs = 20_000): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await exec.run(argv, { timeoutMs, allowFailure: true });
    return { code: r.exitCode, out: r.stdout, err: r.stderr };
  } catch (e) {
    return { code: -1, out: '', err: (e as Error).message };
  }
}

async function checkHost(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  const r = await sh(exec, ['uname', '-r']);
  if (r.code !== 0) {
    const fix =
      file.host.kind === 'ssh'
        ? `check that ${file.host.user}@${file.host.host}:${file.host.port} accepts the key ${file.host.identityFile} and that its host key is in ${file.host.knownHostsFile} (ssh-keyscan -p ${file.host.port} ${file.host.host} >> ${file.host.knownHostsFile}, after checking the fingerprint)`
        : 'the local host could not run uname: check PATH';
    return [fail('host-access', `cannot run commands on ${exec.target}: ${r.err.trim()}`, fix)];
  }
  const findings = [ok('host-access', `${exec.target} runs kernel ${r.out.trim()}`)];
  const id = await sh(exec, ['id', '-u']);
  if (id.out.trim() !== '0') {
    findings.push(fail('root', `commands on ${exec.target} run as uid ${id.out.trim()}, not root`, 'KSM knobs, renice to negative values, grub-reboot and libvirt qemu:///system need root: use the root account (or a user with these rights) in the testbed file'));
  } else findings.push(ok('root', 'commands run as root'));
  return findings;
}

async function checkNuma(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  try {
    const actual = await readHostNodes(exec);
    const problems = compareNodes(file.nodes, actual);
    if (problems.length > 0) {
      return [fail('numa', problems.join('; '), `edit nodes: in ${file.file} to match the host (numactl -H shows its nodes, CPUs and memory)`)];
    }
    return [ok('numa', `host nodes ${actual.map((n) => `${n.id}(${n.cpus.length} CPUs, ${n.memoryGiB} GiB)`).join(', ')} cover the testbed file`)];
  } catch (e) {
    return [fail('numa', `cannot read ${'/sys/devices/system/node'}: ${(e as Error).message}`, 'the host kernel needs CONFIG_NUMA; check that /sys/devices/system/node exists')];
  }
}

async function checkTools(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  const needed: [string, string][] = [
    ['numactl', 'apt-get install numactl'],
    ['numastat', 'apt-get install numactl'],
    ['renice', 'apt-get install bsdutils'],
  ];
  if (file.guests) needed.push(['virsh', 'apt-get install libvirt-clients'], ['qemu-img', 'apt-get install qemu-utils']);
  const findings: DoctorFinding[] = [];
  for (const [tool, fix] of needed) {
    const r = await sh(exec, ['sh', '-c', 'command -v "$0"', tool]);
    findings.push(r.code === 0 ? ok(`tool:${tool}`, `${tool} at ${r.out.trim()}`) : fail(`tool:${tool}`, `${tool} is not installed on ${exec.target}`, fix));
  }
  return findings;
}

async function checkKsm(exec: Executor, file: TestbedFile, release: string): Promise<DoctorFinding[]> {
  const findings: DoctorFinding[] = [];
  const running = Object.entries(file.kernels).find(([, k]) => k.release === release);
  const knobs = [...KSM_KNOBS, ...Object.keys(running?.[1].ksmKnobs ?? {})];
  const missing: string[] = [];
  const readOnly: string[] = [];
  for (const knob of knobs) {
    const path = `${KSM_DIR}/${knob}`;
    let value: string;
    try {
      value = (await exec.readFile(path, { timeoutMs: 10_000 })).trim();
    } catch {
      missing.push(knob);
      continue;
    }
    // Writing the current value back proves writability without changing state (EBUSY is possible
    // for merge_across_nodes while KSM pages exist; that still shows the file accepts writes).
    const w = await sh(exec, ['sh', '-c', 'printf %s "$1" > "$0"', path, value]);
    if (w.code !== 0 && !/busy/i.test(w.err)) readOnly.push(`${knob} (${w.err.trim()})`);
  }
  for (const counter of KSM_COUNTERS) {
    const r = await sh(exec, ['test', '-r', `${KSM_DIR}/${counter}`]);
    if (r.code !== 0) missing.push(counter);
  }
  if (missing.length > 0) {
    findings.push(fail('ksm-files', `missing in ${KSM_DIR}: ${missing.join(', ')}`, running ? `kernel '${running[0]}' (${release}) should provide these; rebuild it with CONFIG_KSM=y and its patches` : 'boot a kernel built with CONFIG_KSM=y'));
  } else findings.push(ok('ksm-files', `${knobs.length} knobs and ${KSM_COUNTERS.length} counters present in ${KSM_DIR}`));
  if (readOnly.length > 0) findings.push(fail('ksm-writable', `not writable: ${readOnly.join(', ')}`, 'run as root on the host (sysfs KSM knobs are root-only)'));
  else if (missing.length < knobs.length) findings.push(ok('ksm-writable', 'KSM knobs accept writes'));
  if (!running) {
    findings.push(warn('kernel-running', `the running kernel ${release} is none of the testbed's kernels (${Object.values(file.kernels).map((k) => k.release).join(', ') || 'none'})`, 'kernel-specific KSM knobs are checked only for the running kernel; a campaign switches kernels with grub-reboot'));
  } else findings.push(ok('kernel-running', `running kernel is '${running[0]}' (${release})`));
  return findings;
}

async function checkGrub(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  const kernels = Object.entries(file.kernels);
  if (kernels.length === 0) return [ok('grub', 'the testbed file names no kernels: no reboots will be needed')];
  // One kernel that is the running one: ensureKernel only verifies the boot, never reboots.
  const running = (await sh(exec, ['uname', '-r'])).out.trim();
  if (kernels.length === 1 && kernels[0]![1].release === running) {
    return [ok('grub', `the only kernel '${kernels[0]![0]}' is the running one (${running}): no reboots will be needed, GRUB is not used`)];
  }
  let cfgPath: string | null = null;
  let cfg = '';
  for (const p of GRUB_CFG_PATHS) {
    try {
      cfg = await exec.readFile(p, { timeoutMs: 10_000 });
      cfgPath = p;
      break;
    } catch {
      /* try the next location */
    }
  }
  if (!cfgPath) {
    return [fail('grub', `no GRUB menu found (${GRUB_CFG_PATHS.join(', ')}) on ${exec.target}`, 'install GRUB (grub-pc or grub-efi) and run update-grub; kernel switching uses grub-reboot')];
  }
  const findings: DoctorFinding[] = [];
  const entries = parseGrubMenu(cfg);
  for (const [name, k] of kernels) {
    const entry = findGrubEntry(entries, k.bootEntry);
    if (entry) findings.push(ok(`grub:${name}`, `kernel '${name}': boot entry '${k.bootEntry}' found in ${cfgPath}`));
    else {
      const near = entries.filter((e) => e.title.includes(k.release)).flatMap(grubNamesOf).slice(0, 3);
      findings.push(
        fail(
          `grub:${name}`,
          `kernel '${name}': no GRUB entry '${k.bootEntry}' in ${cfgPath}${near.length ? ` (entries mentioning ${k.release}: ${near.map((n) => `'${n}'`).join(', ')})` : ''}`,
          `install the kernel and run update-grub, then set kernels.${name}.bootEntry in ${file.file} to a title or id from ${cfgPath} ('Submenu>Entry' for entries in a submenu)`,
        ),
      );
    }
  }
  const tool = await sh(exec, ['sh', '-c', 'command -v grub-reboot || command -v grub2-reboot']);
  if (tool.code !== 0) findings.push(fail('grub-reboot', 'grub-reboot is not installed', 'apt-get install grub-common (grub-reboot selects the kernel of the next boot only)'));
  try {
    const defaults = await exec.readFile('/etc/default/grub', { timeoutMs: 10_000 });
    if (!/^\s*GRUB_DEFAULT=["']?saved["']?\s*$/m.test(defaults)) {
      findings.push(fail('grub-default', 'GRUB_DEFAULT is not "saved" in /etc/default/grub: grub-reboot has no effect without it', 'set GRUB_DEFAULT=saved in /etc/default/grub and run update-grub'));
    } else findings.push(ok('grub-default', 'GRUB_DEFAULT=saved (grub-reboot works)'));
  } catch {
    findings.push(warn('grub-default', 'cannot read /etc/default/grub', 'make sure GRUB_DEFAULT=saved so grub-reboot takes effect'));
  }
  return findings;
}

async function checkLibvirt(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  if (!file.guests) return [ok('libvirt', 'no guests configured (bare-metal process instances only)')];
  const virsh = new Virsh(exec, file.libvirtUri, 20_000);
  const findings: DoctorFinding[] = [];
  const v = await virsh.run(['version'], { allowFailure: true }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message, durationMs: 0 }));
  if (v.exitCode !== 0) {
    return [fail('libvirt', `libvirt at ${file.libvirtUri} is not reachable: ${v.stderr.trim()}`, 'start libvirtd (systemctl start libvirtd, or by hand: mkdir -p /var/log/libvirt; virtlogd -d; libvirtd -d)')];
  }
  findings.push(ok('libvirt', `libvirt reachable at ${file.libvirtUri}`));
  const guestNet = guestNetworkOf(file.guests);
  if (guestNet === null) findings.push(fail('libvirt-network', 'guests have no network: there is no way to reach their sshd', 'set guests.network to a libvirt network or { user: { sshHost: 127.0.0.1 } }'));
  else if (guestNet.kind === 'user') findings.push(ok('libvirt-network', `QEMU user networking: each VM's sshd forwarded to its own port on ${guestNet.sshHost} (no libvirt network needed)`));
  else {
    const name = guestNet.name;
    const net = await virsh.run(['net-info', name], { allowFailure: true });
    if (net.exitCode !== 0) findings.push(fail('libvirt-network', `network '${name}' does not exist`, `virsh net-define <xml> && virsh net-start ${name} && virsh net-autostart ${name} (see docs/testbed-physical.md)`));
    else if (!/Active:\s+yes/.test(net.stdout)) findings.push(fail('libvirt-network', `network '${name}' is not active`, `virsh net-start ${name}`));
    else findings.push(ok('libvirt-network', `network '${name}' is active`));
  }
  const img = await sh(exec, ['qemu-img', 'info', '--output=json', file.guests.baseImage], 30_000);
  if (img.code !== 0) findings.push(fail('base-image', `base image ${file.guests.baseImage} is not readable by qemu-img: ${img.err.trim()}`, 'build or copy the guest base image (qcow2) to that path (docs/testbed-physical.md)'));
  else if (!/"format":\s*"qcow2"/.test(img.out)) findings.push(fail('base-image', `base image ${file.guests.baseImage} is not qcow2`, `qemu-img convert -O qcow2 <image> ${file.guests.baseImage}`));
  else findings.push(ok('base-image', `base image ${file.guests.baseImage} is qcow2`));
  const dir = await sh(exec, ['sh', '-c', 'mkdir -p "$0" && test -w "$0"', file.guests.overlayDir]);
  findings.push(dir.code === 0 ? ok('overlay-dir', `overlay directory ${file.guests.overlayDir} is writable`) : fail('overlay-dir', `overlay directory ${file.guests.overlayDir} is not writable`, 'create it on a disk with room for one overlay per VM'));
  return findings;
}

/** Keys and known_hosts for guest SSH live on the machine running nuksm. */
async function checkGuestKeys(local: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  if (!file.guests) return [];
  const findings: DoctorFinding[] = [];
  const key = await sh(local, ['test', '-r', expandHome(file.guests.identityFile)]);
  findings.push(key.code === 0 ? ok('guest-key', `guest SSH key ${file.guests.identityFile} readable`) : fail('guest-key', `guest SSH key ${file.guests.identityFile} is missing`, `ssh-keygen -t ed25519 -N '' -f ${file.guests.identityFile} and put the .pub into the base image's ~${file.guests.user}/.ssh/authorized_keys`));
  const kh = await sh(local, ['test', '-s', expandHome(file.guests.knownHostsFile)]);
  findings.push(
    kh.code === 0
      ? ok('guest-known-hosts', `guest known_hosts ${file.guests.knownHostsFile} present`)
      : fail('guest-known-hosts', `guest known_hosts ${file.guests.knownHostsFile} is missing or empty: guest SSH would refuse every host key`, 'all VMs are overlays of one base image and so share its host key: boot the base image once and record its key (ssh-keyscan) for the guest addresses, after checking the fingerprint'),
  );
  return findings;
}

async function checkPerf(exec: Executor, file: TestbedFile): Promise<DoctorFinding[]> {
  const cpu = await exec.readFile('/proc/cpuinfo', { timeoutMs: 10_000 }).then(parseCpuinfo, () => null);
  const suggested = cpu ? selectEventSet(cpu).id : 'none';
  const cpuText = cpu ? `${cpu.modelName} (family ${cpu.family}, model 0x${cpu.model.toString(16)})` : 'unknown CPU';
  if (file.perfEventSet === 'none') {
    return [warn('perf', `perfEventSet is 'none': no local/remote DRAM counts will be recorded (${cpuText})`, suggested !== 'none' ? `set perfEventSet: ${suggested} in ${file.file}` : 'no event set in src/host/perf/event-sets.yaml matches this CPU; add one')];
  }
  let set: PerfEventSet;
  try {
    set = eventSet(file.perfEventSet);
  } catch (e) {
    return [fail('perf', (e as Error).message, `set perfEventSet to one of the sets in src/host/perf/event-sets.yaml${suggested !== 'none' ? ` (this CPU: ${suggested})` : ''}`)];
  }
  const v = await sh(exec, ['perf', 'version']);
  if (v.code !== 0) return [fail('perf', 'perf is not installed on the host', 'apt-get install linux-perf (Debian) or linux-tools-$(uname -r) (Ubuntu)')];
  const r = await sh(exec, ['perf', 'stat', '-x,', ...perfEventArgs(set), '--', 'sleep', '0.1'], 30_000);
  const totals = totalsByEvent(parsePerfStatIntervals(r.err.split('\n').map((l) => `0.1,${l}`).join('\n')));
  const names = [...set.local, ...set.remote].map((e) => e.name);
  const unsupported = names.filter((n) => !totals.get(n)?.supported);
  if (r.code !== 0 || unsupported.length > 0) {
    return [
      fail(
        'perf',
        `perf event set '${set.id}' on ${cpuText}: not supported here: ${unsupported.join(', ') || r.err.trim().split('\n').slice(-1)[0]}`,
        `${suggested !== set.id ? `this CPU matches event set '${suggested}'; ` : ''}check /proc/sys/kernel/perf_event_paranoid (<= 0 for per-process hardware events) and that the PMU is exposed (not in a VM without vPMU)`,
      ),
    ];
  }
  return [ok('perf', `${v.out.trim()} counts ${names.join(', ')} on ${cpuText}`)];
}

export async function doctorChecks(file: TestbedFile, deps: { exec?: Executor; local?: Executor } = {}): Promise<DoctorFinding[]> {
  const exec = deps.exec ?? (await hostExecutor(file));
  const local = deps.local ?? (file.host.kind === 'local' ? exec : await hostExecutor({ ...file, host: { kind: 'local' } }));
  try {
    const host = await checkHost(exec, file);
    if (host.some((f) => f.check === 'host-access' && f.status === 'fail')) return host;
    const release = (await exec.run(['uname', '-r'], { timeoutMs: 10_000 })).stdout.trim();
    return [
      ...host,
      ...(await checkNuma(exec, file)),
      ...(await checkTools(exec, file)),
      ...(await checkKsm(exec, file, release)),
      ...(await checkGrub(exec, file)),
      ...(await checkLibvirt(exec, file)),
      ...(await checkGuestKeys(local, file)),
      ...(await checkPerf(exec, file)),
    ];
  } finally {
    if (!deps.exec) await exec.close();
    if (!deps.local && local !== exec) await local.close();
  }
}

/** Text report: one line per finding, fixes indented under failures and warnings. */
export function formatFindings(findings: readonly DoctorFinding[]): string {
  const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  return findings.map((f) => `${mark[f.status]} ${f.check}: ${f.message}${f.fix ? `\n     fix: ${f.fix}` : ''}`).join('\n');
}
