/**
 * `npm run local-s3`: the local S3 server of `npm start` (dev/local-s3.ts) on its own, for running
 * the task (or its bundle, dist/task/main.mjs) by hand against it. Prints the endpoint, the bucket and
 * the environment a task process needs to use it, then serves until Ctrl-C. Everything is in memory:
 * stopping the server forgets every object.
 */
import { parseArgs } from 'node:util';
import { parseDecimalInteger } from '../task/config.ts';
import { startLocalS3 } from './local-s3.ts';

const USAGE = `Usage: npm run local-s3 -- [options]

Starts the local S3 server (fauxqs with S3's object tagging, in memory) on 127.0.0.1 and prints the
environment variables that point the pgkeep task at it. Runs until Ctrl-C.

Options:
  --port N       listen on this port (default: a free one)
  --bucket NAME  the bucket to create (default pgkeep-local)
  -h, --help     show this help
`;

function parseOptions(): { port: number; bucket: string } | number {
  let values;
  try {
    values = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        bucket: { type: 'string', default: 'pgkeep-local' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = parseDecimalInteger(values.port);
  if (port === undefined || port > 65_535) {
    console.error(`--port ${values.port} is invalid: expected a whole number from 0 to 65535.\n\n${USAGE}`);
    return 2;
  }
  return { port, bucket: values.bucket };
}

const options = parseOptions();
if (typeof options === 'number') {
  process.exitCode = options;
} else {
  const s3 = await startLocalS3(options);
  const exports = Object.entries(s3.taskEnvironment()).map(([name, value]) => `export ${name}=${value}`);
  console.log(
    [
      `Local S3 server at ${s3.endpoint}, bucket ${s3.bucket} (in memory; Ctrl-C stops it and forgets every object).`,
      '',
      'For a task process, in another shell:',
      ...exports.map((line) => `  ${line}`),
      '  export PGKEEP_ENVIRONMENT=local',
      '  export PGKEEP_DATABASE_URL=postgresql://user:password@127.0.0.1:5432/yours',
      '  npm run build:task && node dist/task/main.mjs backup',
      '',
      'The AWS CLI reaches it too: aws --endpoint-url ' + `${s3.endpoint} s3 ls s3://${s3.bucket} --recursive`,
    ].join('\n'),
  );
  const stop = (): void => {
    console.log('\nstopping the local S3 server');
    void s3.stop().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
