/**
 * A Lambda-like runtime for one invocation: `node --import tsx test/support/lambda-runner.ts
 * <handler module> <timeout seconds>`, with the event as JSON on stdin and the function's
 * environment as the process environment. Imports the module, calls its `handler(event, context)`
 * as the Node.js runtime does, and prints `{"result":…}` or `{"error":…}` as its last line.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [modulePath, timeoutSeconds] = process.argv.slice(2);
if (!modulePath || !timeoutSeconds) throw new Error('usage: lambda-runner.ts <handler module> <timeout seconds>');
const event = JSON.parse(readFileSync(0, 'utf8')) as unknown;
const deadline = Date.now() + Number(timeoutSeconds) * 1000;
const context = {
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local',
  awsRequestId: `local-${process.pid}`,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};
const { handler } = (await import(pathToFileURL(modulePath).href)) as { handler: (event: unknown, context: unknown) => Promise<unknown> };
try {
  console.log(JSON.stringify({ result: await handler(event, context) }));
} catch (error) {
  console.log(JSON.stringify({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }));
  process.exitCode = 1;
}
