// Where a person sees a workflow: its page in the Temporal Web UI.
import type { Config } from '../config/schema';

export function workflowUrl(cfg: Config, workflowId: string): string {
  return `${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`;
}
