import { describe, expect, it } from 'vitest';
import { accessedAt, niceFromStat, parseMoveOutput, parseSharersOutput } from '../../../src/host/placement/index.ts';

describe('placement engine parsers', () => {
  it('reads the --sharers read-out of ksm-pages.cjs', () => {
    const s = parseSharersOutput('K 4660 1 0:7f00a,1:7e00a\nK 4661 0 0:7f00b\nS nodes=0,1 cpu_s=0.250000\n');
    expect(s.nodes).toEqual([0, 1]);
    expect(s.cpuS).toBe(0.25);
    expect(s.pages).toEqual([
      { pfn: 4660, node: 1, maps: [[0, 0x7f00a], [1, 0x7e00a]] },
      { pfn: 4661, node: 0, maps: [[0, 0x7f00b]] },
    ]);
  });

  it('reads nuksm-move-pages output and insists on its summary line', () => {
    const r = parseMoveOutput('12 7f00a000 0\n12 7f00b000 -14\nNUKSM_MOVE requests=2 moved=1 failed=1 cpu_s=0.001000\n');
    expect(r.statuses.get('12 7f00a000')).toBe(0);
    expect(r.statuses.get('12 7f00b000')).toBe(-14);
    expect([r.moved, r.failed, r.cpuS]).toEqual([1, 1, 0.001]);
    expect(() => parseMoveOutput('12 7f00a000 0\n')).toThrow(/summary/);
  });

  it('takes nice from /proc/PID/stat even when the comm has spaces and parentheses', () => {
    const stat = '4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 -11 1 0 100 1000 50';
    expect(niceFromStat(stat)).toBe(-11);
  });

  it('looks up DAMON regions by address', () => {
    const regions = [
      { start: 0x1000, end: 0x3000, nrAccesses: 0 },
      { start: 0x3000, end: 0x8000, nrAccesses: 4 },
    ];
    expect(accessedAt(regions, 0x1000)).toBe(false);
    expect(accessedAt(regions, 0x7fff)).toBe(true);
    expect(accessedAt(regions, 0x8000)).toBe(false);
  });
});
