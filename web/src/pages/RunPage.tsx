// One run, live: a pane per host (status, exit code, duration, stdout and stderr apart, a
// marker where output was cut), a summary bar that filters the panes, a progress bar and a
// Cancel button. Follows the WebSocket stream; falls back to GET for what it missed.
import { memo, useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { api, call } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, ErrorAlert, Loading, formatTime, useAction } from '../components/ui';
import { RunStatus, useDuration } from '../features/runs/RunRows';
import { GROUPS, RunStore, statusGroup, type Host, type RunEvent } from '../features/runs/runStore';
import '../styles/scripts.css';

/** What the server shows instead of a secret parameter's value. */
const SECRET_SHOWN = '***';

function OutputBlock({ store, serverId, stream, label }: { store: RunStore; serverId: string; stream: 'stdout' | 'stderr'; label: string }) {
  const block = useRef<HTMLDivElement>(null);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    store.attach(serverId, stream, block.current, pre.current);
    return () => store.attach(serverId, stream, null, null);
  }, [store, serverId, stream]);
  return (
    <div ref={block} className={`output output-${stream}`} hidden>
      <span className="output-label">{label}</span>
      <pre ref={pre} tabIndex={0} aria-label={label} data-testid={`${stream}-${serverId}`} />
    </div>
  );
}

const HostPane = memo(function HostPane({
  host,
  store,
  collapsed,
  onToggle,
}: {
  host: Host;
  store: RunStore;
  collapsed: boolean;
  onToggle: (id: string) => void;
}) {
  const { t } = useTranslation();
  const duration = useDuration();
  const bodyId = `pane-${host.server_id}`;
  const cut = (stream: 'stdout' | 'stderr', total: number) => {
    const kept = store.keptBytes(host.server_id, stream);
    return total > kept ? t('runs.cutAt', { stream, kept, total }) : null;
  };
  const cuts = host.truncated ? [cut('stdout', host.stdout_bytes), cut('stderr', host.stderr_bytes)].filter(Boolean) : [];
  return (
    <section className={`pane pane-${statusGroup(host.status)}`} aria-label={host.server_name} data-testid="host-pane">
      <header className="pane-header">
        <button type="button" className="pane-toggle" aria-expanded={!collapsed} aria-controls={bodyId} onClick={() => onToggle(host.server_id)}>
          <span aria-hidden="true">{collapsed ? '▶' : '▼'}</span>
          <span className="pane-name">{host.server_name}</span>
        </button>
        <RunStatus status={host.status} />
        <span className="pane-facts muted small">
          {host.exit_code != null && <span>{t('runs.exitCode', { code: host.exit_code })}</span>}
          {host.exit_signal && <span>{t('runs.signal', { signal: host.exit_signal })}</span>}
          {host.duration_ms != null && <span>{duration(host.duration_ms)}</span>}
        </span>
      </header>
      <div id={bodyId} className="pane-body" hidden={collapsed}>
        {host.error && (
          <p className="host-error">
            {host.error_code ? <code>{host.error_code}</code> : null} {host.error}
          </p>
        )}
        <OutputBlock store={store} serverId={host.server_id} stream="stdout" label={t('runs.stdout')} />
        <OutputBlock store={store} serverId={host.server_id} stream="stderr" label={t('runs.stderr')} />
        {host.truncated && (
          <p className="cut-marker" role="note">
            {cuts.length ? cuts.join(' · ') : t('runs.cut')}
          </p>
        )}
      </div>
    </section>
  );
});

export function RunPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const store = useMemo(() => new RunStore(rerender), []);
  const [error, setError] = useState<unknown>(null);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [filter, setFilter] = useState<string | null>(null);
  const cancel = useAction();
  const duration = useDuration();

  useEffect(() => {
    let ws: WebSocket | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let attempts = 0;
    const fetchNow = async () => {
      try {
        store.load(await call(() => api.GET('/api/v1/executions/{id}', { params: { path: { id } } })));
        return true;
      } catch (e) {
        setError(e);
        return false;
      }
    };
    const connect = () => {
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/executions/${encodeURIComponent(id)}/stream`;
      ws = new WebSocket(url);
      ws.onmessage = (m) => {
        attempts = 0;
        let event: RunEvent;
        try {
          event = JSON.parse(String(m.data)) as RunEvent;
        } catch {
          return; // not a message of ours
        }
        store.handle(event);
        if (event.type === 'finished') {
          // The end event carries the counts; the run's end time and canceller come from a read.
          void call(() => api.GET('/api/v1/executions/{id}', { params: { path: { id } } })).then(
            (d) => store.mergeRun(d),
            () => undefined,
          );
        }
      };
      ws.onclose = () => {
        if (stopped || store.finished) return;
        // Lost the stream (or it was refused): read the run, and follow again while it runs.
        void fetchNow().then((ok) => {
          if (stopped || !ok || store.finished || attempts >= 5) return;
          attempts++;
          retry = setTimeout(connect, 1000 * attempts);
        });
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(retry);
      ws?.close();
      store.dispose();
    };
  }, [id, store]);

  const toggle = useCallback((serverId: string) => {
    setCollapsed((old) => {
      const next = new Set(old);
      if (next.has(serverId)) next.delete(serverId);
      else next.add(serverId);
      return next;
    });
  }, []);

  const detail = store.detail;
  if (!detail) {
    return (
      <>
        <Breadcrumbs items={[{ label: t('nav.runs'), to: '/runs' }, { label: t('runs.run') }]} />
        {error ? <ErrorAlert error={error} /> : <Loading />}
      </>
    );
  }
  const counts: Record<string, number> = Object.fromEntries(GROUPS.map((g) => [g, 0]));
  for (const h of store.hosts) counts[statusGroup(h.status)]!++;
  const total = store.hosts.length;
  const done = total - counts.running!;
  const running = detail.status === 'running' && !store.finished;
  const title = detail.script_name ?? t('runs.adHoc');
  const parameters = Object.entries(detail.parameters as Record<string, string>);
  const shown = filter ? store.hosts.filter((h) => statusGroup(h.status) === filter) : store.hosts;
  const elapsed = detail.finished_at ? new Date(detail.finished_at).getTime() - new Date(detail.created_at).getTime() : null;

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.runs'), to: '/runs' }, { label: title }]} />
      <PageHeader
        title={title}
        actions={
          running &&
          can('scripts.run') && (
            <Button
              variant="danger"
              busy={cancel.busy}
              onClick={() =>
                void cancel.run(async () => {
                  await call(() => api.POST('/api/v1/executions/{id}/cancel', { params: { path: { id } } }));
                })
              }
            >
              {t('runs.cancelRun')}
            </Button>
          )
        }
      />
      <ErrorAlert error={cancel.error} />
      <section className="card">
        <dl className="facts">
          <dt>{t('runs.statusLabel')}</dt>
          <dd>
            <RunStatus status={store.finished ? detail.status : 'running'} />
            {detail.cancelled_by && <span className="muted small"> {t('runs.cancelledBy', { user: detail.cancelled_by })}</span>}
          </dd>
          {detail.script_id && (
            <>
              <dt>{t('runs.script')}</dt>
              <dd>
                <Link to={`/scripts/${detail.script_id}`}>{detail.script_name}</Link> {t('scripts.versionN', { version: detail.script_version })}
              </dd>
            </>
          )}
          <dt>{t('runs.startedBy')}</dt>
          <dd>
            {detail.created_by} · {formatTime(detail.created_at, i18n.language)}
          </dd>
          {elapsed != null && (
            <>
              <dt>{t('runs.duration')}</dt>
              <dd>{duration(elapsed)}</dd>
            </>
          )}
          {parameters.length > 0 && (
            <>
              <dt>{t('scripts.parameters')}</dt>
              <dd className="mono">
                {parameters.map(([k, v]) =>
                  // A secret parameter's value is never stored: the server sends `***`.
                  (detail.secret_parameters ?? []).includes(k) || v === SECRET_SHOWN ? (
                    <div key={k} className="secret-value" data-testid={`param-${k}`}>
                      {k}={v}
                      <span className="badge badge-secret" title={t('runs.secretHiddenHint')}>
                        {t('runs.secretHidden')}
                      </span>
                    </div>
                  ) : (
                    <div key={k} data-testid={`param-${k}`}>
                      {k}={v}
                    </div>
                  ),
                )}
              </dd>
            </>
          )}
        </dl>
        <details className="command">
          <summary>{detail.script_id ? t('runs.showScript') : t('runs.showCommand')}</summary>
          <pre className="codeblock">{detail.command}</pre>
        </details>
      </section>
      <section className="run-summary" aria-label={t('runs.summary')}>
        <div className="summary-chips" role="group" aria-label={t('runs.filterByStatus')}>
          <button type="button" className="chip" aria-pressed={filter === null} onClick={() => setFilter(null)}>
            {t('runs.all', { count: total })}
          </button>
          {GROUPS.map((g) => (
            <button
              key={g}
              type="button"
              className={`chip chip-${g}`}
              aria-pressed={filter === g}
              data-testid={`count-${g}`}
              onClick={() => setFilter(filter === g ? null : g)}
            >
              {t(`runs.counts.${g}`, { count: counts[g] })}
            </button>
          ))}
        </div>
        <div className="progress-row">
          <progress max={Math.max(total, 1)} value={done} aria-label={t('runs.progress')} />
          <span className="small" aria-live="polite">
            {t('runs.progressText', { done, total })}
          </span>
        </div>
        <div className="actions">
          <Button variant="ghost" onClick={() => setCollapsed(new Set())}>
            {t('runs.expandAll')}
          </Button>
          <Button variant="ghost" onClick={() => setCollapsed(new Set(store.hosts.map((h) => h.server_id)))}>
            {t('runs.collapseAll')}
          </Button>
        </div>
      </section>
      <div className="panes">
        {shown.map((h) => (
          <HostPane key={h.server_id} host={h} store={store} collapsed={collapsed.has(h.server_id)} onToggle={toggle} />
        ))}
        {shown.length === 0 && <p className="empty">{t('runs.noHostsMatch')}</p>}
      </div>
    </>
  );
}
