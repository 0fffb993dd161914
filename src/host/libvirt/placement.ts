/**
 * Placement verification after a VM starts: what libvirt applied (vcpupin, emulatorpin, numatune)
 * and where QEMU's memory actually is (/proc/PID/numa_maps). The paper's artifact had no numatune
 * and relied on first touch (artifact.md §5.10); here a VM with more than `maxOffNodePct` of its
 * memory off its node fails the step with class 'placement'.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';
import { formatCpuList, parseCpuList, type DomainSpec } from './domain-xml.ts';
import type { Virsh } from './virsh.ts';

export const DEFAULT_MAX_OFF_NODE_PCT = 5;

export interface PlacementReadback {
  /** Host CPUs each vCPU may run on, index = vCPU. */
  vcpuAffinity: number[][];
  emulatorAffinity: number[];
  numaMode: string | null;
  numaNodeset: number[];
  qemuPid: number;
  /** Bytes of the QEMU process's memory on each node, from numa_maps. */
  bytesPerNode: Map<number, number>;
}

export interface PlacementReport {
  readback: PlacementReadback;
  offNodePct: number;
  problems: string[];
}

/** `virsh vcpupin DOM` lines: " 0      1" or "0: 1-3". */
export function parseVcpupin(stdout: string): number[][] {
  const affinity: number[][] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s*:?\s+([\d,\s-]+)$/.exec(line);
    if (m) affinity[Number(m[1])] = parseCpuList(m[2].replace(/\s+/g, ''));
  }
  return affinity;
}

/** `virsh -q emulatorpin DOM`: "0-1" (libvirt 9); without -q: " *: 0-1" under a header. */
export function parseEmulatorpin(stdout: string): number[] {
  const m = /^\s*(?:\*\s*:?\s*)?(\d[\d,-]*)\s*$/m.exec(stdout);
  if (!m) throw new Error(`cannot parse virsh emulatorpin output: ${stdout.trim()}`);
  return parseCpuList(m[1]);
}

/** `virsh numatune DOM`: "numa_mode      : strict\nnuma_nodeset   : 0". */
export function parseNumatune(stdout: string): { mode: string | null; nodeset: number[] } {
  const mode = /numa_mode\s*:\s*(\S+)/.exec(stdout)?.[1] ?? null;
  const nodeset = /numa_nodeset\s*:\s*([\d,-]+)/.exec(stdout)?.[1];
  return { mode, nodeset: nodeset ? parseCpuList(nodeset) : [] };
}

/**
 * Sum `N<node>=<pages>` over all mappings of /proc/PID/numa_maps, in bytes, using each mapping's
 * `kernelpagesize_kB` (4 KiB normally, 2048 for hugetlb-backed mappings).
 */
export function parseNumaMaps(text: string): Map<number, number> {
  const perNode = new Map<number, number>();
  for (const line of text.split('\n')) {
    const pageKiB = Number(/kernelpagesize_kB=(\d+)/.exec(line)?.[1] ?? 4);
    for (const m of line.matchAll(/\bN(\d+)=(\d+)/g)) {
      const node = Number(m[1]);
      perNode.set(node, (perNode.get(node) ?? 0) + Number(m[2]) * pageKiB * 1024);
    }
  }
  return perNode;
}

/** Percent of the process's resident bytes that are not on `node` (0 when nothing is resident). */
export function offNodePct(bytesPerNode: ReadonlyMap<number, number>, node: number): number {
  let total = 0;
  for (const b of bytesPerNode.values()) total += b;
  if (total === 0) return 0;
  return (100 * (total - (bytesPerNode.get(node) ?? 0))) / total;
}

/** PID of a running domain's QEMU process, from libvirt's pid file (no `ps | grep`, artifact §5.6). */
export async function qemuPid(exec: Executor, domain: string, runDir = '/run/libvirt/qemu'): Promise<number> {
  const text = await exec.readFile(`${runDir}/${domain}.pid`, { timeoutMs: 10_000 });
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new HarnessError('placement', `bad QEMU pid file for ${domain}: '${text.trim()}'`);
  return pid;
}

export async function readPlacement(virsh: Virsh, domain: string): Promise<PlacementReadback> {
  const [vcpupin, emulatorpin, numatune] = [
    await virsh.run(['vcpupin', domain], { failureClass: 'placement' }),
    await virsh.run(['emulatorpin', domain], { failureClass: 'placement' }),
    await virsh.run(['numatune', domain], { failureClass: 'placement' }),
  ];
  const pid = await qemuPid(virsh.exec, domain);
  const numaMaps = await virsh.exec.readFile(`/proc/${pid}/numa_maps`, { timeoutMs: 30_000 });
  const numa = parseNumatune(numatune.stdout);
  return {
    vcpuAffinity: parseVcpupin(vcpupin.stdout),
    emulatorAffinity: parseEmulatorpin(emulatorpin.stdout),
    numaMode: numa.mode,
    numaNodeset: numa.nodeset,
    qemuPid: pid,
    bytesPerNode: parseNumaMaps(numaMaps),
  };
}

const sameSet = (a: readonly number[], b: readonly number[]): boolean => formatCpuList(a) === formatCpuList(b);

/** Compare a readback with the spec; pure, so the rules are unit-testable. */
export function comparePlacement(spec: DomainSpec, rb: PlacementReadback, maxOffNodePct = DEFAULT_MAX_OFF_NODE_PCT): PlacementReport {
  const problems: string[] = [];
  spec.vcpuPins.forEach((cpu, v) => {
    const got = rb.vcpuAffinity[v];
    if (!got || !sameSet(got, [cpu])) problems.push(`vCPU ${v} affinity is ${got ? formatCpuList(got) : 'unknown'}, expected ${cpu}`);
  });
  if (!sameSet(rb.emulatorAffinity, spec.emulatorCpus)) {
    problems.push(`emulator affinity is ${formatCpuList(rb.emulatorAffinity)}, expected ${formatCpuList(spec.emulatorCpus)}`);
  }
  if (rb.numaMode !== 'strict') problems.push(`numatune mode is ${rb.numaMode ?? 'unset'}, expected strict`);
  if (!sameSet(rb.numaNodeset, [spec.node])) problems.push(`numatune nodeset is ${formatCpuList(rb.numaNodeset) || 'empty'}, expected ${spec.node}`);
  const off = offNodePct(rb.bytesPerNode, spec.node);
  if (off > maxOffNodePct) problems.push(`${off.toFixed(1)}% of QEMU's memory is off node ${spec.node} (limit ${maxOffNodePct}%)`);
  return { readback: rb, offNodePct: off, problems };
}

/** Read back and compare; throws HarnessError('placement') listing every violation. */
export async function verifyPlacement(virsh: Virsh, spec: DomainSpec, maxOffNodePct = DEFAULT_MAX_OFF_NODE_PCT): Promise<PlacementReport> {
  const report = comparePlacement(spec, await readPlacement(virsh, spec.name), maxOffNodePct);
  if (report.problems.length > 0) {
    throw new HarnessError('placement', `VM ${spec.name} is not placed on node ${spec.node}: ${report.problems.join('; ')}`, {
      vm: spec.name,
      node: spec.node,
      problems: report.problems,
      bytesPerNode: Object.fromEntries(report.readback.bytesPerNode),
    });
  }
  return report;
}

/**
 * Nice value for every thread of a process. `renice -p PID` alone changes only the main thread
 * (nice is per thread), which is what the artifact did (§2.7); vCPU threads kept nice 0 there.
 */
export async function reniceProcess(exec: Executor, pid: number, nice: number): Promise<number[]> {
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new HarnessError('config', `nice must be an integer in -20..19, got ${nice}`);
  const res = await exec.run(['ls', `/proc/${pid}/task`], { timeoutMs: 10_000 });
  const tids = res.stdout.split(/\s+/).filter((t) => /^\d+$/.test(t));
  if (tids.length === 0) throw new HarnessError('benchmark-error', `process ${pid} has no threads to renice`);
  await exec.run(['renice', '-n', String(nice), '-p', ...tids], { timeoutMs: 10_000 });
  return tids.map(Number);
}
