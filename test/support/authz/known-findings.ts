/**
 * Real defects the authorization model shows in today's infrastructure, outside the files this
 * model's authors may change. Each is a check that fails today; the model test requires that the
 * failing checks are exactly the ones these findings match, so the test turns red when a finding
 * is fixed (remove it here) and when a new failure appears (fix it, or record it here with its
 * reason).
 */
import type { Check } from './evaluate.ts';

export interface KnownFinding {
  id: string;
  reason: string;
  matches(check: Check): boolean;
}

/** None today: the two the model found (alarm actions denied by the topic policy; a secret by name
 * requested by a partial ARN) were fixed in infra/alerting.ts and infra/config.ts, and their checks pass. */
export const KNOWN_FINDINGS: readonly KnownFinding[] = [];
