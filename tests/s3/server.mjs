// The S3-compatible server the S3 tier's tests run against: @20minutes/s3rver, which verifies
// SigV4 signatures (access key S3RVER, secret S3RVER), on 127.0.0.1.
//
//   node --openssl-legacy-provider server.mjs --dir DATA_DIR [--port N] [--bucket NAME]...
//
// --port 0 (the default) picks a free port. Once listening it prints one line,
//   s3rver listening on http://127.0.0.1:PORT
// and runs until SIGTERM/SIGINT. Buckets (default: llmcache-test) are created when missing;
// the data directory keeps objects across restarts (the fault test restarts on the same port).
// Virtual-hosted requests work through *.s3.localhost (curl resolves *.localhost itself).
//
// Request counts (the fleet benchmark's S3 requests per answer): a line "counts" on stdin prints
// one JSON line {"total": n, "by_op": {"GET": n, "PUT": n, "LIST": n, ...},
// "by_area": {"llm-cache": n, "cache-index/by-key": n, ...}, "by_op_area": {"PUT llm-cache": n, ...}}
// of the requests since the start or
// the last "reset" line (which prints {"reset": true}).
import { createRequire } from 'node:module';
import { mkdirSync, createWriteStream } from 'node:fs';
import { writeFile, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createHash } from 'node:crypto';

const require = createRequire(import.meta.url);
const S3rver = require('@20minutes/s3rver');

function parseArgs(argv) {
  const args = { port: 0, dir: '', buckets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') args.port = Number(next());
    else if (a === '--dir') args.dir = next();
    else if (a === '--bucket') args.buckets.push(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.dir) throw new Error('--dir DATA_DIR is required');
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new Error('bad --port');
  if (args.buckets.length === 0) args.buckets.push('llmcache-test');
  return args;
}

const args = parseArgs(process.argv.slice(2));
mkdirSync(args.dir, { recursive: true });
const server = new S3rver({
  address: '127.0.0.1',
  port: args.port,
  directory: args.dir,
  silent: true,
  serviceEndpoint: 'localhost',  // {bucket}.s3.localhost is a virtual-hosted request
  configureBuckets: args.buckets.map((name) => ({ name, configs: [] })),
});
// S3 replaces an object at once: a GET during a PUT of its key gets the old or the new body.
// s3rver truncates the object's file and writes it in place (and answers a PUT with a small body
// before the write ended), so a reader of a key rewritten every second (a gateway's fleet
// statistics) could read it empty or cut short, and skip it, under load. Here the body is written
// beside the file and renamed over it (LIST sees only names ending in ._S3rver_object).
let tmpSeq = 0;
server.store.putContent = async (objectPath, content) => {
  const tmp = `${objectPath}.tmp-${process.pid}-${++tmpSeq}`;
  const md5 = createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(content)) {
      md5.update(content);
      size = content.length;
      await writeFile(tmp, content);
    } else {
      const count = new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk, encoding);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      await pipeline(content, count, createWriteStream(tmp));
    }
    await rename(tmp, objectPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return [size, md5.digest('hex')];
};

const { port } = await server.run();

let counts = { total: 0, by_op: {}, by_area: {}, by_op_area: {} };
const bump = (m, k) => { m[k] = (m[k] ?? 0) + 1; };
server.httpServer.prependListener('request', (req) => {
  const url = new URL(req.url, 'http://x');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  // Path-style: /bucket/key...; a LIST is a GET on the bucket itself.
  const key = parts.slice(1).join('/');
  const op = req.method === 'GET' && !key ? 'LIST' : req.method;
  const prefix = key || url.searchParams.get('prefix') || '';
  const segs = prefix.split('/');
  const area = segs[0] === 'cache-index' ? segs.slice(0, 2).join('/') : segs[0] || '(bucket)';
  counts.total++;
  bump(counts.by_op, op);
  bump(counts.by_area, area);
  bump(counts.by_op_area, `${op} ${area}`);
});

process.stdout.write(`s3rver listening on http://127.0.0.1:${port}\n`);

let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  try { await server.close(); } finally { process.exit(0); }
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Exit with the parent: the test closes our stdin's pipe (or dies).
process.stdin.on('end', stop);
process.stdin.on('error', stop);
let pending = '';
process.stdin.on('data', (chunk) => {
  pending += chunk.toString();
  let nl;
  while ((nl = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (line === 'counts') process.stdout.write(JSON.stringify(counts) + '\n');
    if (line === 'reset') {
      counts = { total: 0, by_op: {}, by_area: {}, by_op_area: {} };
      process.stdout.write('{"reset": true}\n');
    }
  }
});
process.stdin.resume();
