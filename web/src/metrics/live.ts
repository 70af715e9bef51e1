// The live metrics connection (`/api/v1/live`): a snapshot after subscribing, then updates (at
// most four a second) merged into a map by server id. When the socket drops it reconnects with
// backoff (1 s doubling to 30 s, jittered) and, meanwhile, polls `/metrics/summary` so the
// dashboard stays current.
import { useEffect, useRef, useState } from 'react';
import { api, call, refreshSession, type Schemas } from '../api/client';

export type ServerMetrics = Schemas['ServerMetrics'];
export type HostStatus = Schemas['HostStatus'];
export type Subscription = { fleet: true } | { servers: string[] };

/** What the hub sends (steward_proto::LiveServerMessage). */
type Message = Schemas['LiveServerMessage'];
/** What the client sends (steward_proto::LiveClientMessage). */
type ClientMessage = Schemas['LiveClientMessage'];

export const SPARK_LEN = 60;

/** Applies one live message to the map (a new map; the old one is left alone). */
export function apply(prev: Map<string, ServerMetrics>, msg: Message): Map<string, ServerMetrics> {
  if (msg.type === 'error') return prev;
  if (msg.type === 'snapshot') {
    // A large snapshot comes in parts: the first replaces everything, the others add to it.
    const next = msg.part > 0 ? new Map(prev) : new Map<string, ServerMetrics>();
    for (const s of msg.servers) next.set(s.id, s);
    return next;
  }
  const next = new Map(prev);
  for (const s of msg.servers) {
    const old = prev.get(s.id);
    let spark = old?.sparkline ?? [];
    // A new sample adds its CPU value to the sparkline; a status change alone does not.
    if (s.last_sample_at && s.last_sample_at !== old?.last_sample_at && s.cpu_pct !== null && s.cpu_pct !== undefined) {
      spark = [...spark, s.cpu_pct].slice(-SPARK_LEN);
    }
    next.set(s.id, { ...s, sparkline: s.sparkline ?? spark });
  }
  for (const id of msg.removed ?? []) next.delete(id);
  return next;
}

export type LiveState = {
  servers: Map<string, ServerMetrics>;
  /** The socket is open (else the data comes from polling, or is not there yet). */
  live: boolean;
  /** Something has arrived at least once. */
  loaded: boolean;
  error: unknown;
};

/** Follows `sub` live; `key` must change when the subscription does. */
export function useLive(sub: Subscription | null, key: string): LiveState {
  const [state, setState] = useState<LiveState>({ servers: new Map(), live: false, loaded: false, error: null });
  const subRef = useRef(sub);
  subRef.current = sub;

  useEffect(() => {
    if (!subRef.current) return;
    let stopped = false;
    let ws: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let poll: ReturnType<typeof setInterval> | undefined;
    let attempt = 0;

    const pollOnce = async () => {
      const s = subRef.current;
      if (!s) return;
      try {
        const summary = await call(() => api.GET('/api/v1/metrics/summary', { params: { query: { sparklines: true } } }));
        if (stopped) return;
        const wanted = 'fleet' in s ? null : new Set(s.servers);
        const servers = summary.items.filter((i) => !wanted || wanted.has(i.id));
        setState((st) => (st.live ? st : { ...st, servers: new Map(servers.map((i) => [i.id, i])), loaded: true, error: null }));
      } catch (e) {
        if (!stopped) setState((st) => ({ ...st, error: e, loaded: true }));
      }
    };
    const startPolling = () => {
      if (poll) return;
      void pollOnce();
      poll = setInterval(() => void pollOnce(), 10_000);
    };
    const stopPolling = () => {
      if (poll) clearInterval(poll);
      poll = undefined;
    };

    const connect = () => {
      if (stopped) return;
      let opened = false;
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live`;
      ws = new WebSocket(url);
      ws.onopen = () => {
        opened = true;
        attempt = 0;
        const subscribe: ClientMessage = { type: 'subscribe', ...subRef.current };
        ws?.send(JSON.stringify(subscribe));
      };
      ws.onmessage = (ev) => {
        let msg: Message;
        try {
          msg = JSON.parse(String(ev.data)) as Message;
        } catch {
          return;
        }
        if (msg.type === 'snapshot') stopPolling();
        setState((st) => ({ servers: apply(st.servers, msg), live: true, loaded: true, error: null }));
      };
      ws.onclose = () => {
        ws = null;
        if (stopped) return;
        setState((st) => ({ ...st, live: false }));
        startPolling();
        const delay = Math.min(30_000, 1000 * 2 ** attempt);
        attempt += 1;
        retry = setTimeout(
          () => {
            // Refused before opening: most likely the access token expired.
            if (!opened) void refreshSession().finally(connect);
            else connect();
          },
          delay / 2 + Math.random() * (delay / 2),
        );
      };
    };
    connect();
    return () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      stopPolling();
      ws?.close();
    };
  }, [key]);

  return state;
}
