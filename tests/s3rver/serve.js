// Starts the @20minutes/s3rver S3 server (pinned in package.json) for keyscope's verify
// tests: on 127.0.0.1, a port the system picks, data in DIRECTORY, one key pair taken
// from the environment (S3_KEY_ID, S3_SECRET; the built-in S3RVER pair is revoked) and
// the buckets named on the command line. It checks SigV4 and SigV2 signatures of
// presigned URLs. Writes {"port": N} once listening, then one JSON line per request
// answered (method, url, range header, status): the tests' log of what was sent.
'use strict'
const http = require('node:http')
const S3rver = require('@20minutes/s3rver')
const AWSAccount = require('@20minutes/s3rver/lib/models/account')

const [directory, ...buckets] = process.argv.slice(2)
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER')
AWSAccount.DUMMY_ACCOUNT.createKeyPair(process.env.S3_KEY_ID, process.env.S3_SECRET)
const s3 = new S3rver({
  directory,
  silent: true,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name })),
})
const write = (record) => process.stdout.write(`${JSON.stringify(record)}\n`)

s3.configureBuckets().then(() => {
  const handler = s3.callback()
  const server = http.createServer((req, res) => {
    res.on('finish', () =>
      write({ method: req.method, url: req.url, range: req.headers.range || null,
              status: res.statusCode }))
    handler(req, res)
  })
  server.listen(0, '127.0.0.1', () => write({ port: server.address().port }))
})
