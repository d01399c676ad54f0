/**
 * What /readyz answers, pure code. A load balancer sends new sessions only
 * to instances that are ready: not draining, with a worker to run the
 * model, not refusing sessions for overload, and with room in the frame
 * budget for at least one more frame of the largest size.
 */

export type NotReadyReason = 'draining' | 'no_workers' | 'overloaded' | 'budget_exhausted';

export interface ReadinessInput {
  draining: boolean;
  workersReady: number;
  /** Whether the load monitor accepts new sessions. */
  accepting: boolean;
  budgetUsedBytes: number;
  budgetLimitBytes: number;
  maxFrameBytes: number;
}

export function readiness(s: ReadinessInput): { ready: boolean; reasons: NotReadyReason[] } {
  const reasons: NotReadyReason[] = [];
  if (s.draining) reasons.push('draining');
  if (s.workersReady === 0) reasons.push('no_workers');
  if (!s.accepting) reasons.push('overloaded');
  if (s.budgetUsedBytes + s.maxFrameBytes > s.budgetLimitBytes) reasons.push('budget_exhausted');
  return { ready: reasons.length === 0, reasons };
}
