/**
 * Links into the AWS console that messages and alarm descriptions carry.
 */
import { Token } from 'aws-cdk-lib';

/** The CloudWatch console's fragment encodes its path twice and writes "%" as "$". */
function consoleFragment(text: string): string {
  // A log group name CloudFormation generates (stack name, logical id and a random suffix) holds
  // only letters, digits and hyphens, which need no encoding; it is a token until deploy time.
  if (Token.isUnresolved(text)) return text;
  return encodeURIComponent(encodeURIComponent(text)).replaceAll('%', '$');
}

/** The CloudWatch console page of a log group (its streams, newest first). */
export function logGroupConsoleUrl(region: string, logGroupName: string): string {
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:log-groups/log-group/${consoleFragment(logGroupName)}`;
}
