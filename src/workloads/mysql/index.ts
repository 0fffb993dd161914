/**
 * MySQL workload: MariaDB (Debian's mariadb-server) + sysbench 1.0 `oltp_read_only` on MEMORY
 * tables, as in the artifact's EXP02 config (artifact.md §2.5). By default the workload manages
 * its own server: a private datadir, socket and loopback port under the run's workDir, so no
 * system service, sudo or shared state is involved and the server is stopped in cleanup.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { HarnessError } from '../../core/errors.ts';
import { registerSecret } from '../../core/secrets.ts';
import type { Executor } from '../../host/exec/types.ts';
import { num, paramResolver, positive, positiveInt, str } from '../common.ts';
import type { InstallContext, InstallResult, Phase, RunContext, Workload, WorkloadParams } from '../types.ts';
import { parseSysbench } from './parse.ts';

const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const schema = z.object({
  footprintGiB: positive,
  /** Paper Table I "thread count: 1" for MySQL; informational (the artifact left the server's threading at its default). */
  threads: positiveInt,
  /** sysbench client threads (paper: 100). */
  clients: positiveInt,
  tables: positiveInt,
  tableSize: positiveInt,
  pointSelects: positiveInt,
  /** sysbench --time; the artifact passed none, so sysbench's default 10 s applied. */
  timeS: positiveInt,
  /** sysbench --report-interval (0 = off); interval lines become a throughput time series. */
  reportIntervalS: z.number().int().min(0),
  randSeed: z.number().int(),
  randType: z.enum(['uniform', 'gaussian', 'special', 'pareto']),
  storageEngine: z.enum(['memory', 'innodb']),
  /** 'managed': start a private mariadbd in workDir; 'external': use an already running server. */
  server: z.enum(['managed', 'external']),
  /** Goes into `CREATE USER '<user>'@'<host>'` and --bind-address: a host name or address, nothing else. */
  host: z.string().regex(/^[A-Za-z0-9.:_%-]+$/),
  port: z.number().int().min(1).max(65535),
  user: z.string().regex(SQL_IDENTIFIER),
  /**
   * Never in argv: it reaches sysbench in a mode-0600 --config-file and the server in a setup SQL
   * file, and is redacted from logs and failures. At least 8 characters (a shorter one cannot be
   * told apart from ordinary text when redacting), one line, no surrounding spaces (option-file syntax).
   */
  password: z.string().min(8).regex(/^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/, 'one line without control characters or surrounding spaces'),
  database: z.string().regex(SQL_IDENTIFIER),
  /** OS user mariadbd runs as (managed server); '' = the executor's user (as root, --user=root is added, which mariadbd requires). */
  serverUser: z.string(),
  mariadbd: z.string().min(1),
  /** Per-phase timeout for the timed run; prepare gets its own, scaled with tableSize. */
  runTimeoutS: positiveInt,
});

const paper: WorkloadParams = {
  footprintGiB: 20,
  threads: 1,
  clients: 100,
  tables: 1,
  tableSize: 40_000_000,
  pointSelects: 100_000,
  timeS: 10,
  reportIntervalS: 0,
  randSeed: 1,
  randType: 'uniform',
  storageEngine: 'memory',
  server: 'managed',
  host: '127.0.0.1',
  port: 3307,
  user: 'nuksm',
  // The artifact's 'nuksm' is also the user and part of every path here: redacting it would mangle the logs.
  password: 'nuksm-sysbench-pw',
  database: 'nuksmbench',
  serverUser: '',
  mariadbd: '/usr/sbin/mariadbd',
  runTimeoutS: 7200,
};

const small: WorkloadParams = {
  ...paper,
  // mariadbd itself is ≈ 120 MiB resident here; the 100,000-row MEMORY table adds ≈ 20 MiB.
  footprintGiB: 0.125,
  clients: 4,
  tableSize: 100_000,
  pointSelects: 100,
  timeS: 3,
  reportIntervalS: 1,
  runTimeoutS: 300,
};

export interface MysqlPaths {
  datadir: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** sysbench --config-file holding mysql-password (mode 0600). */
  sysbenchSecrets: string;
  /** The CREATE USER … IDENTIFIED BY statement, fed to the client on stdin (mode 0600). */
  setupSql: string;
}

export function mysqlPaths(workDir: string): MysqlPaths {
  return {
    datadir: join(workDir, 'mariadb-data'),
    socket: join(workDir, 'mariadb.sock'),
    pidFile: join(workDir, 'mariadb.pid'),
    errorLog: join(workDir, 'mariadb.err'),
    sysbenchSecrets: join(workDir, 'sysbench-secrets.cfg'),
    setupSql: join(workDir, 'mariadb-setup.sql'),
  };
}

function sysbenchConnection(p: WorkloadParams, ctx: RunContext): string[] {
  return [
    '--db-driver=mysql',
    `--mysql-host=${str(p, 'host')}`,
    `--mysql-port=${num(p, 'port')}`,
    `--mysql-user=${str(p, 'user')}`,
    `--config-file=${mysqlPaths(ctx.workDir).sysbenchSecrets}`,
    `--mysql-db=${str(p, 'database')}`,
    `--tables=${num(p, 'tables')}`,
    `--table-size=${num(p, 'tableSize')}`,
    `--mysql-storage-engine=${str(p, 'storageEngine')}`,
    `--rand-type=${str(p, 'randType')}`,
    `--rand-seed=${num(p, 'randSeed')}`,
  ];
}

function managedServerPhases(p: WorkloadParams, ctx: RunContext): { start: Phase[]; stop: Phase[] } {
  const paths = mysqlPaths(ctx.workDir);
  const userArg = str(p, 'serverUser') === '' ? [] : [`--user=${str(p, 'serverUser')}`];
  // With no explicit serverUser, add --user=root only when the command really runs as root.
  const asRoot = str(p, 'serverUser') === '' ? 'if [ "$(id -u)" -eq 0 ]; then set -- "$@" --user=root; fi; ' : '';
  // MEMORY tables are capped by max_heap_table_size; the artifact set 20G for its 20 GiB footprint.
  const heapLimit = `${Math.max(1, Math.ceil(num(p, 'footprintGiB')))}G`;
  const admin = ['mariadb-admin', '--no-defaults', `--socket=${paths.socket}`, '--user=root'];
  const user = str(p, 'user');
  const host = str(p, 'host');
  const db = str(p, 'database');
  return {
    start: [
      {
        name: 'prepare',
        description: 'initialise a private MariaDB datadir',
        argv: ['sh', '-c', `rm -rf "$1" && mkdir -p "$1" && shift && ${asRoot}exec "$@"`, 'sh', paths.datadir,
          'mariadb-install-db', '--no-defaults', `--datadir=${paths.datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...userArg],
        expectedDurationS: 5,
        timeoutS: 120,
        timed: false,
        parsed: false,
      },
      {
        name: 'prepare',
        description: 'start mariadbd on loopback with its own socket and port (detached)',
        // The server outlives this command: its output goes to the error log, so no pipe keeps the command open.
        argv: ['sh', '-c', `log="$1"; shift; ${asRoot}"$@" >>"$log" 2>&1 </dev/null &`, 'sh', paths.errorLog,
          str(p, 'mariadbd'), '--no-defaults', `--datadir=${paths.datadir}`, `--socket=${paths.socket}`, `--port=${num(p, 'port')}`,
          `--bind-address=${host}`, `--pid-file=${paths.pidFile}`, `--log-error=${paths.errorLog}`, '--skip-log-bin',
          `--max-heap-table-size=${heapLimit}`, `--tmp-table-size=${heapLimit}`, ...userArg],
        expectedDurationS: 2,
        timeoutS: 30,
        timed: false,
        parsed: false,
      },
      {
        name: 'prepare',
        description: 'wait until mariadbd answers',
        // Polled every 0.2 s for up to 60 s (`mariadb-admin --wait` retries only every 5 s).
        argv: ['sh', '-c', 'i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); [ "$i" -ge 300 ] && exec "$@"; sleep 0.2; done', 'sh', ...admin, '--connect-timeout=2', 'ping'],
        expectedDurationS: 3,
        timeoutS: 90,
        timed: false,
        parsed: false,
      },
      {
        name: 'prepare',
        description: `create database ${db} and user ${user}@${host}`,
        // The statement holds the password: it comes from a secret file on stdin, not from -e.
        argv: ['sh', '-c', 'f=$1; shift; exec "$@" < "$f"', 'sh', paths.setupSql, 'mariadb', '--no-defaults', `--socket=${paths.socket}`, '--user=root'],
        expectedDurationS: 1,
        timeoutS: 60,
        timed: false,
        parsed: false,
      },
    ],
    stop: [
      {
        name: 'cleanup',
        description: 'stop the private mariadbd',
        argv: [...admin, '--connect-timeout=5', 'shutdown'],
        expectedDurationS: 3,
        timeoutS: 120,
        timed: false,
        parsed: false,
        alwaysRun: true,
      },
    ],
  };
}

/** The setup SQL: database, user and grant. The password is a SQL string literal: backslashes (MariaDB's escape character) and quotes escaped. */
export function setupSql(p: WorkloadParams): string {
  const [user, host, db] = [str(p, 'user'), str(p, 'host'), str(p, 'database')];
  const password = str(p, 'password').replace(/\\/g, '\\\\').replace(/'/g, "''");
  return `CREATE DATABASE IF NOT EXISTS ${db}; CREATE USER IF NOT EXISTS '${user}'@'${host}' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON ${db}.* TO '${user}'@'${host}';\n`;
}

function phases(p: WorkloadParams, ctx: RunContext): Phase[] {
  registerSecret(str(p, 'password'));
  const connection = sysbenchConnection(p, ctx);
  const managed = str(p, 'server') === 'managed' ? managedServerPhases(p, ctx) : { start: [], stop: [] };
  const reportInterval = num(p, 'reportIntervalS');
  const tableRows = num(p, 'tableSize') * num(p, 'tables');
  const list: Phase[] = [
    ...managed.start,
    {
      name: 'prepare',
      description: `sysbench oltp_read_only prepare: ${num(p, 'tables')} × ${num(p, 'tableSize')} rows, ${str(p, 'storageEngine')} engine`,
      argv: ['sysbench', 'oltp_read_only', ...connection, 'prepare'],
      // About 120k rows/s into MEMORY tables on this machine; generous because guests are slower.
      expectedDurationS: Math.ceil(tableRows / 100_000) + 2,
      timeoutS: Math.ceil(tableRows / 10_000) + 300,
      timed: false,
      parsed: false,
    },
    {
      name: 'run',
      description: `sysbench oltp_read_only run: ${num(p, 'clients')} clients, ${num(p, 'pointSelects')} point selects per transaction`,
      argv: ['sysbench', 'oltp_read_only', ...connection, `--threads=${num(p, 'clients')}`, `--time=${num(p, 'timeS')}`,
        `--point-selects=${num(p, 'pointSelects')}`, '--percentile=95', ...(reportInterval > 0 ? [`--report-interval=${reportInterval}`] : []), 'run'],
      expectedDurationS: num(p, 'timeS'),
      timeoutS: num(p, 'runTimeoutS'),
      timed: true,
      parsed: true,
    },
    {
      name: 'cleanup',
      description: 'sysbench cleanup (drop the tables)',
      argv: ['sysbench', 'oltp_read_only', ...connection, 'cleanup'],
      expectedDurationS: 2,
      timeoutS: 300,
      timed: false,
      parsed: false,
      alwaysRun: true,
    },
    ...managed.stop,
  ];
  // Written before the first phase; the later ones read them.
  const paths = mysqlPaths(ctx.workDir);
  list[0]!.secretFiles = [
    { path: paths.sysbenchSecrets, content: `mysql-password=${str(p, 'password')}\n` },
    ...(str(p, 'server') === 'managed' ? [{ path: paths.setupSql, content: setupSql(p) }] : []),
  ];
  return list;
}

async function versionOf(exec: Executor, argv: string[]): Promise<string | null> {
  const r = await exec.run(argv, { allowFailure: true, timeoutMs: 30_000 });
  return r.exitCode === 0 ? (r.stdout + r.stderr).trim().split('\n')[0]! : null;
}

/** MariaDB and sysbench come from Debian packages; installed with apt-get only when missing. */
async function install(ctx: InstallContext): Promise<InstallResult> {
  const mariadbd = typeof ctx.params.mariadbd === 'string' ? ctx.params.mariadbd : '/usr/sbin/mariadbd';
  let server = await versionOf(ctx.exec, [mariadbd, '--version']);
  let sysbench = await versionOf(ctx.exec, ['sysbench', '--version']);
  // Nothing is built: 'yes' = both were already installed (e.g. in a prepared guest image), no apt-get ran.
  const prebuilt = server !== null && sysbench !== null ? 'yes' : 'no';
  if (server === null || sysbench === null) {
    await ctx.exec.run(['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', 'mariadb-server', 'sysbench'], {
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: ctx.timeoutMs ?? 1_800_000,
      onStdout: ctx.onOutput,
      onStderr: ctx.onOutput,
    });
    // The packaged service would hold memory in the guest and skew de-duplication; the workload runs its own server.
    await ctx.exec.run(['systemctl', 'disable', '--now', 'mariadb'], { allowFailure: true, timeoutMs: 120_000 });
    server = await versionOf(ctx.exec, [mariadbd, '--version']);
    sysbench = await versionOf(ctx.exec, ['sysbench', '--version']);
  }
  if (server === null || sysbench === null) {
    throw new HarnessError('config', `mysql workload: ${server === null ? mariadbd : 'sysbench'} is not available on ${ctx.exec.target} even after apt-get install`);
  }
  if (!/^sysbench 1\.0\./.test(sysbench)) {
    throw new HarnessError('config', `mysql workload: needs sysbench 1.0.x (output format), found '${sysbench}' on ${ctx.exec.target}`);
  }
  return { record: { mariadbd: server, sysbench, prebuilt } };
}

const resolveParams = paramResolver('mysql', schema, { paper, small });

export const mysql: Workload = {
  name: 'mysql',
  description: 'MariaDB with sysbench 1.0 oltp_read_only on in-memory (MEMORY engine) tables',
  paper,
  small,
  metrics: [
    { metric: 'runtime_s', source: "'total time:' (what the artifact parsed)", series: false },
    { metric: 'throughput_ops', source: "'transactions: N (X per sec.)'", series: false },
    { metric: 'latency_avg_ms', source: "Latency (ms) 'avg:'", series: false },
    { metric: 'latency_p95_ms', source: "Latency (ms) '95th percentile:'", series: false },
    { metric: 'throughput_ops', source: "'[ Ns ] … tps: X' (--report-interval)", series: true },
    { metric: 'latency_p95_ms', source: "'[ Ns ] … lat (ms,95%): X' (--report-interval)", series: true },
  ],
  resolveParams: (variant, overrides, source) => {
    const p = resolveParams(variant, overrides, source);
    registerSecret(str(p, 'password'));
    return p;
  },
  install,
  phases,
  parse: parseSysbench,
};
