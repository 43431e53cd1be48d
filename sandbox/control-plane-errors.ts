// The admin API's error catalogue: every error answer is {error: {code, message}} with a code from here.

/** Code -> HTTP status. Codes are stable (clients branch on them); messages may be reworded. */
export const ERROR_STATUS = {
  /** No or wrong `Authorization: Bearer <token>`. */
  UNAUTHORIZED: 401,
  /** A write while maintenance mode is on. */
  MAINTENANCE: 503,
  /** Maintenance was enabled but writes admitted before it were still running at the deadline. */
  WRITES_NOT_DRAINED: 503,
  /** A body, parameter or query string that fails validation; the message names the field. */
  INVALID_REQUEST: 400,
  /** A connector export document with two connectors of the same id or name. */
  DUPLICATE_CONNECTOR: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  ROUTE_NOT_FOUND: 404,
  RESOURCE_NOT_FOUND: 404,
  CREDENTIAL_NOT_FOUND: 404,
  ORGANISATION_NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  /** POST /resources without organisationId on a deployment that has no organisation yet. */
  NO_ORGANISATION: 409,
  DATABASE_UNAVAILABLE: 503,
  RECORDING_STORE_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ControlPlaneError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ControlPlaneError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
  }

  toBody(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const unauthorized = () =>
  new ControlPlaneError('UNAUTHORIZED', 'missing or wrong bearer token: send "Authorization: Bearer <token>" with the token from the instance\'s tokenFile');

export const inMaintenance = (reason: string | null) =>
  new ControlPlaneError(
    'MAINTENANCE',
    `the deployment is in maintenance mode${reason ? ` (${reason})` : ''}: writes are refused until POST /admin/maintenance {"enabled": false}`,
  );

export const notFound = (code: 'RESOURCE_NOT_FOUND' | 'CREDENTIAL_NOT_FOUND' | 'ORGANISATION_NOT_FOUND' | 'USER_NOT_FOUND', id: string) =>
  new ControlPlaneError(code, `no ${code.replace('_NOT_FOUND', '').toLowerCase()} with id ${JSON.stringify(id)}`);
