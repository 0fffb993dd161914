/** Parsers for the /proc files the monitors read (tested against captured real files). */

/** /proc/meminfo → field → bytes (fields in kB are converted; counts such as HugePages_Total stay counts). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * (m[3] ? 1024 : 1);
  }
  return out;
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  /** Clock ticks in user and kernel mode (fields 14 and 15). */
  utime: number;
  stime: number;
  /** Start time after boot, clock ticks (field 22). */
  starttime: number;
}

/** /proc/PID/stat. comm may contain spaces and parentheses, so split at the LAST ')'. */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/PID/stat line: '${text.slice(0, 80)}'`);
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  // Fields after comm start at field 3 (state).
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const field = (n: number): string => {
    const v = rest[n - 3];
    if (v === undefined) throw new Error(`/proc/${pid}/stat has no field ${n}`);
    return v;
  };
  return { pid, comm, state: field(3), utime: Number(field(14)), stime: Number(field(15)), starttime: Number(field(22)) };
}

/** /proc/uptime → seconds since boot (first field). */
export function parseUptime(text: string): number {
  const v = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(v)) throw new Error(`not /proc/uptime: '${text}'`);
  return v;
}

/** CPU percent of one core over an interval, from tick deltas and the elapsed seconds. */
export function cpuPercent(prev: { ticks: number; uptimeS: number }, cur: { ticks: number; uptimeS: number }, clkTck: number): number | null {
  const dt = cur.uptimeS - prev.uptimeS;
  if (dt <= 0) return null;
  return ((cur.ticks - prev.ticks) / clkTck / dt) * 100;
}

/** /proc/PID/numa_maps → bytes per node (sum over all mappings of N<nid>=pages × kernelpagesize_kB). */
export function parseNumaMaps(text: string): Map<number, number> {
  const perNode = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const pageKiB = Number(/\bkernelpagesize_kB=(\d+)/.exec(line)?.[1] ?? 4);
    for (const m of line.matchAll(/\bN(\d+)=(\d+)/g)) {
      const node = Number(m[1]);
      perNode.set(node, (perNode.get(node) ?? 0) + Number(m[2]) * pageKiB * 1024);
    }
  }
  return perNode;
}
