import type { S3Event } from 'aws-lambda';

/** The event S3 sends verify-backup for a new object: one record, the key URL-encoded with spaces as '+'. */
export function objectCreatedEvent(bucket: string, key: string, region = 'us-east-1'): S3Event {
  const record = {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: region,
    eventTime: new Date().toISOString(),
    eventName: 'ObjectCreated:Put',
    userIdentity: { principalId: 'local' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'local', 'x-amz-id-2': 'local' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'pgkeep-verify',
      bucket: { name: bucket, ownerIdentity: { principalId: 'local' }, arn: `arn:aws:s3:::${bucket}` },
      // S3 URL-encodes keys in events, with spaces as '+'.
      object: { key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'), size: 0, eTag: '', sequencer: '0' },
    },
  };
  return { Records: [record] };
}
