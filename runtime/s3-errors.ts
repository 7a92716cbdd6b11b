// runtime/: code the task and the functions share that talks to AWS (the SDK), so it cannot live in
// catalog/, which stays pure for the infra to import at synth time. infra/ never imports runtime/.
/**
 * S3's answer "no such object", as the AWS SDK v3 surfaces it: HeadObject has no body, so the SDK
 * can only name the 404 `NotFound`; GetObject names it `NoSuchKey`. Any other error (403, a
 * timeout) says nothing about whether the object exists. S3 answers 404 rather than 403 only to a
 * caller that may s3:ListBucket the key's prefix (HeadObject, "Permissions").
 */
export function isNoSuchObject(error: unknown): boolean {
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return name === 'NotFound' || name === 'NoSuchKey' || $metadata?.httpStatusCode === 404;
}
