/**
 * `node --import tsx --import test/support/aws-call-recorder-preload.ts <entry>`: records every AWS call
 * the process sends (test/support/aws-call-recorder.ts) when PGKEEP_AWS_CALL_RECORDINGS and
 * PGKEEP_AWS_CALL_COMPONENT are set; does nothing otherwise.
 *
 * Every client of the AWS SDK v3 extends smithy's Client and sends through its `send`. The preload
 * wraps that method on the Client class of every `@aws-sdk/client-*` package pgkeep depends on
 * (package.json), so each client instance gets the recording middleware before its first call,
 * whichever module created it and however it was configured.
 */
import { readFileSync } from 'node:fs';
import { COMPONENT_ENV, RECORDINGS_ENV, addRecordingMiddleware, callWriter, isComponent, pgkeepSettings } from './aws-call-recorder.ts';

const directory = process.env[RECORDINGS_ENV];
const component = process.env[COMPONENT_ENV] ?? '';

if (directory) {
  if (!isComponent(component)) throw new Error(`${COMPONENT_ENV}="${component}" is not a pgkeep component`);
  const write = callWriter(directory, component, pgkeepSettings(process.env));
  // The SDK clients are development dependencies: the task and the functions ship them bundled, so
  // the construct package itself needs none of them installed.
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const clientPackages = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).filter((name) => name.startsWith('@aws-sdk/client-'));
  const recorded = new WeakSet<object>();
  const wrapped = new WeakSet<object>();
  for (const name of clientPackages) {
    const exports = (await import(name)) as Record<string, unknown>;
    for (const exported of Object.values(exports)) {
      if (typeof exported !== 'function' || !/Client$/.test(exported.name)) continue;
      const base = Object.getPrototypeOf((exported as { prototype: object }).prototype) as { send?: (...args: unknown[]) => unknown } | null;
      if (!base || typeof base.send !== 'function' || wrapped.has(base)) continue;
      wrapped.add(base);
      const send = base.send;
      base.send = function (this: { middlewareStack: Parameters<typeof addRecordingMiddleware>[0] }, ...args: unknown[]) {
        if (!recorded.has(this)) {
          recorded.add(this);
          addRecordingMiddleware(this.middlewareStack, component, write);
        }
        return send.apply(this, args);
      };
    }
  }
  if (clientPackages.length === 0) throw new Error('package.json names no @aws-sdk/client-* package to record');
}
