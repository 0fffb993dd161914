/**
 * sysbench 1.0 output → samples. Lines read (sysbench 1.0.11 in the artifact, 1.0.20 here; same format):
 *   "    transactions:                        1512   (301.79 per sec.)"   → throughput_ops
 *   "    total time:                          5.0097s"                     → runtime_s (what the artifact parsed)
 *   "         avg:                                   13.24"  (Latency (ms) section) → latency_avg_ms
 *   "         95th percentile:                       22.69"                → latency_p95_ms
 *   "[ 1s ] thds: 4 tps: 357.69 qps: … lat (ms,95%): 13.22 …"           → throughput_ops / latency_p95_ms series
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, optionalNumber, parseError, requireNumber } from '../common.ts';

const INTERVAL_LINE = /^\[\s*(\d+(?:\.\d+)?)s\s*\]\s+thds:\s+\d+\s+tps:\s+([\d.]+)\s+qps:.*?lat \(ms,(\d+)%\):\s+([\d.]+)/;

export function parseSysbench(output: string, opts: ParseOptions = {}): Sample[] {
  const fatal = output.split('\n').filter((l) => l.startsWith('FATAL:'));
  if (fatal.length > 0 && !/total time:/.test(output)) {
    const causes = [...new Set(fatal.map((l) => l.slice('FATAL: '.length)))].slice(0, 3);
    throw parseError('mysql', `sysbench failed: ${causes.join('; ')}`, output);
  }
  const runtime = requireNumber('mysql', output, /^\s*total time:\s+([\d.]+)s\s*$/m, "'total time:' line");
  const tps = requireNumber('mysql', output, /^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/m, "'transactions: N (X per sec.)' line");
  const latencySection = /^Latency \(ms\):\n([\s\S]*?)(?:\n[ \t]*\n|(?![\s\S]))/m.exec(output)?.[1];
  if (latencySection === undefined) throw parseError('mysql', "no 'Latency (ms):' section in the output", output);
  const latAvg = requireNumber('mysql', latencySection, /^\s*avg:\s+([\d.]+)/m, "latency 'avg:' line");
  const latP95 = optionalNumber(latencySection, /^\s*95th percentile:\s+([\d.]+)/m);

  const samples: Sample[] = [
    makeSample('mysql', 'runtime_s', runtime, opts),
    makeSample('mysql', 'throughput_ops', tps, opts),
    makeSample('mysql', 'latency_avg_ms', latAvg, opts),
  ];
  if (latP95 !== null) samples.push(makeSample('mysql', 'latency_p95_ms', latP95, opts));

  for (const line of output.split('\n')) {
    const m = INTERVAL_LINE.exec(line);
    if (!m) {
      if (/^\[\s*\d/.test(line)) throw parseError('mysql', `unrecognised interval line: ${line}`, output);
      continue;
    }
    const t = Number(m[1]);
    samples.push(makeSample('mysql', 'throughput_ops', Number(m[2]), opts, t));
    if (m[3] === '95') samples.push(makeSample('mysql', 'latency_p95_ms', Number(m[4]), opts, t));
  }
  return samples;
}
