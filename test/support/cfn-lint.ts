/**
 * cfn-lint, CloudFormation's own linter (the CloudFormation resource specification and its rules),
 * over a synthesized cloud assembly. It is installed on the machines pgkeep is built on (pyenv);
 * elsewhere `pip install cfn-lint`.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CfnLintFinding {
  template: string;
  rule: string;
  level: 'Error' | 'Warning' | 'Informational';
  /** `Resources/<logical id>/…`. */
  path: string;
  message: string;
}

interface RawFinding {
  Filename: string;
  Level: CfnLintFinding['level'];
  Location: { Path: (string | number)[] };
  Message: string;
  Rule: { Id: string };
}

/** The templates in the assembly directory (by default every one, nested stacks included), checked for `region`. */
export function cfnLint(assemblyDirectory: string, region: string, which: (file: string) => boolean = () => true): Promise<CfnLintFinding[]> {
  const templates = readdirSync(assemblyDirectory).filter((file) => file.endsWith('.template.json') && which(file));
  if (templates.length === 0) return Promise.reject(new Error(`no templates in ${assemblyDirectory}: synthesize first`));
  return new Promise((resolve, reject) => {
    execFile(
      'cfn-lint',
      ['--format', 'json', '--regions', region, '--', ...templates.map((file) => join(assemblyDirectory, file))],
      { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        // cfn-lint exits non-zero whenever it finds anything; its JSON says what.
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new Error('cfn-lint is not installed: pip install cfn-lint (it is preinstalled on the machines this project is built on)'));
          return;
        }
        if (error?.killed) {
          reject(new Error(`cfn-lint did not finish within its deadline: ${stderr}`));
          return;
        }
        try {
          const findings = JSON.parse(stdout || '[]') as RawFinding[];
          resolve(
            findings.map((finding) => ({
              template: finding.Filename.split('/').pop()!,
              rule: finding.Rule.Id,
              level: finding.Level,
              path: finding.Location.Path.join('/'),
              message: finding.Message,
            })),
          );
        } catch {
          reject(new Error(`cfn-lint printed no JSON (${error?.message ?? 'exit 0'}): ${stderr || stdout}`));
        }
      },
    );
  });
}
