import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** s3rver's fixed account: what a client must sign with. Pass a copy: the AWS SDK adds fields to the object it is given. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
/** The same, as the AWS SDK reads them from a backend process's environment. */
export const S3_ENV = { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey } as const;

export interface S3Server {
  /** http://127.0.0.1:<port>: the endpoint, path-style. */
  readonly endpoint: string;
  readonly dir: string;
  stop(): Promise<void>;
}

/** An S3-compatible server (s3rver) in the test process, on a free loopback port, with these buckets. */
export async function startS3(buckets: readonly string[]): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })) });
  const addr = await server.run();
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    dir,
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
