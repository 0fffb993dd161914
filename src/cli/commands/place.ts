/**
 * `nuksm place --policy fair|priority --pids P,Q | --cgroup G [--dry-run]`: nuKSM's placement of KSM pages
 * on a stock kernel, from user space (src/host/placement; docs/placement.md). Needs root on this host.
 */
import type { Argv, CommandModule } from 'yargs';
import { LocalExecutor } from '../../host/exec/index.ts';
import { ensureMovePagesHelper, PlacementEngine, resolvePlacementTargets } from '../../host/placement/index.ts';

export interface PlaceArgs {
  policy: 'fair' | 'priority';
  pids?: string;
  cgroup?: string;
  nodes?: string;
  dryRun: boolean;
  watch: boolean;
  rounds: number;
  pagesPerSecond: number;
  cpuBudget: number;
  seed: number;
  accessSignal: 'auto' | 'none';
  helperDir: string;
  json: boolean;
}

const numberList = (s: string | undefined): number[] | undefined => (s === undefined ? undefined : s.split(',').filter((x) => x.trim() !== '').map(Number));

export const placeCommand: CommandModule<object, PlaceArgs> = {
  command: 'place',
  describe: 'Place KSM-merged pages across NUMA nodes as nuKSM would (fair or priority), from user space on a stock kernel',
  builder: (y: Argv<object>) =>
    y
      .option('policy', { choices: ['fair', 'priority'] as const, demandOption: true, describe: 'fair: each sharer gets its share local (the active copy wins); priority: by nice' })
      .option('pids', { type: 'string', describe: 'comma-separated PIDs of the processes sharing merged pages' })
      .option('cgroup', { type: 'string', describe: 'a cgroup (path under /sys/fs/cgroup) whose processes to place' })
      .option('nodes', { type: 'string', describe: 'home node of each PID, in order (default: where most of its memory is)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the moves one round would make, move nothing' })
      .option('watch', { type: 'boolean', default: false, describe: 'keep placing new merges until interrupted (default: stop once converged)' })
      .option('rounds', { type: 'number', default: 20, describe: 'most rounds without --watch' })
      .option('pages-per-second', { type: 'number', default: 50_000, describe: 'rate limit on moved pages' })
      .option('cpu-budget', { type: 'number', default: 0.5, describe: 'fraction of one CPU the engine may use' })
      .option('seed', { type: 'number', default: 1, describe: 'seed of the random choices (priority, fair 1/K)' })
      .option('access-signal', { choices: ['auto', 'none'] as const, default: 'auto' as const, describe: 'auto: DAMON where the kernel has it; none: round robin' })
      .option('helper-dir', { type: 'string', default: '/var/lib/nuksm/placement-helper', describe: 'where the move_pages helper is compiled if needed' })
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable JSON on stdout' })
      .check((a) => {
        if (!a.pids && !a.cgroup) throw new Error('give --pids or --cgroup');
        return true;
      }) as unknown as Argv<PlaceArgs>,
  handler: async (args) => {
    const exec = new LocalExecutor();
    const instances = await resolvePlacementTargets(exec, { pids: numberList(args.pids), cgroup: args.cgroup, nodes: numberList(args.nodes) });
    const helper = args.dryRun ? null : await ensureMovePagesHelper(exec, { candidates: [], installDir: args.helperDir });
    const log = (l: string) => process.stderr.write(`${l}\n`);
    const engine = new PlacementEngine(exec, instances, { policy: args.policy, helper, dryRun: args.dryRun, pagesPerSecond: args.pagesPerSecond, cpuBudget: args.cpuBudget, seed: args.seed, accessSignal: args.accessSignal, log });
    await engine.start();
    let converged: number | null = null;
    try {
      if (args.dryRun) await engine.round();
      else if (args.watch) {
        const abort = new AbortController();
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => abort.abort());
        await engine.run(abort.signal);
      } else converged = await engine.converge(args.rounds);
    } finally {
      await engine.stop();
    }
    const planned = engine.rounds[0]?.planned ?? [];
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ policy: args.policy, instances, signal: engine.signal, signalReason: engine.signalReason, dryRun: args.dryRun, convergedS: converged, moved: engine.movedTotal, cpuS: engine.cpuTotalS, rounds: engine.rounds.map(({ planned: p, ...r }) => ({ ...r, plannedMoves: p.length })), ...(args.dryRun ? { moves: planned } : {}) }, null, 2)}\n`);
      return;
    }
    process.stdout.write(`instances: ${instances.map((i) => `${i.name} (node ${i.node}, nice ${engine.nices[instances.indexOf(i)]})`).join(', ')}; access signal: ${engine.signal} (${engine.signalReason})\n`);
    if (args.dryRun) {
      for (const m of planned) process.stdout.write(`would move ${m.instance} 0x${m.address.toString(16)}: node ${m.fromNode} -> ${m.toNode}\n`);
      process.stdout.write(`${planned.length} of ${engine.rounds[0]?.examined ?? 0} KSM pages would move (dry run: nothing moved)\n`);
    } else {
      process.stdout.write(`${engine.rounds.length} rounds, ${engine.movedTotal} pages moved, ${engine.cpuTotalS.toFixed(2)} CPU s${converged !== null ? `, converged after ${converged.toFixed(1)} s` : args.watch ? '' : ', not converged'}\n`);
    }
  },
};
