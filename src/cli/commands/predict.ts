/**
 * `nuksm predict <spec> --testbed <real testbed file>`: the reference model's prediction of exactly that
 * run. The spec is planned and checked against the real testbed file as `nuksm run` would (so what would
 * be refused there is refused here), then run on the model testbed with that file's nodes, memory,
 * kernels and modes (src/testbeds/model/predict.ts). The result is a campaign of its own (testbed=model,
 * implementation=model in every row) that `nuksm compare <measured> <prediction>` sets next to a
 * measured campaign of the same spec. Prints the placement per instance and the KSM counters per step.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { stringify } from 'yaml';
import { checkCampaignId, createCampaignFromPlan, planCampaign, resultsRoot } from '../../campaign/campaign.ts';
import { ConfigError } from '../../core/errors.ts';
import { STORE_FILE } from '../../results/store.ts';
import { counterLines, placementLines } from '../../results/prediction.ts';
import { checkPredictable, modelTestbedDataFor } from '../../testbeds/model/predict.ts';
import { textTable } from '../format.ts';
import type { RunArgs } from './run.ts';
import { withJson, withResultsDir, withSpecAndTestbed } from '../options.ts';
import { finishCampaign, runOpenCampaign, type CampaignRun } from '../run-campaign.ts';

/** `nuksm run`'s arguments without the ones a prediction has no use for (it runs the whole plan here). */
export type PredictArgs = Omit<RunArgs, 'maxSteps' | 'shard' | 'fleet'>;

/** The model testbed file a prediction ran on, kept in its campaign directory (the plan names it). */
export const PREDICT_TESTBED_FILE = 'model-testbed.yaml';

export async function predictCampaign(args: Omit<PredictArgs, 'json'>, opts: { quiet?: boolean } = {}): Promise<CampaignRun> {
  const req = { spec: args.spec, testbedFile: args.testbed, iterations: args.iterations, interleave: args.interleave, experimentsDir: args.experimentsDir };
  if (args.campaignId !== undefined) checkCampaignId(args.campaignId, '--campaign-id');
  // Against the real file first: every spec/testbed check of `nuksm run`, before anything is created.
  const real = planCampaign(req);
  checkPredictable(real.spec);
  const id = args.campaignId ?? `predict-${real.plan.campaign}`;
  const dir = join(resultsRoot(args.resultsDir), id);
  if (existsSync(join(dir, STORE_FILE))) throw new ConfigError('command line', '--campaign-id', `campaign '${id}' already exists in ${dir}; choose a new id`);
  const testbedFile = join(dir, PREDICT_TESTBED_FILE);
  const modelData = modelTestbedDataFor(real.testbed);
  mkdirSync(dir, { recursive: true });
  writeFileSync(testbedFile, `# nuksm predict: the model standing in for ${real.testbed.file} (${real.testbed.name})\n${stringify(modelData)}`);
  const planned = planCampaign({ ...req, testbedFile, campaignId: id });
  const c = createCampaignFromPlan(planned.plan, planned.spec, args.resultsDir);
  if (!opts.quiet) process.stderr.write(`prediction ${id}: ${c.plan.steps.length} steps of ${real.plan.spec} simulated by the model for ${real.testbed.name} → ${c.dir}\n`);
  return { c, ...(await runOpenCampaign(c, { quiet: opts.quiet })) };
}

const pct = (v: number | null) => (v === null ? '-' : v.toFixed(2));

export const predictCommand: CommandModule<object, PredictArgs> = {
  command: 'predict <spec>',
  describe: "The model's prediction (placement, counters, timeline) of a spec on a real testbed file: a campaign on the model testbed with that file's topology and kernels",
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(withSpecAndTestbed(y))).option('campaign-id', { type: 'string', describe: 'id of the prediction campaign (default: predict-<spec>-<time>-<random>)' }) as unknown as Argv<PredictArgs>,
  handler: async (args) => {
    const run = await predictCampaign(args, { quiet: args.json });
    if (run.c && !args.json) {
      const rows = run.c.store.rows();
      const place = placementLines(rows);
      const counters = counterLines(rows);
      process.stdout.write('MODEL PREDICTION (testbed=model, implementation=model): not a measurement\n');
      process.stdout.write(
        textTable(
          ['step', 'mode', 'kernel', 'instance', 'merged pages local %', 'merged pages per node'],
          place.map((l) => [l.step, l.mode, l.kernel, l.instance, pct(l.ksmLocalPct), Object.entries(l.pagesOnNode).map(([n, v]) => `${n}:${v}`).join(' ')]),
        ),
      );
      process.stdout.write(textTable(['step', 'pages_sharing', 'pages_shared', 'full_scans', 'timeline points'], counters.map((l) => [l.step, String(l.pagesSharing ?? '-'), String(l.pagesShared ?? '-'), String(l.fullScans ?? '-'), String(l.timelinePoints)])));
    }
    finishCampaign(run, args.json);
  },
};
