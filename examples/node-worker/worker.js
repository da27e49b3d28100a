// A shoal worker in Node.js: proof that any language with gRPC can run shoal jobs.
//
// It reads the project's .proto files at run time (@grpc/proto-loader), opens the
// WorkerService.Connect stream, says hello, grants credits, runs the jobs it is assigned,
// heartbeats all its leases at once, stops a job when its cancellation is pushed, reports
// results and errors, and leaves when asked to drain.
//
//   npm install
//   node worker.js --target 127.0.0.1:50051 --queue default --concurrency 4
//
// With authentication on, it sends SHOAL_TOKEN as `authorization: Bearer <token>`; with
// SHOAL_CA set it speaks TLS, checked against that CA file, and SHOAL_CERT with SHOAL_KEY
// make it mutual TLS (the server maps the certificate's common name to a user).
//
// Tasks: add ({"a": 1, "b": 2} -> 3), echo (the payload back), sleep ({"seconds": s}),
// fail (a non-retryable error). It prints one JSON line per event on standard output.
"use strict";

const path = require("node:path");
const os = require("node:os");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "../../proto");

function parseArgs(argv) {
  const options = { target: "127.0.0.1:50051", queues: [], concurrency: 1, namespace: "" };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--target") options.target = value;
    else if (flag === "--queue") options.queues.push(value);
    else if (flag === "--concurrency") options.concurrency = Number(value);
    else if (flag === "--namespace") options.namespace = value;
    else throw new Error(`unknown option ${flag}`);
  }
  if (options.queues.length === 0) options.queues.push("default");
  return options;
}

function readEnvFile(name) {
  const file = process.env[name];
  return file ? require("node:fs").readFileSync(file) : null;
}

// Channel credentials (TLS when SHOAL_CA is set) and the stream's metadata (the token).
function credentials() {
  const ca = readEnvFile("SHOAL_CA");
  const channel = ca
    ? grpc.credentials.createSsl(ca, readEnvFile("SHOAL_KEY"), readEnvFile("SHOAL_CERT"))
    : grpc.credentials.createInsecure();
  const metadata = new grpc.Metadata();
  if (process.env.SHOAL_TOKEN) metadata.add("authorization", `Bearer ${process.env.SHOAL_TOKEN}`);
  return { channel, metadata };
}

function say(event, data = {}) {
  process.stdout.write(JSON.stringify({ event, at: Date.now() / 1000, ...data }) + "\n");
}

function loadService() {
  const definition = protoLoader.loadSync("shoal/v1/workers.proto", {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).shoal.v1.WorkerService;
}

// Each task gets its arguments and an AbortSignal that fires when the job is cancelled.
const TASKS = {
  add: async (args) => args.a + args.b,
  echo: async (args) => args,
  fail: async () => {
    throw Object.assign(new Error("asked to fail"), { retryable: false });
  },
  sleep: (args, signal) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ slept: args.seconds }), args.seconds * 1000);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(Object.assign(new Error("cancelled"), { name: "Cancelled", retryable: false }));
      });
    }),
};

class Worker {
  constructor(options) {
    this.options = options;
    this.running = new Map(); // job id -> { token, controller }
    this.draining = false;
    this.heartbeats = null;
  }

  run() {
    const WorkerService = loadService();
    const { channel, metadata } = credentials();
    const client = new WorkerService(this.options.target, channel);
    this.stream = client.Connect(metadata);
    this.stream.on("data", (message) => this.onMessage(message));
    this.stream.on("error", (error) => say("stream_error", { code: error.code, details: error.details }));
    this.stream.on("end", () => {
      clearInterval(this.heartbeats);
      say("exit");
      client.close();
    });
    this.stream.write({
      hello: {
        namespace: this.options.namespace,
        queues: this.options.queues,
        concurrency: this.options.concurrency,
        language: "node",
        host: os.hostname(),
        pid: process.pid,
      },
    });
    this.stream.write({ credit: { credits: this.options.concurrency } });
  }

  onMessage(message) {
    switch (message.kind) {
      case "welcome":
        say("welcome", { worker_id: message.welcome.worker_id });
        // One heartbeat renews every lease this stream holds (it lists none).
        this.heartbeats = setInterval(
          () => this.stream.write({ heartbeat: { leases: [] } }),
          message.welcome.heartbeat_interval * 1000,
        );
        break;
      case "assignments":
        for (const { job, token } of message.assignments.assignments) this.start(job, token);
        break;
      case "cancel":
        for (const jobId of message.cancel.job_ids) this.cancel(jobId);
        break;
      case "heartbeat_ack":
        for (const jobId of message.heartbeat_ack.cancel_requested) this.cancel(jobId);
        for (const jobId of message.heartbeat_ack.lost) this.cancel(jobId);
        break;
      case "acks":
        for (const ack of message.acks.acks) say("ack", { job_id: ack.job_id, state: ack.state });
        break;
      case "drain":
        say("drain", { reason: message.drain.reason });
        this.draining = true;
        this.maybeLeave();
        break;
      case "goodbye":
        say("goodbye", { reason: message.goodbye.reason });
        this.stream.end();
        break;
      case "error":
        say("error", { code: message.error.code, message: message.error.message });
        break;
      default:
        break;
    }
  }

  async start(job, token) {
    const controller = new AbortController();
    this.running.set(job.id, { token, controller });
    say("started", { job_id: job.id, token, attempt: job.attempt, task: job.task });
    const outcomes = { completed: [], failed: [] };
    try {
      const handler = TASKS[job.task];
      if (!handler) {
        throw Object.assign(new Error(`no task ${job.task}`), { name: "UnknownTask", retryable: false });
      }
      const args = JSON.parse(job.payload.length ? job.payload.toString("utf8") : "null");
      const result = await handler(args, controller.signal);
      say("finished", { job_id: job.id, result });
      outcomes.completed.push({ job_id: job.id, token, result: Buffer.from(JSON.stringify(result)) });
    } catch (error) {
      say(controller.signal.aborted ? "cancelled" : "failed", { job_id: job.id, error: String(error) });
      outcomes.failed.push({
        job_id: job.id,
        token,
        error: {
          type: error.name || "Error",
          message: error.message,
          traceback: error.stack || "",
          retryable: error.retryable !== false,
        },
      });
    }
    this.running.delete(job.id);
    this.stream.write({ outcomes });
    if (!this.draining) this.stream.write({ credit: { credits: 1 } });
    this.maybeLeave();
  }

  cancel(jobId) {
    const entry = this.running.get(jobId);
    if (entry && !entry.controller.signal.aborted) entry.controller.abort();
  }

  maybeLeave() {
    if (this.draining && this.running.size === 0) this.stream.end();
  }
}

new Worker(parseArgs(process.argv.slice(2))).run();
