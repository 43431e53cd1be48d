// Shapes of the per-deployment audit writer shared by its workflow, the activities that call it and the operations
// that read it (types and names only: safe in the workflow sandbox).
import type { AuditEvent, AuditHead } from '../src/audit/audit-entry';

export type { AuditEvent, AuditHead };

export interface AppendRequest {
  /**
   * Names the caller's attempt to record one event (workflow run + activity id): the same key asked again (an
   * activity retried after the entry was written) is answered with the entry already written, not a second one.
   */
  eventKey: string;
  event: AuditEvent;
}

export interface AuditLogInput {
  deployment: string;
  /** Carried over continue-as-new: where the trail stands, so the next run need not read it from the locations. */
  head?: AuditHead;
  /** Carried over continue-as-new: the latest event keys and what they were answered with. */
  recent?: [string, AuditHead][];
  /** Entries after which a run continues as new. @default 300 */
  entriesPerRun?: number;
}

/** The audit writer's workflow id: one per deployment, so entries are written strictly one at a time. */
export function auditWorkflowId(deployment: string): string {
  return `audit-${deployment}`;
}

export const APPEND_UPDATE = 'append';
export const HEAD_QUERY = 'head';
