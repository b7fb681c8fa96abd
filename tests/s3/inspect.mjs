// An independent reader of what the S3 tier wrote: the official AWS SDK (@aws-sdk/client-s3),
// path-style, credentials S3RVER/S3RVER.
//
//   node inspect.mjs ENDPOINT BUCKET PREFIX
//
// Prints one JSON object: {"keys": [every key under PREFIX, sorted], "objects": {key: body}}
// where body is the object's text for keys ending in .json (binary objects are left out).
import { S3Client, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';

const [endpoint, bucket, prefix = ''] = process.argv.slice(2);
if (!endpoint || !bucket) {
  process.stderr.write('usage: node inspect.mjs ENDPOINT BUCKET [PREFIX]\n');
  process.exit(2);
}
const s3 = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
// SDK v3 asks for a bucket as "/bucket/"; s3rver checks the signature against "/bucket" (as the
// v2 SDK sends it). Send what both agree on: the path without the trailing slash, before signing.
s3.middlewareStack.add(
  (next) => async (args) => {
    if (args.request?.path && /^\/[^/]+\/$/.test(args.request.path)) args.request.path = args.request.path.slice(0, -1);
    return next(args);
  },
  { step: 'build', name: 'bucketPathWithoutTrailingSlash' },
);

const keys = [];
let token;
do {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 100 }));
  for (const o of page.Contents ?? []) keys.push(o.Key);
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
keys.sort();

const objects = {};
for (const key of keys) {
  if (!key.endsWith('.json')) continue;
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  objects[key] = await got.Body.transformToString('utf8');
}
process.stdout.write(JSON.stringify({ keys, objects }) + '\n');
