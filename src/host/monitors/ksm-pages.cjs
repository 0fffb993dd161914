// KSM pages per NUMA node for given PIDs, run ON the target host (root) by ksm-placement.ts via
// `node -e <this file> <pageSize> <pid>…`. pagemap and kpageflags are binary and indexed by
// virtual page / pfn, so reading them remotely through cat would move far too much data.
// Output: one JSON object per PID per line.
// With `--sharers` first (the user-space placement engine, src/host/placement/engine.ts): one line per KSM
// page mapped by any of the PIDs, "K <pfn> <node> <pidIndex>:<vpn hex>,…", then
// "S nodes=<n,…> cpu_s=<this script's CPU>".
'use strict';
const fs = require('fs');
const KPF_KSM = 1 << 21;
const PRESENT = 0x80000000; // bit 63 of the pagemap entry, in its high 32 bits
const rawArgs = process.argv.slice(1).filter((a) => a !== '--' && !a.endsWith('.cjs'));
const sharersMode = rawArgs[0] === '--sharers';
const args = sharersMode ? rawArgs.slice(1) : rawArgs;
const pageSize = Number(args[0]);
const pids = args.slice(1).map(Number);

let nodes = [];

function nodeOfBlockMap() {
  const blockSize = parseInt(fs.readFileSync('/sys/devices/system/memory/block_size_bytes', 'utf8').trim(), 16);
  const map = new Map();
  for (const d of fs.readdirSync('/sys/devices/system/node')) {
    const n = /^node(\d+)$/.exec(d);
    if (!n) continue;
    for (const e of fs.readdirSync('/sys/devices/system/node/' + d)) {
      const b = /^memory(\d+)$/.exec(e);
      if (b) map.set(Number(b[1]), Number(n[1]));
    }
  }
  nodes = [...new Set(map.values())].sort((a, b) => a - b);
  return (pfn) => {
    const node = map.get(Math.floor((pfn * pageSize) / blockSize));
    return node === undefined ? -1 : node;
  };
}

// Mappings with resident pages only, from smaps: a process may reserve terabytes of PROT_NONE or
// never-touched address space (mariadbd reserves ~8 TiB), and walking its pagemap takes minutes.
function residentRanges(pid) {
  const ranges = [];
  let current = null;
  for (const line of fs.readFileSync('/proc/' + pid + '/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+)\s/.exec(line);
    if (head) {
      current = line.endsWith('[vsyscall]') ? null : [parseInt(head[1], 16) / pageSize, parseInt(head[2], 16) / pageSize];
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current && Number(rss[1]) > 0) ranges.push(current);
  }
  return ranges;
}

// Present pages of pid: pfns in address order; with vpns, their virtual page numbers alongside.
function presentPfns(pid, vpns) {
  const ranges = residentRanges(pid);
  const fd = fs.openSync('/proc/' + pid + '/pagemap', 'r');
  const pfns = [];
  let presentWithoutPfn = 0;
  const CHUNK = 65536;
  const buf = Buffer.alloc(CHUNK * 8);
  try {
    for (const [first, end] of ranges) {
      for (let vpn = first; vpn < end; vpn += CHUNK) {
        const n = Math.min(CHUNK, end - vpn);
        let got;
        try {
          got = fs.readSync(fd, buf, 0, n * 8, vpn * 8) / 8;
        } catch {
          break;
        }
        for (let i = 0; i < got; i++) {
          const hi = buf.readUInt32LE(i * 8 + 4);
          if (!(hi & PRESENT)) continue;
          const pfn = (hi & 0x7fffff) * 4294967296 + buf.readUInt32LE(i * 8);
          if (pfn === 0) presentWithoutPfn++;
          else {
            pfns.push(pfn);
            if (vpns) vpns.push(vpn + i);
          }
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { pfns, presentWithoutPfn };
}

function ksmFlags(flagsFd, sortedUnique) {
  const ksm = new Set();
  const WINDOW = 8192;
  const buf = Buffer.alloc(WINDOW * 8);
  let i = 0;
  while (i < sortedUnique.length) {
    const start = sortedUnique[i];
    let j = i;
    while (j + 1 < sortedUnique.length && sortedUnique[j + 1] < start + WINDOW) j++;
    const len = sortedUnique[j] - start + 1;
    const got = fs.readSync(flagsFd, buf, 0, len * 8, start * 8) / 8;
    for (let k = i; k <= j; k++) {
      const off = sortedUnique[k] - start;
      if (off < got && buf.readUInt32LE(off * 8) & KPF_KSM) ksm.add(sortedUnique[k]);
    }
    i = j + 1;
  }
  return ksm;
}

const nodeOf = nodeOfBlockMap();
const flagsFd = fs.openSync('/proc/kpageflags', 'r');
if (sharersMode) {
  // KSM pfn -> mappings "pidIndex:vpn" of the given PIDs.
  const sharers = new Map();
  pids.forEach((pid, index) => {
    const vpns = [];
    const { pfns } = presentPfns(pid, vpns);
    const ksm = ksmFlags(flagsFd, [...new Set(pfns)].sort((a, b) => a - b));
    for (let i = 0; i < pfns.length; i++) {
      if (!ksm.has(pfns[i])) continue;
      const m = index + ':' + vpns[i].toString(16);
      const list = sharers.get(pfns[i]);
      if (list) list.push(m);
      else sharers.set(pfns[i], [m]);
    }
  });
  const lines = [];
  for (const [pfn, list] of sharers) lines.push('K ' + pfn + ' ' + nodeOf(pfn) + ' ' + list.join(','));
  const cpu = process.cpuUsage();
  lines.push('S nodes=' + nodes.join(',') + ' cpu_s=' + ((cpu.user + cpu.system) / 1e6).toFixed(6));
  process.stdout.write(lines.join('\n') + '\n');
} else {
  for (const pid of pids) {
    const { pfns, presentWithoutPfn } = presentPfns(pid);
    const unique = [...new Set(pfns)].sort((a, b) => a - b);
    const ksm = ksmFlags(flagsFd, unique);
    const out = { pid, nodes, presentPages: pfns.length + presentWithoutPfn, presentWithoutPfn, presentByNode: {}, ksmMappedByNode: {}, ksmDistinctByNode: {} };
    const add = (o, k) => (o[k] = (o[k] || 0) + 1);
    for (const pfn of pfns) {
      const node = nodeOf(pfn);
      add(out.presentByNode, node);
      if (ksm.has(pfn)) add(out.ksmMappedByNode, node);
    }
    for (const pfn of ksm) add(out.ksmDistinctByNode, nodeOf(pfn));
    process.stdout.write(JSON.stringify(out) + '\n');
  }
}
fs.closeSync(flagsFd);
