// The state of one run as its live stream tells it. Output does not go through React: it is
// kept here and appended to the panes' <pre> elements once per animation frame, so a run on
// many chatty hosts stays fast. Status changes bump a version that React renders from.
import type { Schemas } from '../../api/client';

export type Host = Schemas['ExecutionHost'];
export type Detail = Schemas['ExecutionDetail'];
/** A message of the live stream (steward_proto::ExecutionEvent). */
export type RunEvent = Schemas['ExecutionEvent'];
type Stream = 'stdout' | 'stderr';

interface Output {
  stdout: string;
  stderr: string;
}

interface Attached {
  block: HTMLElement;
  pre: HTMLPreElement;
}

/** Host statuses grouped the way the summary counts them. */
export function statusGroup(status: string): 'ok' | 'failed' | 'timed_out' | 'error' | 'cancelled' | 'running' {
  switch (status) {
    case 'ok':
    case 'failed':
    case 'timed_out':
    case 'error':
      return status;
    case 'cancelled':
    case 'skipped':
      return 'cancelled';
    default:
      return 'running';
  }
}

export const GROUPS = ['ok', 'failed', 'timed_out', 'error', 'cancelled', 'running'] as const;

export class RunStore {
  detail: Detail | null = null;
  hosts: Host[] = [];
  finished = false;
  /** Bumped whenever something React shows (not output) changed. */
  version = 0;
  private seq = -1;
  private output = new Map<string, Output>();
  private pending = new Map<string, Output>();
  private attached = new Map<string, Attached>();
  private frame = 0;
  private dirty = false;

  constructor(private readonly onChange: () => void) {}

  /** Applies one message of the stream. */
  handle(e: RunEvent) {
    switch (e.type) {
      case 'snapshot':
        this.reset(e.execution);
        this.seq = e.seq;
        break;
      case 'output': {
        if (e.seq <= this.seq) return;
        this.seq = e.seq;
        const stream: Stream = e.stream === 'stderr' ? 'stderr' : 'stdout';
        const all = this.output.get(e.server_id);
        if (!all) return;
        all[stream] += e.data;
        const p = this.pending.get(e.server_id) ?? { stdout: '', stderr: '' };
        p[stream] += e.data;
        this.pending.set(e.server_id, p);
        break;
      }
      case 'host': {
        if (e.seq <= this.seq) return;
        this.seq = e.seq;
        this.hosts = this.hosts.map((h) => (h.server_id === e.host.server_id ? { ...e.host, stdout: '', stderr: '' } : h));
        this.dirty = true;
        break;
      }
      case 'finished':
        // Sent with the snapshot's seq for runs that had already ended: always applies.
        this.finished = true;
        if (this.detail) this.detail = { ...this.detail, status: e.status, summary: e.summary };
        this.dirty = true;
        break;
    }
    this.schedule();
  }

  /** Replaces everything with a full view of the run (a snapshot, or GET /executions/{id}). */
  reset(detail: Detail) {
    this.detail = detail;
    this.finished = detail.status !== 'running';
    this.output = new Map(detail.hosts.map((h) => [h.server_id, { stdout: h.stdout, stderr: h.stderr }]));
    this.hosts = detail.hosts.map((h) => ({ ...h, stdout: '', stderr: '' }));
    this.pending.clear();
    for (const [key, a] of this.attached) {
      const [id, stream] = key.split('|') as [string, Stream];
      this.fill(a, this.output.get(id)?.[stream] ?? '');
    }
    this.dirty = true;
  }

  /** Replaces everything with what GET /executions/{id} answered (after a lost stream). */
  load(detail: Detail) {
    this.reset(detail);
    this.schedule();
  }

  /** Takes the run's own facts (end time, who cancelled) from a fresh read, keeping hosts
   *  and output as the stream left them. */
  mergeRun(detail: Detail) {
    if (!this.detail) return;
    const { hosts: _hosts, ...run } = detail;
    void _hosts;
    this.detail = { ...this.detail, ...run, hosts: this.detail.hosts };
    this.dirty = true;
    this.schedule();
  }

  /** A pane's output block mounts (or unmounts, with null). */
  attach(serverId: string, stream: Stream, block: HTMLElement | null, pre: HTMLPreElement | null) {
    const key = `${serverId}|${stream}`;
    if (!block || !pre) {
      this.attached.delete(key);
      return;
    }
    const a = { block, pre };
    this.attached.set(key, a);
    // Output not yet flushed is appended by the next frame: fill only what came before it, or
    // a pane that mounts between a message and that frame would show it twice.
    const all = this.output.get(serverId)?.[stream] ?? '';
    const pending = this.pending.get(serverId)?.[stream] ?? '';
    this.fill(a, all.slice(0, all.length - pending.length));
  }

  /** Bytes of output kept for a host's stream (what the cut marker compares with the total). */
  keptBytes(serverId: string, stream: Stream): number {
    return new TextEncoder().encode(this.output.get(serverId)?.[stream] ?? '').length;
  }

  dispose() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  private fill(a: Attached, text: string) {
    a.pre.textContent = text;
    a.block.hidden = text === '';
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.flush();
    });
  }

  private flush() {
    for (const [id, p] of this.pending) {
      for (const stream of ['stdout', 'stderr'] as const) {
        const text = p[stream];
        const a = this.attached.get(`${id}|${stream}`);
        if (!text || !a) continue;
        const pre = a.pre;
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
        pre.appendChild(document.createTextNode(text));
        a.block.hidden = false;
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
    }
    this.pending.clear();
    if (this.dirty) {
      this.dirty = false;
      this.version++;
      this.onChange();
    }
  }
}
