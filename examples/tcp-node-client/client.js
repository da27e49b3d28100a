#!/usr/bin/env node
// A Jobatator-protocol client for shoal's TCP surface, in plain Node.js 20 (only `net`).
//
// Written from the protocol's description (docs/tcp-protocol.md, and Jobatator's
// behaviour in shared/reference/seed-systems.md section 1), not from the server's code:
// commands are lines ending in "\n"; arguments are separated by single spaces and grouped
// with '...'; an argument the quoting cannot carry (a line break, "' " inside) is sent as a
// Redis-style array (*n, then $len and the bytes of each part); every reply is one line
// (DEBUG aside); a subscribed connection also receives dispatch lines
// {"Job":{...},"Debug":"Dispatch data"} at any time, between replies.
//
// Usage:
//   node client.js [--host H] [--port P] [--user U] [--password PW] [--group G] publish QUEUE TYPE PAYLOAD [COUNT]
//   node client.js [...] work QUEUE [--max N]
// `work` takes jobs of QUEUE, one at a time, and prints one JSON line per job it finishes.
// Job types it knows: `upper` (done; prints the payload upper-cased), `flaky` (errored on
// the first attempt, done on the next), `fail` (always errored); any other type is done.
'use strict';

const net = require('node:net');

class JobatatorClient {
  constructor(socket) {
    this.socket = socket;
    this.buffer = '';
    this.waiting = []; // resolvers of replies, in the order the commands were sent
    this.jobs = []; // dispatch lines not yet taken
    this.jobWaiters = [];
    this.closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      for (const { reject } of this.waiting.splice(0)) reject(new Error('connection closed'));
      for (const { reject } of this.jobWaiters.splice(0)) reject(new Error('connection closed'));
    });
  }

  static connect(host, port) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host, port }, () => resolve(new JobatatorClient(socket)));
      socket.once('error', reject);
    });
  }

  onData(chunk) {
    this.buffer += chunk;
    let end;
    while ((end = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      this.onLine(line);
    }
  }

  onLine(line) {
    if (line.startsWith('{"Job":')) {
      const message = JSON.parse(line);
      if (message.Debug === 'Dispatch data') {
        const waiter = this.jobWaiters.shift();
        if (waiter) waiter.resolve(message.Job);
        else this.jobs.push(message.Job);
        return;
      }
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve(line);
  }

  // One argument as the line form carries it, or null if it cannot.
  static quote(arg) {
    if (/[\r\n]/.test(arg)) return null;
    if (arg !== '' && !arg.includes(' ') && !arg.startsWith("'")) return arg;
    if (arg.includes("' ") || arg.endsWith("'")) return null; // would close the group early
    return `'${arg}'`;
  }

  static encode(name, args) {
    const quoted = args.map(JobatatorClient.quote);
    if (quoted.every((part) => part !== null)) return [name, ...quoted].join(' ') + '\n';
    const parts = [name, ...args];
    let out = `*${parts.length}\r\n`;
    for (const part of parts) out += `$${Buffer.byteLength(part, 'utf8')}\r\n${part}\r\n`;
    return out;
  }

  command(name, ...args) {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.waiting.push({ resolve, reject });
      this.socket.write(JobatatorClient.encode(name, args));
    });
  }

  async expect(reply, name, ...args) {
    const answer = await this.command(name, ...args);
    if (answer !== reply) throw new Error(`${name}: expected ${reply}, got ${answer}`);
  }

  nextJob() {
    if (this.jobs.length) return Promise.resolve(this.jobs.shift());
    return new Promise((resolve, reject) => this.jobWaiters.push({ resolve, reject }));
  }

  async login(user, password, group) {
    await this.expect('Welcome!', 'AUTH', user, password);
    if (group) await this.expect('OK', 'USE_GROUP', group);
  }

  async publish(queue, type, payload) {
    const answer = await this.command('PUBLISH', queue, type, payload);
    if (!answer.startsWith('OK#')) throw new Error(`PUBLISH: ${answer}`);
    return answer.slice(3);
  }

  close() {
    this.socket.end();
  }
}

function outcome(job) {
  if (job.Type === 'fail') return 'errored';
  if (job.Type === 'flaky' && job.Attempts === 0) return 'errored';
  return 'done';
}

async function work(client, queue, max) {
  await client.expect('OK', 'SUBSCRIBE', queue);
  for (let finished = 0; max === 0 || finished < max; finished += 1) {
    const job = await client.nextJob();
    await client.expect('OK', 'UPDATE_JOB', job.ID, 'in-progress');
    const state = outcome(job);
    await client.expect('OK', 'UPDATE_JOB', job.ID, state);
    const result = job.Type === 'upper' ? job.Payload.toUpperCase() : job.Payload;
    const line = { event: state, id: job.ID, type: job.Type, attempts: job.Attempts, result };
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  await client.expect('OK', 'UNSUBSCRIBE', queue);
}

function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 8962, user: 'guest', password: 'guest', group: 'default', max: 0 };
  const rest = [];
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : null;
    if (name && name in options) options[name] = argv[++i];
    else rest.push(argv[i]);
  }
  options.port = Number(options.port);
  options.max = Number(options.max);
  return { options, rest };
}

async function main() {
  const { options, rest } = parseArgs(process.argv.slice(2));
  const [mode, ...args] = rest;
  const client = await JobatatorClient.connect(options.host, options.port);
  try {
    await client.login(options.user, options.password, options.group);
    if (mode === 'publish') {
      const [queue, type, payload, count = '1'] = args;
      for (let n = 0; n < Number(count); n += 1) {
        process.stdout.write(JSON.stringify({ event: 'published', id: await client.publish(queue, type, payload) }) + '\n');
      }
    } else if (mode === 'work') {
      await work(client, args[0], options.max);
    } else {
      throw new Error(`unknown mode ${mode}; use publish or work`);
    }
    await client.expect('', 'QUIT');
  } finally {
    client.close();
  }
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
  });
}

module.exports = { JobatatorClient };
