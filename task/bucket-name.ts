/**
 * S3's naming rules for general purpose buckets, as documented at
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
 * A name breaking one of them can never exist, so the task says which rule it breaks before it
 * touches anything, instead of failing later with S3's own InvalidBucketName or NoSuchBucket.
 * Hand-written: the AWS SDK does not export the rules it does not check, and the list is short.
 */
const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'] as const;
/** Reserved for access point aliases, Object Lambda aliases, Multi-Region Access Points,
 * directory buckets and table buckets. */
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'] as const;

/** What is wrong with `name` as a general purpose bucket name, or undefined when nothing is. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `it is ${name.length} characters long; S3 bucket names have 3 to 63`;
  if (!/^[a-z0-9.-]+$/.test(name)) return 'S3 bucket names consist only of lowercase letters, digits, dots (.) and hyphens (-)';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'S3 bucket names begin and end with a letter or digit';
  if (name.includes('..')) return 'S3 bucket names never contain two adjacent dots';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'S3 bucket names are never formatted as an IP address';
  const prefix = RESERVED_PREFIXES.find((reserved) => name.startsWith(reserved));
  if (prefix) return `S3 reserves the prefix "${prefix}"`;
  const suffix = RESERVED_SUFFIXES.find((reserved) => name.endsWith(reserved));
  if (suffix) return `S3 reserves the suffix "${suffix}"`;
  return undefined;
}
