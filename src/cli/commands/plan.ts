/** `nuksm plan <spec> --testbed <file>`: validate and show what a campaign would do, run nothing. */
import type { Argv, CommandModule } from 'yargs';
import { readYaml } from '../../campaign/config-error.ts';
import { planCampaign } from '../../campaign/campaign.ts';
import { ESTIMATE, type Plan } from '../../campaign/plan.ts';
import { summarizeShards, type Sharding } from '../../campaign/shard.ts';
import { planShards } from '../../campaign/shard-campaign.ts';
import type { Fleet } from '../../campaign/fleet.ts';
import { duration, textTable } from '../format.ts';
import { withJson, withSpecAndTestbed } from '../options.ts';

export interface PlanArgs {
  spec: string;
  testbed: string;
  iterations?: number;
  interleave?: 'none' | 'abba';
  experimentsDir: string;
  shards?: number;
  fleet?: string;
  json: boolean;
}

/** What runs in a step (a native stand-in shows as `*-native`, never under a real benchmark's name). */
function workloadsOf(step: Plan['steps'][number]): string {
  return [...new Set(step.scenario.workloads.map((w) => w.workload))].join(', ') || '-';
}

/** When a step runs: always, or (an adaptive iteration) while its configuration's CI is too wide. */
function runsWhen(s: Plan['steps'][number]): string {
  return s.adaptive ? `if ${s.adaptive.targets.map((t) => `${t.metric} CI > ${t.ciPct}%`).join(' or ')}` : 'always';
}

export function formatPlan(plan: Plan): string {
  const conditional = plan.steps.filter((s) => s.adaptive);
  const out: string[] = [];
  out.push(`Campaign ${plan.spec} on ${plan.testbed.name} (${plan.testbed.kind}, ${plan.testbed.file})`);
  out.push(`${plan.steps.length} steps, seed ${plan.seed}, interleave ${plan.interleave}\n`);
  out.push('Steps');
  out.push(
    textTable(
      ['#', 'step', 'workload', 'kernel', 'boot', 'estimate', 'feeds', ...(conditional.length ? ['runs'] : [])],
      plan.steps.map((s) => [s.seq, s.stepId, workloadsOf(s), s.kernel ?? 'UNSUPPORTED', s.boot ?? '-', s.unsupported ? '-' : duration(s.estimateS), s.figures.join(' '), ...(conditional.length ? [runsWhen(s)] : [])]),
    ),
  );
  if (conditional.length) {
    const atMostS = conditional.reduce((sum, s) => sum + s.estimateS, 0);
    out.push(`${conditional.length} step(s) are adaptive iterations ('runs'): each runs only while its configuration's 95% CI is wider than the target, else it is recorded as not-needed. The estimate counts them all (the cap): if none is needed, the steps take ${duration(plan.estimate.stepsS - atMostS)} instead of ${duration(plan.estimate.stepsS)}.\n`);
  }
  const unsupported = plan.steps.filter((s) => s.unsupported);
  if (unsupported.length) out.push(`${unsupported.length} step(s) unsupported on this testbed (recorded as failure rows): ${unsupported[0]!.unsupported}\n`);
  out.push(`Boots (${plan.reboots} reboot(s)${plan.testbed.kind !== 'model' ? '; the first only if the machine runs another kernel' : '; this testbed does not reboot'})`);
  out.push(textTable(['boot', 'kernel', 'uname -r', 'GRUB entry', 'steps'], plan.boots.map((b) => [b.index, b.kernel, b.release, b.bootEntry, b.steps])));
  out.push('Pin map (instance → node / CPUs)');
  out.push(textTable(['experiment', 'config', 'instance', 'kind', 'node', 'cpus', 'GiB', 'nice'], plan.pinMap.map((p) => [p.experiment, p.configId, p.instance, p.kind, p.node, p.cpus.join(','), p.memoryGiB, p.nice])));
  out.push(
    `Estimated wall time: ${duration(plan.estimate.totalS)} (${(plan.estimate.totalS / 3600).toFixed(1)} h) = steps ${duration(plan.estimate.stepsS)} + reboots ${duration(plan.estimate.rebootsS)}` +
      `\n  per step: instance start (${ESTIMATE.vmBootS} s per VM step) + stagger + prepare + merge wait (fixed, or ${ESTIMATE.scansToConverge} KSM scans of the registered memory capped at the spec's maxS) + timed phase + teardown (${ESTIMATE.teardownS} s); see docs/campaigns.md` +
      (plan.testbed.kind === 'model' ? '\n  (the model testbed simulates these durations; its real wall time is seconds per step)' : ''),
  );
  return out.join('\n') + '\n';
}

/** Per shard: machine, kernels, steps, reboots, estimate; then the makespan next to the one-server estimate. */
export function formatShards(plan: Plan, sharding: Sharding, fleet: Fleet | null): string {
  const rows = summarizeShards(sharding, fleet);
  const out: string[] = [];
  out.push(`Campaign ${plan.spec} in ${sharding.count} shard(s) on ${fleet ? `fleet ${fleet.name} (${fleet.file})` : `${sharding.count} machine(s) like ${plan.testbed.file}`}, seed ${plan.seed}`);
  out.push(
    textTable(
      ['shard', 'machine', 'booted now', 'kernels', 'steps', 'reboots', 'estimate'],
      rows.map((r) => [r.index, r.machine ?? '-', r.running ?? (fleet ? 'unknown' : '-'), r.kernels.join(', ') || '-', r.steps, r.reboots, duration(r.estimateS)]),
    ),
  );
  const reboots = rows.reduce((s, r) => s + r.reboots, 0);
  out.push(`Reboots: ${reboots} in all${plan.testbed.kind === 'model' ? ' (this testbed does not reboot)' : fleet ? " (a shard's first boot is not counted when its machine already runs that kernel)" : " (each shard's first boot counted: the machines' kernels are not known; give --fleet)"}`);
  out.push(`Estimated makespan: ${duration(sharding.makespanS)} (${(sharding.makespanS / 3600).toFixed(1)} h), the longest shard; one server: ${duration(sharding.oneServerS)} (${(sharding.oneServerS / 3600).toFixed(1)} h)`);
  return out.join('\n') + '\n';
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan <spec>',
  describe: 'Validate a campaign and print its steps, reboots, pin map, estimated time and figures (runs nothing)',
  builder: (y: Argv<object>) =>
    withJson(withSpecAndTestbed(y))
      .option('shards', { type: 'number', describe: 'split the campaign into this many shards (one machine each) and show them' })
      .option('fleet', { type: 'string', describe: 'fleet file (experiments/fleets/*.yaml): the machines, their testbed files and booted kernels (docs/slurm.md)' }) as unknown as Argv<PlanArgs>,
  handler: (args) => {
    const req = { spec: args.spec, testbedFile: args.testbed, iterations: args.iterations, interleave: args.interleave, experimentsDir: args.experimentsDir, campaignId: 'planned' };
    if (args.shards !== undefined || args.fleet !== undefined) {
      const { plan, sharding, fleet } = planShards({ ...req, shards: args.shards ?? fleetSize(args.fleet), fleetFile: args.fleet });
      process.stdout.write(args.json ? `${JSON.stringify({ makespanS: sharding.makespanS, oneServerS: sharding.oneServerS, shards: summarizeShards(sharding, fleet) }, null, 2)}\n` : formatShards(plan, sharding, fleet));
      return;
    }
    const { plan } = planCampaign(req);
    process.stdout.write(args.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
  },
};

/** --fleet without --shards: one shard per machine. */
export function fleetSize(file: string | undefined): number {
  if (file === undefined) return 1;
  const raw = readYaml(file) as { machines?: unknown };
  return Array.isArray(raw?.machines) ? raw.machines.length : 1; // a bad file is reported by loadFleet
}
