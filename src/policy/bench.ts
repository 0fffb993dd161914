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
  const t0 = process.hrtime.bigint();
  while (model.counters().fullScans < 4) model.wake();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = model.counters();
  const rate = model.totalPagesVisited / seconds;
  return `${JSON.stringify(overrides)}: ${model.totalPagesVisited} visits in ${seconds.toFixed(2)} s = ${(rate / 1e6).toFixed(1)} M visits/s; ` +
    `comparisons/merge ${(model.totalComparisons / model.totalMerges).toFixed(2)}; shared ${c.pagesShared} sharing ${c.pagesSharing}; ` +
    `KSM pages per node ${model.ksmPagesPerNode().join('/')}`;
}

const pages = Number(process.argv[2] ?? 4_000_000);
console.log(`two VMs x ${pages} present pages, 4 full passes`);
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
