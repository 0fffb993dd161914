/**
 * A shard as a campaign of its own: `nuksm run <spec> --testbed … --shard k/N --campaign-id ID`
 * plans the whole campaign, shards it (src/campaign/shard.ts) and runs shard k in its own store,
 * `<results>/ID.shard<k>of<N>/`. Run again (a Slurm job resubmitted after a failure or a
 * preemption), it resumes that store from its journal, after checking it holds the same shard.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.ts';
import { createCampaignFromPlan, harnessCommit, isPlannedCampaign, openCampaign, planCampaign, resultsRoot, specHash, type OpenCampaign, type PlanRequest } from './campaign.ts';
import { loadFleet, type Fleet } from './fleet.ts';
import { shardPlan, shardCampaignId, type ShardPlan, type Sharding } from './shard.ts';

/** What a shard records of the harness that ran it: merge refuses shards of different harnesses. */
export interface HarnessVersion {
  version: string;
  commit: string | null;
}

export function harnessVersion(): HarnessVersion {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  return { version, commit: harnessCommit() };
}

export type RecordedShardPlan = ShardPlan & { specHash: string; shard: ShardPlan['shard'] & { harness: HarnessVersion } };

export interface ShardRequest extends PlanRequest {
  shards: number;
  fleetFile?: string;
}

/** Plans and shards a campaign (validating the fleet); nothing is created. */
export function planShards(req: ShardRequest): ReturnType<typeof planCampaign> & { fleet: Fleet | null; sharding: Sharding } {
  const planned = planCampaign(req);
  const fleet = req.fleetFile !== undefined ? loadFleet(req.fleetFile, planned.testbed) : null;
  return { ...planned, fleet, sharding: shardPlan(planned.plan, planned.testbed, req.shards, fleet) };
}

/** Creates shard `index` of the campaign, or opens it when it exists (a resubmitted job) and is the same shard. */
export function openOrCreateShard(req: ShardRequest & { resultsDir?: string }, index: number): OpenCampaign {
  if (req.campaignId === undefined) throw new ConfigError('command line', '--campaign-id', 'a shard needs the campaign id all shards share (nuksm slurm submit gives one)');
  const { spec, sharding, testbed } = planShards(req);
  if (testbed.kind === 'emulated' && !testbed.emulated?.inside) {
    throw new ConfigError(testbed.file, 'kind', 'a shard runs on the machine its job landed on; the emulated testbed runs its campaign inside its own machine and is not sharded');
  }
  const plan = sharding.shards[index - 1]!;
  const hash = specHash(spec);
  const id = shardCampaignId(req.campaignId, index, req.shards);
  if (isPlannedCampaign(join(resultsRoot(req.resultsDir), id))) {
    const c = openCampaign(req.resultsDir, id);
    const had = c.plan as RecordedShardPlan;
    const why =
      had.shard?.planDigest !== plan.shard.planDigest ? 'was planned from another campaign plan (spec, testbed, seed or iterations differ)' :
      had.specHash !== hash ? 'was made from other spec files (their content changed)' :
      had.steps.map((s) => s.stepId).join() !== plan.steps.map((s) => s.stepId).join() ? 'holds other steps (another fleet or shard count)' : null;
    if (why) {
      c.store.close();
      throw new ConfigError('command line', '--shard', `${c.dir} ${why}; use another --campaign-id`);
    }
    return c;
  }
  const recorded: RecordedShardPlan = { ...plan, specHash: hash, shard: { ...plan.shard, harness: harnessVersion() } };
  return createCampaignFromPlan(recorded, spec, req.resultsDir);
}
