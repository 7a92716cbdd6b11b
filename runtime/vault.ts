// runtime/: code the task and the functions share that talks to AWS (the SDK), so it cannot live in
// catalog/, which stays pure for the infra to import at synth time. infra/ never imports runtime/.
import { S3Client } from '@aws-sdk/client-s3';
import type { OffsiteCopy } from '../catalog/retention-policy.ts';
import { isNoSuchObject } from './s3-errors.ts';
import { readVerification } from './verification.ts';

/** The vault as health and retention read it: its replicas' verification tags, nothing else. */
export interface VaultReader {
  s3: S3Client;
  bucket: string;
}

/**
 * A client for the vault's region, with deadlines. The vault is another region, often another
 * account: when it is unreachable the SDK's Node handler would wait for ever ("Defaults to 0,
 * which disables the timeout", @smithy/types NodeHttpHandlerOptions) and the function would time
 * out with nothing decided or published. Two attempts of 5 s each (as task/main.ts's metrics
 * client): a vault that does not answer by then is 'unknown', which only keeps backups.
 */
export function vaultS3Client(region: string): S3Client {
  return new S3Client({
    region,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 5_000, throwOnRequestTimeout: true, socketTimeout: 5_000 },
  });
}

/**
 * The state of a backup's replica: the vault holds it under the same key (replication keeps
 * keys), tagged by the vault's own verifier. No replica (404) is a plain "not verified"; any
 * other failure (NoSuchBucket included) says nothing either way, so it is 'unknown'.
 */
export async function readOffsiteCopy(vault: VaultReader, dataKey: string): Promise<OffsiteCopy> {
  try {
    const record = await readVerification(vault.s3, vault.bucket, dataKey);
    if (record?.status === 'verified') return { state: 'verified' };
    return { state: 'not-verified', detail: record ? `its replica is tagged ${record.status}` : 'its replica is not tagged by the vault verifier yet' };
  } catch (error) {
    // A missing bucket is a 404 too, but says nothing about the replica: the vault is not there.
    if ((error as Error).name !== 'NoSuchBucket' && isNoSuchObject(error)) return { state: 'not-verified', detail: 'no replica in the vault yet' };
    const { name, message } = error as Error;
    return { state: 'unknown', detail: `${name}: ${message}` };
  }
}
