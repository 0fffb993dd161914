// One simulated point of the Fig. 8 sensitivity sweep (bench/fig8-sweep.ts) in its own process. Argument: a JSON
// Fig8Point { mode, vm1StartS, hogStartS, reserveGiB, comparisonCostFactor }. Prints one JSON line: the outcome,
// the free-memory trajectory (for outcomes derived at larger reserves) and the wall time.
import type { Fig8Point } from '../src/testbeds/model/fig8-sweep.ts';
import { simulateFig8Point } from '../src/testbeds/model/fig8-sweep.ts';
import { paperModelTestbedFile, simulatedHostOf } from '../src/testbeds/model/index.ts';

const p = JSON.parse(process.argv[2]!) as Fig8Point;
const t0 = process.hrtime.bigint();
const r = await simulateFig8Point(p, simulatedHostOf(paperModelTestbedFile()));
process.stdout.write(JSON.stringify({ ...r, wallS: Number(process.hrtime.bigint() - t0) / 1e9 }) + '\n');
