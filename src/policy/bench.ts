// Throughput of the reference model at paper scale: `node bin/run-ts.js src/policy/bench.ts [pagesPerVm]`.
// Two VMs on nodes 0 and 1; half of each VM's pages identical across the VMs, 5% identical within a VM
// (e.g. zero pages), the rest unique; 30% hot. Prints page visits per second for each policy/compare order.
import { KsmModel, defaultKsmModelConfig, type KsmModelConfig, type MmRegistration } from './index.ts';

function vm(name: string, node: number, pages: number, uniqueBase: number): MmRegistration {
  const contents = new Uint32Array(pages);
  const active = new Uint8Array(pages);
  for (let i = 0; i < pages; i++) {
    const r = i % 20;
    contents[i] = r < 10 ? i : r === 10 ? 4_000_000_000 : uniqueBase + i; // shared / zero-like / unique
    active[i] = i % 10 < 3 ? 1 : 0;
  }
  return { name, nice: 0, contents, nodes: new Uint8Array(pages).fill(node), active };
}

function bench(pages: number, overrides: Partial<KsmModelConfig>): string {
  const model = new KsmModel(defaultKsmModelConfig({ pagesToScan: 100_000, ...overrides }));
  model.registerMm(vm('vm0', 0, pages, 1_000_000_000));
  model.registerMm(vm('vm1', 1, pages, 2_000_000_000));
  // CPU time, not wall time: the machine is shared, and the model is single-threaded.
  const perPass: string[] = [];
  const cpu0 = process.cpuUsage();
  let last = cpu0;
  let visits = 0;
  for (let pass = 1; pass <= 6; pass++) {
    while (model.counters().fullScans < pass) model.wake();
    const now = process.cpuUsage();
    const seconds = (now.user - last.user + now.system - last.system) / 1e6;
    perPass.push(`${((model.totalPagesVisited - visits) / seconds / 1e6).toFixed(0)}`);
    visits = model.totalPagesVisited;
    last = now;
  }
  const total = process.cpuUsage(cpu0);
  const seconds = (total.user + total.system) / 1e6;
  const c = model.counters();
  return `${JSON.stringify(overrides)}: ${(model.totalPagesVisited / seconds / 1e6).toFixed(1)} M visits/CPU-s over 6 passes ` +
    `(per pass: ${perPass.join(' / ')} M/s; pass 2 does the merging); comparisons/merge ${(model.totalComparisons / model.totalMerges).toFixed(1)}; ` +
    `shared ${c.pagesShared} sharing ${c.pagesSharing}; KSM pages per node ${model.ksmPagesPerNode().join('/')}`;
}

const pages = Number(process.argv[2] ?? 4_000_000);
console.log(`two VMs x ${pages} present pages (50% identical across VMs, 5% one repeated content, 45% unique), 6 full passes`);
for (const o of [
  { policy: 'ksm' },
  { policy: 'ksm', compareOrder: 'from-6.11' },
  { policy: 'nuksm-fair' },
  { policy: 'nuksm-priority' },
  { policy: 'nuksm-fair', forestPagesPerTree: 25_600 },
  { policy: 'ksm', mergeAcrossNodes: false },
] as Array<Partial<KsmModelConfig>>) {
  console.log(bench(pages, o));
}
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
