/**
 * MySQL workload end to end: a real MariaDB server (private datadir, socket and loopback port,
 * started by the workload's own phases) and sysbench 1.0 oltp_read_only on MEMORY tables, run
 * through runPhases and parsed into samples.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execa } from 'execa';
import { describeWith } from '../support/components.ts';
import { getWorkload, runPhases, type Phase, type WorkloadParams } from '../../src/workloads/index.ts';
import { mysqlPaths } from '../../src/workloads/mysql/index.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { freePort } from '../host/sshd-harness.ts';


function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const PASSWORD = "nu'ks\\m-secret";

/** Every process's command line now (pid → argv joined by spaces); processes that vanish are skipped. */
async function commandLines(): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const text = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (text) out.set(Number(d), text.split('\0').join(' '));
  }
  return out;
}

describeWith(['mariadb', 'sysbench'], 'mysql workload: real MariaDB + sysbench 1.0 oltp_read_only (MEMORY engine)', () => {
  const workload = getWorkload('mysql');
  const exec = new LocalExecutor();
  let workDir = '';
  let params: WorkloadParams;
  let phases: Phase[];
  let serverPid: number | null = null;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'nuksm-mysql-'));
    params = workload.resolveParams('small', {
      port: await freePort(),
      tableSize: 20_000,
      clients: 4,
      timeS: 4,
      reportIntervalS: 1,
      // Quote and backslash: the setup SQL must escape them for the server to accept sysbench's login.
      password: PASSWORD,
    });
    phases = workload.phases(params, { installDir: workDir, workDir });
  });

  afterAll(async () => {
    // Stop the server even when a test failed before the workload's own shutdown phase ran.
    const paths = mysqlPaths(workDir);
    await execa('mariadb-admin', ['--no-defaults', `--socket=${paths.socket}`, '--user=root', '--connect-timeout=2', 'shutdown'], { reject: false, timeout: 60_000 });
    if (serverPid !== null && processAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    await rm(workDir, { recursive: true, force: true });
  });

  it('install finds MariaDB and sysbench 1.0 and records their versions', async () => {
    const result = await workload.install({ exec, cacheDir: join(workDir, 'no-cache-needed'), installDir: workDir, params });
    expect(result.record.sysbench).toMatch(/^sysbench 1\.0\.\d+/);
    expect(result.record.mariadbd).toMatch(/MariaDB/);
  });

  it('starts a private server, runs oltp_read_only on MEMORY tables, parses tps, latency and the interval series, and stops the server', async () => {
    const cleanupStart = phases.findIndex((p) => p.name === 'cleanup');
    const untilRun = phases.slice(0, cleanupStart);
    const cleanup = phases.slice(cleanupStart);
    expect(untilRun.some((p) => p.timed)).toBe(true);

    // While the phases run, no process's argv may hold the password (issue 10 item 12): scan /proc.
    const leaks = new Set<string>();
    let sysbenchSeen = 0;
    let scanning = true;
    const scan = (async () => {
      while (scanning) {
        for (const line of (await commandLines()).values()) {
          if (line.includes('sysbench oltp_read_only')) sysbenchSeen++;
          if (line.includes(PASSWORD) || line.includes("nu''ks")) leaks.add(line);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await runPhases(exec, untilRun).finally(() => (scanning = false));
    await scan;
    expect([...leaks]).toEqual([]);
    expect(sysbenchSeen).toBeGreaterThanOrEqual(3); // the scan did see the benchmark running (a scan of /proc takes ~0.5 s here)
    for (const f of [mysqlPaths(workDir).sysbenchSecrets, mysqlPaths(workDir).setupSql]) expect((await stat(f)).mode & 0o777).toBe(0o600);
    serverPid = Number((await readFile(mysqlPaths(workDir).pidFile, 'utf8')).trim());
    expect(processAlive(serverPid)).toBe(true);

    // The table really is in-memory, and the server really listens on its own loopback port.
    const clientOptions = join(workDir, 'client.cnf');
    await writeFile(clientOptions, `[client]\npassword="${PASSWORD.replace(/\\/g, '\\\\')}"\n`, { mode: 0o600 });
    const engine = await execa('mariadb', [`--defaults-file=${clientOptions}`, '-h', '127.0.0.1', `--port=${params.port}`, '-u', String(params.user),
      '-N', '-e', `SELECT ENGINE, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA='${params.database}' AND TABLE_NAME='sbtest1'`], { timeout: 30_000 });
    expect(engine.stdout.trim().split(/\s+/)).toEqual(['MEMORY', '20000']);

    const samples = workload.parse(result.parsedOutput, { instance: 'vm0', params });
    const once = (metric: string) => samples.filter((s) => s.metric === metric && s.t === null);
    expect(once('throughput_ops')).toHaveLength(1);
    expect(once('throughput_ops')[0]!.value).toBeGreaterThan(0);
    expect(once('runtime_s')[0]!.value).toBeGreaterThanOrEqual(4);
    expect(once('latency_avg_ms')[0]!.value).toBeGreaterThan(0);
    expect(once('latency_p95_ms')[0]!.value).toBeGreaterThanOrEqual(once('latency_avg_ms')[0]!.value * 0.5);
    const series = samples.filter((s) => s.metric === 'throughput_ops' && s.t !== null);
    expect(series.length).toBeGreaterThanOrEqual(3);
    expect(series.map((s) => s.t)).toEqual(series.map((_, i) => i + 1));
    expect(series.every((s) => s.value > 0 && s.instance === 'vm0' && s.workload === 'mysql' && s.unit === 'ops/s')).toBe(true);
    // Interval tps averages to about the overall tps (same run, same clock).
    const meanInterval = series.reduce((a, s) => a + s.value, 0) / series.length;
    expect(meanInterval / once('throughput_ops')[0]!.value).toBeGreaterThan(0.5);
    expect(meanInterval / once('throughput_ops')[0]!.value).toBeLessThan(2);

    await runPhases(exec, cleanup);
    for (let i = 0; i < 100 && processAlive(serverPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(processAlive(serverPid)).toBe(false);
  });
});
