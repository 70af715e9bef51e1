// The typed API client. Types come from the server's OpenAPI document (schema.d.ts is
// generated; never edit it by hand), so an API change that breaks the UI fails `tsc`.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Me = Schemas['Me'];
export type Server = Schemas['Server'];
export type User = Schemas['User'];
export type Role = Schemas['Role'];
export type AuditEvent = Schemas['AuditEvent'];
export type Permission = string;

/** The session lives in HttpOnly cookies; the browser sends them, the UI never sees them. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });

/** An error answer from the server: `{"error": {code, message, details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What every openapi-fetch call resolves to (a union of the success and error shapes). */
type FetchResult = { data?: unknown; error?: unknown; response: Response };

function toError(r: FetchResult): ApiError {
  const body = r.error as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  const e = body?.error;
  return new ApiError(r.response.status, e?.code ?? 'network_error', e?.message ?? r.response.statusText, e?.details ?? {});
}

let refreshing: Promise<boolean> | null = null;

/** Exchanges the refresh cookie for a new session, once even if many calls ask at once. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= api
    .POST('/api/v1/auth/refresh', { body: {} })
    .then((r) => r.response.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Fired when the session is gone for good; the app sends the user to the login page. */
export const SESSION_ENDED = 'steward:session-ended';

/**
 * Runs an API call; on an expired access token, refreshes the session once and retries.
 * Resolves with the data, or rejects with an `ApiError`.
 */
export async function call<R extends FetchResult>(
  fn: () => Promise<R>,
  opts: { auth?: boolean } = {},
): Promise<Exclude<R['data'], undefined>> {
  let r: R;
  try {
    r = await fn();
  } catch {
    throw new ApiError(0, 'network_error', 'network error');
  }
  if (r.response.status === 401 && opts.auth !== false) {
    if (await refreshSession()) {
      r = await fn();
    }
    if (r.response.status === 401) {
      window.dispatchEvent(new Event(SESSION_ENDED));
    }
  }
  if (!r.response.ok) {
    throw toError(r);
  }
  return r.data as Exclude<R['data'], undefined>;
}

/**
 * POSTs `body` to `path` asking for `application/x-ndjson`, and hands each JSON line to
 * `onLine` as it arrives (for operations that report progress, such as an agent install).
 * Refreshes an expired session once, like `call`; an error answer rejects with an `ApiError`.
 */
export async function postStream(path: string, body: unknown, onLine: (line: unknown) => void): Promise<void> {
  const send = () =>
    fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/x-ndjson', 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  let r: Response;
  try {
    r = await send();
    if (r.status === 401) {
      if (await refreshSession()) r = await send();
      if (r.status === 401) window.dispatchEvent(new Event(SESSION_ENDED));
    }
  } catch {
    throw new ApiError(0, 'network_error', 'network error');
  }
  if (!r.ok || !r.body) {
    const error = (await r.json().catch(() => undefined)) as unknown;
    throw toError({ error, response: r });
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    let chunk: ReadableStreamReadResult<string>;
    try {
      chunk = await reader.read();
    } catch {
      throw new ApiError(0, 'network_error', 'the connection ended early');
    }
    if (chunk.done) break;
    buffered += chunk.value;
    let end: number;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
}
