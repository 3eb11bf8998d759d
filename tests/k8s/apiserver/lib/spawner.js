'use strict';
// Starts child processes from a worker thread.  Forking the server's process
// takes tens of milliseconds on a loaded machine and blocks the thread that
// does it; from the main thread that stalled every API request while a group
// of pods started.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

// Shared with the worker so that shutdown, which runs synchronously on the
// main thread, can stop new spawns and kill every live process group:
// [0] closing flag, [1] spawns in progress, [2..] pids of live processes.
const SLOTS = 4096;
const { spawn } = require('child_process');
const { EventEmitter } = require('events');

if (!isMainThread) {
  // Worker: {id, cmd, args, env, input} -> 'pid', 'out' (fd, data), 'done' (code, signal, error).
  const shared = new Int32Array(workerData.shared);
  parentPort.on('message', (m) => {
    let proc;
    const slot = 2 + (m.id % SLOTS);
    Atomics.add(shared, 1, 1);
    try {
      if (Atomics.load(shared, 0)) throw new Error('shutting down');
      // Every process gets its own process group, which shutdown kills.
      proc = spawn(m.cmd, m.args, { env: m.env || process.env, detached: true, stdio: [m.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      if (proc.pid) Atomics.store(shared, slot, proc.pid);
    } catch (e) { parentPort.postMessage({ id: m.id, t: 'done', code: null, signal: null, error: e.message }); return; } finally { Atomics.sub(shared, 1, 1); }
    let open = 2, exit = null, error = null;
    const finish = () => { if (open === 0 && exit) parentPort.postMessage({ id: m.id, t: 'done', code: exit.code, signal: exit.signal, error }); };
    proc.on('spawn', () => parentPort.postMessage({ id: m.id, t: 'pid', pid: proc.pid }));
    proc.on('error', (e) => { error = e.message; exit ??= { code: null, signal: null }; open = 0; finish(); });
    if (m.input !== undefined) proc.stdin.end(m.input);
    for (const [fd, stream] of [[1, proc.stdout], [2, proc.stderr]]) {
      stream.on('data', (d) => parentPort.postMessage({ id: m.id, t: 'out', fd, data: d }));
      stream.on('close', () => { open--; finish(); });
    }
    proc.on('exit', (code, signal) => {
      // A detached process is a container: as when a PID namespace's init
      // exits, what it leaves behind in its group dies with it (and so
      // releases the output pipes).
      if (m.detached) {
        try { process.kill(-proc.pid, 'SIGKILL'); } catch (e) { /* none left */ }
        // Descendants that left the group (setsid, as an agent's children do)
        // may still hold the pipes: stop reading after a short drain, so the
        // container counts as ended (the pod's teardown then kills whatever
        // is left in its network namespace).
        setTimeout(() => { if (open > 0) { proc.stdout.destroy(); proc.stderr.destroy(); } }, 500);
      }
      Atomics.compareExchange(shared, slot, proc.pid, 0);
      exit = { code, signal }; finish();
    });
  });
} else {
  class Spawner {
    constructor() {
      this.shared = new Int32Array(new SharedArrayBuffer(4 * (2 + SLOTS)));
      this.worker = new Worker(__filename, { workerData: { shared: this.shared.buffer } });
      this.worker.unref();
      this.procs = new Map();
      this.nextId = 1;
      this.worker.on('message', (m) => {
        const p = this.procs.get(m.id);
        if (!p) return;
        if (m.t === 'pid') {
          p.pid = m.pid;
          if (p.pendingSignal) { try { process.kill(p.detached ? -p.pid : p.pid, p.pendingSignal); } catch (e) { /* gone */ } }
          p.emit('pid', m.pid);
        } else if (m.t === 'out') p.emit('out', m.fd, Buffer.from(m.data));
        else if (m.t === 'done') { this.procs.delete(m.id); p.done = true; p.emit('done', m.code, m.signal, m.error); }
      });
    }

    // Returns an emitter: 'out' (fd, Buffer), 'done' (code, signal, error) once
    // the process exited and its output is drained.  kill(sig) signals the
    // process (its whole group when detached), also before its pid is known.
    spawn(cmd, args, { env, detached, input } = {}) {
      const p = new EventEmitter();
      const id = this.nextId++;
      p.detached = !!detached;
      p.kill = (sig) => {
        if (p.done) return;
        if (!p.pid) { p.pendingSignal = sig; return; }
        try { process.kill(p.detached ? -p.pid : p.pid, sig); } catch (e) { /* gone */ }
      };
      this.procs.set(id, p);
      this.worker.postMessage({ id, cmd, args, env, detached, input });
      return p;
    }

    // Runs a command to its end: resolves with its stdout, rejects with its stderr.
    run(cmd, args, input) {
      return new Promise((resolve, reject) => {
        const out = [], err = [];
        const p = this.spawn(cmd, args, { input });
        p.on('out', (fd, d) => (fd === 1 ? out : err).push(d));
        p.on('done', (code, signal, error) => {
          if (code === 0) resolve(Buffer.concat(out).toString());
          else reject(new Error(`${cmd} ${args.join(' ')}: ${error || Buffer.concat(err).toString() || `exit ${code ?? signal}`}`));
        });
      });
    }

    // Synchronous (exit handlers): no spawn starts after this, and every live
    // process group is SIGKILLed.
    killAll() {
      Atomics.store(this.shared, 0, 1);
      const end = Date.now() + 2000;
      while (Atomics.load(this.shared, 1) !== 0 && Date.now() < end) Atomics.wait(this.shared, 1, Atomics.load(this.shared, 1), 10);
      for (let i = 2; i < 2 + SLOTS; i++) {
        const pid = Atomics.load(this.shared, i);
        if (pid) { try { process.kill(-pid, 'SIGKILL'); } catch (e) { /* gone */ } }
      }
      this.worker.terminate();
    }
  }
  module.exports = { Spawner };
}
