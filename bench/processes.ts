/**
 * The processes a benchmark starts (workerd, a peer server): stopped however the benchmark ends,
 * and their CPU time read from /proc.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const running = new Map<number, () => Promise<void>>();
// Last resort (an exit that skipped the stops): nothing a benchmark started outlives it.
process.on('exit', () => {
  for (const pid of running.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

/**
 * Registers a process the benchmark started; returns its stop, which runs once. A watchdog kills
 * the process should this one die without stopping it (SIGKILL: workerd outlives its parent).
 */
export function track(pid: number, stop: () => Promise<void>): () => Promise<void> {
  const watch = 'while kill -0 "$2"; do kill -0 "$1" || exec kill -9 "$2"; sleep 1; done';
  spawn('sh', ['-c', watch, 'watchdog', String(process.pid), String(pid)], { detached: true, stdio: 'ignore' }).unref();
  let stopping: Promise<void> | undefined;
  const once = () => {
    stopping ??= stop().finally(() => running.delete(pid));
    return stopping;
  };
  running.set(pid, once);
  return once;
}

const stopAll = () => Promise.allSettled([...running.values()].map((stop) => stop()));

/**
 * Runs a benchmark's main, bounded: at `limitSeconds`, on SIGINT/SIGTERM or on an error, every
 * process it started (workerd, a peer) is stopped and the process exits non-zero.
 */
export async function runBounded(limitSeconds: number, main: () => Promise<void>): Promise<never> {
  const abort = (why: string, code: number) => {
    console.error(why);
    void stopAll().finally(() => process.exit(code));
  };
  setTimeout(() => abort(`benchmark exceeded its ${limitSeconds} s bound; stopped`, 124), limitSeconds * 1000).unref();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => abort(`${signal}: stopped`, 130));
  let code = 0;
  try {
    await main();
  } catch (e) {
    console.error(e);
    code = 1;
  }
  await stopAll();
  process.exit(code);
}

/** CPU time (user + system, every thread) a process has used, in seconds, from /proc/<pid>/stat. */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** This process's children named `comm` (Miniflare spawns workerd as a direct child). */
export function childrenNamed(comm: string): number[] {
  return readdirSync(`/proc/${process.pid}/task`)
    .flatMap((t) => readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
    .filter(Boolean)
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });
}

/** CPU time (ms) a process's live threads have run, from the scheduler's nanosecond counters (Linux). */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`))
    ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e6;
}

/**
 * Pins a process (every thread it has and will have) to one CPU, with util-linux's taskset. On a
 * small machine the load generator and the server under test would otherwise take turns on the
 * same cores, and either one's noise would show in the other's figures.
 */
export function pinTo(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-c', '-p', String(cpu), String(pid)], { stdio: 'ignore' });
}
