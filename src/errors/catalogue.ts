// One catalogue of the orchestrator's errors: a stable code an operator can search for, and a message template.
// Lower layers keep their own families in their errors files (VPB_ERR_PG_* in src/postgres, storage and crypto
// codes in src/storage and src/crypto, VPB_ERR_RESTORE_* in src/restore); workflows fail with ApplicationFailure types.

export const errorCatalogue = {
  VPB_ERR_CONFIG_INVALID: 'The configuration is invalid: %s',
  VPB_ERR_CONFIG_UNREADABLE: 'The configuration file %s cannot be read: %s',
  VPB_ERR_SECRET_MISSING: 'The secret %s is not available: %s',
  VPB_ERR_INPUT_INVALID: 'Invalid input: %s',
  VPB_ERR_STACK: 'The local stack could not be provisioned: %s',
  VPB_ERR_CONTROL_PLANE: 'The VaultPAM control plane at %s answered %s',
  VPB_ERR_CONTROL_PLANE_UNREACHABLE: 'The VaultPAM control plane at %s cannot be reached: %s. Is the service running? (local stack: `vaultpam-backup stack up`)',
  VPB_ERR_SERVICE_COMMAND: 'The service command %s failed: %s',
  VPB_ERR_TEMPORAL_UNREACHABLE: 'Temporal at %s cannot be reached: %s. Start it (`vaultpam-backup stack up`) or set temporal.address',
  VPB_ERR_TEMPORAL_REFUSED: 'Temporal at %s refused this client: %s. %s',
  VPB_ERR_TEMPORAL_TLS: 'The TLS connection to Temporal at %s failed: %s. %s',
  VPB_ERR_BACKUP_RUNNING: 'A backup of %s is already running: workflow %s',
  VPB_ERR_DEPLOYMENT_LOCKED: 'Deployment %s is locked: %s',
  VPB_ERR_CHECK_RUNNING: 'A check of %s is already running: workflow %s',
  VPB_ERR_STEP_FAILED: 'Step %s failed: %s',
  VPB_ERR_NOT_FOUND: '%s not found: %s',
  VPB_ERR_NO_WORKER: 'No worker polls the task queue "%s" (namespace %s): %s',
  VPB_ERR_UNAUTHORIZED: 'Not authenticated: %s',
  VPB_ERR_FORBIDDEN: 'Principal %s may not %s: it needs the role %s and holds %s',
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

/** An error with a stable code; the message is built from the catalogue's template. */
export class VaultpamBackupError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, ...args: string[]) {
    let i = 0;
    super(`${code}: ${errorCatalogue[code].replace(/%s/g, () => args[i++] ?? '')}`);
    this.name = 'VaultpamBackupError';
    this.code = code;
  }
}
