/**
 * Typed errors. The server sends every failure as a `google.rpc.Status` (in the
 * `grpc-status-details-bin` trailer) carrying a `google.rpc.ErrorInfo` (a stable `reason`
 * such as `ACTION_NOT_FOUND`, the domain `neoactions.dev`, metadata) and, for invalid
 * input, a `google.rpc.BadRequest` naming each field. {@link fromConnectError} turns that
 * into one class per gRPC code, the same tree as the Python client's.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The `ErrorInfo.domain` of every error the server raises itself. */
export const ERROR_DOMAIN = "neoactions.dev";

/** One invalid field of a request, named by its path (`trigger.conditions[2].value`). */
export interface FieldViolation {
  field: string;
  description: string;
}

export interface ErrorFields {
  /** Stable, machine-readable: the `ErrorInfo.reason` (`ACTION_NOT_FOUND`, ...). */
  reason?: string;
  violations?: FieldViolation[];
  metadata?: Record<string, string>;
  /** The gRPC status code the call ended with. */
  code?: Code;
  cause?: unknown;
}

/** Base of every error a call reports. `reason` is stable; `message` is for people. */
export class NeoActionsError extends Error {
  /** The reason when the server sent none (a status from a proxy, a transport failure). */
  static readonly defaultReason: string = "UNKNOWN";
  /** The gRPC code this class stands for. */
  static readonly grpcCode: Code = Code.Unknown;

  readonly reason: string;
  readonly violations: readonly FieldViolation[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly code: Code;

  constructor(message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    const cls = this.constructor as typeof NeoActionsError;
    this.name = cls.name;
    this.reason = fields.reason || cls.defaultReason;
    this.violations = fields.violations ?? [];
    this.metadata = fields.metadata ?? {};
    this.code = fields.code ?? cls.grpcCode;
  }
}

/** The request is malformed; nothing was changed. `violations` names the fields. */
export class InvalidArgument extends NeoActionsError {
  static override readonly defaultReason: string = "INVALID_ARGUMENT";
  static override readonly grpcCode: Code = Code.InvalidArgument;

  /** One invalid field, described. */
  static field(path: string, description: string, reason?: string): InvalidArgument {
    return new InvalidArgument(`${path}: ${description}`, {
      reason: reason ?? "INVALID_ARGUMENT",
      violations: [{ field: path, description }],
    });
  }
}
export class NotFound extends NeoActionsError {
  static override readonly defaultReason: string = "NOT_FOUND";
  static override readonly grpcCode: Code = Code.NotFound;
}
export class AlreadyExists extends NeoActionsError {
  static override readonly defaultReason: string = "ALREADY_EXISTS";
  static override readonly grpcCode: Code = Code.AlreadyExists;
}
/** The request is valid but the system is not in a state to accept it. */
export class FailedPrecondition extends NeoActionsError {
  static override readonly defaultReason: string = "FAILED_PRECONDITION";
  static override readonly grpcCode: Code = Code.FailedPrecondition;
}
/** A concurrent change won (an update against a stale version). */
export class Aborted extends NeoActionsError {
  static override readonly defaultReason: string = "ABORTED";
  static override readonly grpcCode: Code = Code.Aborted;
}
export class ResourceExhausted extends NeoActionsError {
  static override readonly defaultReason: string = "RESOURCE_EXHAUSTED";
  static override readonly grpcCode: Code = Code.ResourceExhausted;
}
export class PermissionDenied extends NeoActionsError {
  static override readonly defaultReason: string = "PERMISSION_DENIED";
  static override readonly grpcCode: Code = Code.PermissionDenied;
}
/** No API key, or one the server does not accept (unknown, revoked, expired). */
export class Unauthenticated extends NeoActionsError {
  static override readonly defaultReason: string = "UNAUTHENTICATED";
  static override readonly grpcCode: Code = Code.Unauthenticated;
}
/** The server or one of its dependencies cannot be reached; the call may be retried. */
export class Unavailable extends NeoActionsError {
  static override readonly defaultReason: string = "UNAVAILABLE";
  static override readonly grpcCode: Code = Code.Unavailable;
}
/** The call's deadline passed first (`timeoutMs`). An `Unavailable`: it may be retried. */
export class DeadlineExceeded extends Unavailable {
  static override readonly defaultReason: string = "DEADLINE_EXCEEDED";
  static override readonly grpcCode: Code = Code.DeadlineExceeded;
}
/** The caller cancelled the call (its `AbortSignal`, or a stream left early). */
export class Cancelled extends NeoActionsError {
  static override readonly defaultReason: string = "CANCELLED";
  static override readonly grpcCode: Code = Code.Canceled;
}
export class Internal extends NeoActionsError {
  static override readonly defaultReason: string = "INTERNAL";
  static override readonly grpcCode: Code = Code.Internal;
}

const BY_CODE = new Map<Code, typeof NeoActionsError>(
  [
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    ResourceExhausted,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    DeadlineExceeded,
    Cancelled,
    Internal,
  ].map((cls) => [cls.grpcCode, cls]),
);
// DATA_LOSS and UNIMPLEMENTED are internal faults for a caller; OUT_OF_RANGE is bad input
BY_CODE.set(Code.DataLoss, Internal);
BY_CODE.set(Code.Unimplemented, Internal);
BY_CODE.set(Code.OutOfRange, InvalidArgument);

/** `google.rpc.ErrorInfo`, decoded from its wire form. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) info.reason = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) info.domain = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      const [key, value] = decodePair(reader.bytes());
      info.metadata[key] = value;
    } else reader.skip(wireType);
  }
  return info;
}

/** A message of two string fields (a map entry `{key=1, value=2}`, a `FieldViolation`'s
 * `{field=1, description=2}`); other fields are skipped. */
function decodePair(bytes: Uint8Array): [string, string] {
  const pair: [string, string] = ["", ""];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if ((field === 1 || field === 2) && wireType === WireType.LengthDelimited) pair[field - 1] = reader.string();
    else reader.skip(wireType);
  }
  return pair;
}

function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const [name, description] = decodePair(reader.bytes());
      out.push({ field: name, description });
    } else reader.skip(wireType);
  }
  return out;
}

/** The typed error for a failed call: the class of its gRPC code, with the reason, field
 * violations and metadata of its `ErrorInfo` and `BadRequest` details. */
export function fromConnectError(err: ConnectError): NeoActionsError {
  let reason = "";
  let metadata: Record<string, string> = {};
  let violations: FieldViolation[] = [];
  for (const detail of err.details) {
    if (!("value" in detail) || !(detail.value instanceof Uint8Array) || !("type" in detail)) continue;
    try {
      if (detail.type === "google.rpc.ErrorInfo") {
        const info = decodeErrorInfo(detail.value);
        reason = info.reason;
        metadata = info.metadata;
      } else if (detail.type === "google.rpc.BadRequest") {
        violations = decodeBadRequest(detail.value);
      }
    } catch {
      // a detail that does not decode is left out; the code and message still stand
    }
  }
  const cls = BY_CODE.get(err.code) ?? NeoActionsError;
  const message = err.rawMessage || Code[err.code] || "error";
  return new cls(message, { reason: reason || undefined, metadata, violations, code: err.code, cause: err });
}

/**
 * A thrown value as a {@link NeoActionsError}. `CANCELLED` is {@link Cancelled} only when the
 * caller's own `signal` ended the call; otherwise the connection was cut (an HTTP/2 stream
 * reset, a plaintext client at a TLS port): {@link Unavailable}, to be retried.
 */
export function translate(err: unknown, signal?: AbortSignal): unknown {
  if (err instanceof NeoActionsError) return err;
  if (!(err instanceof ConnectError)) return err;
  if (err.code === Code.Canceled && !signal?.aborted) {
    return new Unavailable(`the connection ended the call: ${err.rawMessage}`, { reason: "CONNECTION_CLOSED", code: err.code, cause: err });
  }
  return fromConnectError(err);
}
