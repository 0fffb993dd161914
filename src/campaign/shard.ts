/**
 * Sharding: one campaign's plan split into N shards that run on N machines at once (issue 14,
 * docs/slurm.md). Deterministic: the same plan, N and fleet give the same shards.
 *
 * - Steps that share a kernel stay in one shard (each shard boots as few kernels as it can), unless
 *   reboots cost nothing (the model testbed), where single steps are balanced.
 * - A kernel some fleet machine is already booted into goes to that machine (split over all such
 *   machines), so it never reboots for it; the other kernels go, biggest first, to the machine
 *   that finishes them earliest counting the reboot they cost there (longest-processing-time first).
 * - The iterations of an adaptive configuration stay in one shard: its runner decides the
 *   conditional ones from the iterations done before them.
 * - A step keeps its id, seq, key and seed from the whole plan: a shard runs the same steps the
 *   unsharded campaign would, and `nuksm merge` puts them back together (src/campaign/merge.ts).
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import type { Fleet, FleetMachine } from './fleet.ts';
import type { Plan, PlannedBoot, PlannedStep } from './plan.ts';

export interface ShardInfo {
  index: number;
  count: number;
  /** The campaign the shard belongs to (its own store is `<parent>.shard<k>of<N>`). */
  parent: string;
  /** Fleet machine the shard is routed to (null without a fleet). */
  machine: string | null;
  slurmNode: string | null;
  /** Testbed file the shard runs with (the machine's, else the campaign's). */
  testbedFile: string;
  /** The testbed of the whole plan (what `nuksm merge` records for the merged campaign). */
  planTestbed: Plan['testbed'];
  /** Steps of the whole plan and a digest of their ids and keys: merge checks the shards cover it exactly. */
  totalSteps: number;
  planDigest: string;
}

export type ShardPlan = Plan & { shard: ShardInfo };

export interface ShardSummary {
  index: number;
  machine: string | null;
  running: string | null;
  kernels: string[];
  steps: number;
  reboots: number;
  estimateS: number;
}

export interface Sharding {
  count: number;
  shards: ShardPlan[];
  /** The longest shard's estimate: the campaign's wall time when all shards run at once. */
  makespanS: number;
  /** The unsharded plan's estimate (one server). */
  oneServerS: number;
}

export const shardCampaignId = (parent: string, index: number, count: number) => `${parent}.shard${index}of${count}`;

/** `k/N` (1 ≤ k ≤ N) from the command line. */
export function parseShardSpec(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new ConfigError('command line', '--shard', `expected k/N with 1 ≤ k ≤ N (e.g. 2/3), got ${JSON.stringify(text)}`);
  return { index, count };
}

export function checkShardCount(n: number, fleet: Fleet | null): void {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ConfigError('command line', '--shards', `must be a whole number from 1 to 1000, got ${String(n)}`);
  if (fleet && fleet.machines.length !== n) {
    throw new ConfigError(fleet.file, 'machines', `--shards ${n} but the fleet has ${fleet.machines.length} machine(s): one shard runs on each machine`);
  }
}

export function planDigest(plan: Plan): string {
  const h = createHash('sha256');
  for (const s of plan.steps) h.update(`${s.seq}/${s.stepId}/${s.key}\n`);
  return h.digest('hex').slice(0, 16);
}

interface Machine {
  index: number;
  fleet: FleetMachine | null;
  loadS: number;
  /** The kernel it ends on so far (its running one before anything is assigned). */
  last: string | null;
  steps: PlannedStep[];
}

/** Boots of a step sequence (consecutive steps on one kernel share a boot), with the steps' boot indices. */
function bootsOf(steps: readonly PlannedStep[], tb: TestbedFile): { steps: PlannedStep[]; boots: PlannedBoot[] } {
  const boots: PlannedBoot[] = [];
  const out = steps.map((st) => {
    if (st.kernel === null) return { ...st, boot: null };
    const last = boots[boots.length - 1];
    let boot = last;
    if (!last || last.kernel !== st.kernel) {
      const k = tb.kernels[st.kernel]!;
      boot = { index: boots.length, kernel: st.kernel, bootEntry: k.bootEntry, release: k.release, steps: 0 };
      boots.push(boot);
    }
    boot!.steps++;
    return { ...st, boot: boot!.index };
  });
  return { steps: out, boots };
}

const sumS = (steps: readonly PlannedStep[]) => steps.reduce((s, st) => s + st.estimateS, 0);

/**
 * Units that go to one machine: a single step, or all iterations of an adaptive configuration (one
 * key with a conditional step), which its shard decides from its own journal (src/campaign/adaptive.ts).
 */
function unitsOf(steps: readonly PlannedStep[]): PlannedStep[][] {
  const adaptive = new Set(steps.filter((st) => st.adaptive).map((st) => st.key));
  const byKey = new Map<string, PlannedStep[]>();
  const units: PlannedStep[][] = [];
  for (const st of steps) {
    if (!adaptive.has(st.key)) units.push([st]);
    else if (byKey.has(st.key)) byKey.get(st.key)!.push(st);
    else {
      const unit = [st];
      byKey.set(st.key, unit);
      units.push(unit);
    }
  }
  return units;
}

/** Longest unit first (ties: plan order) onto the least-loaded machine (ties: lowest index). */
function balanceSteps(steps: readonly PlannedStep[], onto: Machine[], kernel: string | null): void {
  const sorted = unitsOf(steps).sort((a, b) => sumS(b) - sumS(a) || a[0]!.seq - b[0]!.seq);
  for (const unit of sorted) {
    const m = onto.reduce((best, x) => (x.loadS < best.loadS ? x : best));
    m.steps.push(...unit);
    m.loadS += sumS(unit);
    if (kernel !== null) m.last = kernel;
  }
}

export function shardPlan(plan: Plan, tb: TestbedFile, count: number, fleet: Fleet | null = null): Sharding {
  checkShardCount(count, fleet);
  const rebootS = tb.kind === 'model' ? 0 : tb.timeouts.bootS;
  const machines: Machine[] = Array.from({ length: count }, (_, i) => ({ index: i + 1, fleet: fleet?.machines[i] ?? null, loadS: 0, last: fleet?.machines[i]?.running ?? null, steps: [] }));
  const runnable = plan.steps.filter((s) => s.kernel !== null);
  // Unsupported steps run nothing (they become failure rows): all in shard 1.
  machines[0]!.steps.push(...plan.steps.filter((s) => s.kernel === null));

  if (rebootS === 0) balanceSteps(runnable, machines, null);
  else {
    const groups = new Map<string, PlannedStep[]>();
    for (const st of runnable) groups.set(st.kernel!, [...(groups.get(st.kernel!) ?? []), st]);
    const rest: [string, PlannedStep[]][] = [];
    for (const [kernel, steps] of groups) {
      const booted = machines.filter((m) => m.fleet?.running === kernel);
      if (booted.length > 0) balanceSteps(steps, booted, kernel);
      else rest.push([kernel, steps]);
    }
    rest.sort((a, b) => sumS(b[1]) - sumS(a[1]) || a[1][0]!.seq - b[1][0]!.seq);
    for (const [kernel, steps] of rest) {
      const cost = (m: Machine) => m.loadS + (m.last === kernel ? 0 : rebootS) + sumS(steps);
      const m = machines.reduce((best, x) => (cost(x) < cost(best) ? x : best));
      m.loadS = cost(m);
      m.last = kernel;
      m.steps.push(...steps);
    }
  }

  const digest = planDigest(plan);
  const shards = machines.map((m): ShardPlan => {
    const ordered = [...m.steps].sort((a, b) => a.seq - b.seq);
    const { steps, boots } = bootsOf(ordered, tb);
    const running = m.fleet?.running ?? null;
    const reboots = tb.kind === 'model' ? 0 : boots.length - (boots[0] && boots[0].kernel === running ? 1 : 0);
    const stepsS = sumS(steps);
    const rebootsS = reboots * (m.fleet?.testbed.timeouts.bootS ?? tb.timeouts.bootS);
    return {
      ...plan,
      campaign: shardCampaignId(plan.campaign, m.index, count),
      testbed: m.fleet ? { file: m.fleet.testbedFile, name: m.fleet.testbed.name, kind: m.fleet.testbed.kind } : plan.testbed,
      steps,
      boots,
      reboots,
      estimate: { stepsS, rebootsS, totalS: stepsS + rebootsS },
      pinMap: plan.pinMap.filter((p) => steps.some((s) => s.scenario.experiment === p.experiment && s.scenario.configId === p.configId)),
      shard: {
        index: m.index,
        count,
        parent: plan.campaign,
        machine: m.fleet?.name ?? null,
        slurmNode: m.fleet?.slurmNode ?? null,
        testbedFile: m.fleet?.testbedFile ?? plan.testbed.file,
        planTestbed: plan.testbed,
        totalSteps: plan.steps.length,
        planDigest: digest,
      },
    };
  });
  return { count, shards, makespanS: Math.max(...shards.map((s) => s.estimate.totalS)), oneServerS: plan.estimate.totalS };
}

export function summarizeShards(s: Sharding, fleet: Fleet | null): ShardSummary[] {
  return s.shards.map((p, i) => ({
    index: p.shard.index,
    machine: p.shard.machine,
    running: fleet?.machines[i]?.running ?? null,
    kernels: [...new Set(p.steps.map((st) => st.kernel).filter((k): k is string => k !== null))],
    steps: p.steps.length,
    reboots: p.reboots,
    estimateS: p.estimate.totalS,
  }));
}
