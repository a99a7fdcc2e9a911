// graphile-worker measured as skybook's queue is (crates/worker/benches/queue.rs): enqueue JOBS trivial jobs one
// addJob each; drain the backlog with one runner of CONCURRENCY; then, the runner idle and listening, trickle
// TRICKLE jobs at TRICKLE_RATE per second and measure pickup latency from the insert to the task's start.
import { makeWorkerUtils, run } from "graphile-worker";

const env = (name, fallback) => Number(process.env[name] ?? fallback);
const connectionString = process.env.DATABASE_URL;
const jobs = env("JOBS", 100000);
const concurrency = env("CONCURRENCY", 8);
const trickle = env("TRICKLE", 2000);
const rate = env("TRICKLE_RATE", 500);

const utils = await makeWorkerUtils({ connectionString });
await utils.migrate();

let started = performance.now();
for (let i = 0; i < jobs; i++) {
  await utils.addJob("noop", { t: Date.now() });
}
let seconds = (performance.now() - started) / 1000;
console.log(`enqueue: ${Math.round(jobs / seconds)} jobs/s (${jobs} in ${seconds.toFixed(2)} s, one addJob each)`);

let done = 0;
let waited = [];
let target = jobs;
let finished;
let allDone = new Promise((resolve) => (finished = resolve));
const taskList = {
  noop: async (payload) => {
    waited.push(Date.now() - payload.t);
    done += 1;
    if (done === target) finished();
  },
};
started = performance.now();
const runner = await run({
  connectionString,
  concurrency,
  noHandleSignals: true,
  pollInterval: 5000,
  taskList,
  logger: undefined,
});
await allDone;
seconds = (performance.now() - started) / 1000;
console.log(`throughput: ${Math.round(jobs / seconds)} jobs/s (${jobs} drained in ${seconds.toFixed(2)} s, concurrency ${concurrency})`);

// Pickup latency, the runner idle and listening.
done = 0;
waited = [];
target = trickle;
allDone = new Promise((resolve) => (finished = resolve));
await new Promise((resolve) => setTimeout(resolve, 500));
const every = 1000 / rate;
const t0 = performance.now();
for (let i = 0; i < trickle; i++) {
  const due = t0 + i * every;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  await utils.addJob("noop", { t: Date.now() });
}
await Promise.race([allDone, new Promise((resolve) => setTimeout(resolve, 60000))]);
waited.sort((a, b) => a - b);
const pct = (p) => waited[Math.round((waited.length - 1) * p)];
console.log(`pickup latency: p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms (${waited.length} jobs at ${rate}/s)`);
await runner.stop();
await utils.release();
