// Web terminals on one server: several tabs, each its own SSH session over a WebSocket, with
// copy and paste (selection + Ctrl+Shift+C / Ctrl+Shift+V, or the browser's), font size, and
// resizing that follows the window. Opening asks for a step-up when the server wants one.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, call, type Schemas } from '../api/client';
import { useApi } from '../api/useApi';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, ErrorAlert, Loading } from '../components/ui';
import { formatBytes } from '../metrics/format';
import { installStyleShim } from '../terminal/csp';
import { StepUpDialog } from '../components/StepUpDialog';

installStyleShim();

/** A control message from Steward (steward_proto::TerminalServerMessage); output comes as binary frames. */
type ServerMessage = Schemas['TerminalServerMessage'];
/** A control message to Steward (steward_proto::TerminalClientMessage); keystrokes go as binary frames. */
type ClientMessage = Schemas['TerminalClientMessage'];

const MIN_FONT = 8;
const MAX_FONT = 32;

type Status =
  | { kind: 'connecting' }
  | { kind: 'ready'; sessionId: string; /** The recording stopped at this size limit (bytes); the session goes on. */ recordingStopped?: number }
  | { kind: 'closed'; reason: string }
  | { kind: 'error'; code: string; message: string };

interface Tab {
  key: number;
}

/** Asks the server whether a terminal may open now (a plain GET answers 426 when it may). */
async function preflight(serverId: string): Promise<void> {
  try {
    await call(() => api.GET('/api/v1/servers/{id}/terminal', { params: { path: { id: serverId } } }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 426) return;
    throw e;
  }
}

function TerminalPane({
  serverId,
  active,
  fontSize,
  label,
  onStatus,
}: {
  serverId: string;
  active: boolean;
  fontSize: number;
  label: string;
  onStatus: (s: Status) => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const fit = useRef<FitAddon | null>(null);
  const initialFont = useRef(fontSize);
  const report = useRef(onStatus);
  useEffect(() => {
    report.current = onStatus;
  });

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const t = new Terminal({
      fontSize: initialFont.current,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
      cursorBlink: true,
      scrollback: 5000,
    });
    const f = new FitAddon();
    t.loadAddon(f);
    t.open(el);
    try {
      f.fit();
    } catch {
      // Not laid out yet; the resize observer fits later.
    }
    term.current = t;
    fit.current = f;

    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(
      `${proto}//${window.location.host}/api/v1/servers/${encodeURIComponent(serverId)}/terminal?cols=${t.cols}&rows=${t.rows}`,
    );
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    let ended = false;
    let sessionId = '';
    ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
      if (typeof e.data !== 'string') {
        t.write(new Uint8Array(e.data));
        return;
      }
      const m = JSON.parse(e.data) as ServerMessage;
      if (m.type === 'ready' && m.session_id) {
        sessionId = m.session_id;
        report.current({ kind: 'ready', sessionId });
      }
      if (m.type === 'recording_stopped') report.current({ kind: 'ready', sessionId, recordingStopped: m.limit_bytes ?? 0 });
      if (m.type === 'error') report.current({ kind: 'error', code: m.code ?? 'ssh_error', message: m.message ?? '' });
      if (m.type === 'closed') {
        ended = true;
        if (m.reason !== 'error') report.current({ kind: 'closed', reason: m.reason ?? 'closed' });
      }
    };
    ws.onclose = () => {
      if (!ended) report.current({ kind: 'closed', reason: 'closed' });
    };
    const send = (data: string | Uint8Array) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(data);
    };
    const onData = t.onData((d) => send(encoder.encode(d)));
    const onBinary = t.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
    const onResize = t.onResize(({ cols, rows }) => {
      const resize: ClientMessage = { type: 'resize', cols, rows };
      send(JSON.stringify(resize));
    });
    t.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        const text = t.getSelection();
        if (text) void navigator.clipboard?.writeText(text).catch(() => undefined);
        return false;
      }
      if (e.code === 'KeyV') {
        void navigator.clipboard
          ?.readText()
          .then((text) => t.paste(text))
          .catch(() => undefined);
        return false;
      }
      return true;
    });
    const observer = new ResizeObserver(() => {
      if (el.offsetParent !== null) {
        try {
          f.fit();
        } catch {
          // Hidden tab.
        }
      }
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      onData.dispose();
      onBinary.dispose();
      onResize.dispose();
      ws.onclose = null;
      ws.close();
      t.dispose();
      term.current = null;
      fit.current = null;
    };
  }, [serverId]);

  useEffect(() => {
    const t = term.current;
    if (!t) return;
    t.options.fontSize = fontSize;
    try {
      fit.current?.fit();
    } catch {
      // Hidden tab.
    }
  }, [fontSize]);

  useEffect(() => {
    if (!active) return;
    try {
      fit.current?.fit();
    } catch {
      // Not laid out.
    }
    term.current?.focus();
  }, [active]);

  return <div ref={ref} className="terminal-screen" role="region" aria-label={label} hidden={!active} />;
}

export function TerminalPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const { data: server, error: loadError } = useApi(() => call(() => api.GET('/api/v1/servers/{id}', { params: { path: { id } } })), [id]);
  const [error, setError] = useState<unknown>(null);
  const [tabs, setTabs] = useState<Tab[]>([]);
  const [active, setActive] = useState(0);
  const [statuses, setStatuses] = useState<Record<number, Status>>({});
  const [fontSize, setFontSize] = useState(14);
  const [stepUp, setStepUp] = useState(false);
  const nextKey = useRef(1);

  const open = useCallback(async () => {
    setError(null);
    try {
      await preflight(id);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'step_up_required') {
        setStepUp(true);
        return;
      }
      setError(e);
      return;
    }
    const key = nextKey.current++;
    setTabs((ts) => [...ts, { key }]);
    setStatuses((s) => ({ ...s, [key]: { kind: 'connecting' } }));
    setActive(key);
  }, [id]);

  const started = useRef(false);
  useEffect(() => {
    if (!server || started.current) return;
    started.current = true;
    void open();
  }, [server, open]);

  const close = (key: number) => {
    const rest = tabs.filter((tab) => tab.key !== key);
    setTabs(rest);
    if (active === key) setActive(rest.length ? rest[rest.length - 1]!.key : 0);
  };

  const statusText = (s: Status | undefined): string => {
    if (!s) return '';
    switch (s.kind) {
      case 'connecting':
        return t('terminal.connecting');
      case 'ready':
        return s.recordingStopped !== undefined ? t('terminal.recordingStopped', { size: formatBytes(s.recordingStopped, i18n.language) }) : t('terminal.connected');
      case 'closed':
        return t(`terminal.reason.${s.reason}`, { defaultValue: s.reason });
      case 'error':
        return t(`servers.problem.${s.code}`, { defaultValue: s.message || s.code });
    }
  };

  if (!server) {
    return loadError ? (
      <>
        <Breadcrumbs items={[{ label: t('nav.servers'), to: '/servers' }, { label: t('common.notFound') }]} />
        <ErrorAlert error={loadError} />
      </>
    ) : (
      <Loading />
    );
  }
  const current = statuses[active];
  const activeIndex = tabs.findIndex((tab) => tab.key === active);
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.servers'), to: '/servers' }, { label: server.name, to: `/servers/${id}` }, { label: t('terminal.title') }]} />
      <PageHeader
        title={t('terminal.titleOn', { server: server.name })}
        actions={
          <>
            <Button onClick={() => setFontSize((n) => Math.max(MIN_FONT, n - 1))} disabled={fontSize <= MIN_FONT}>
              A−<span className="visually-hidden"> {t('terminal.fontSmaller')}</span>
            </Button>
            <Button onClick={() => setFontSize((n) => Math.min(MAX_FONT, n + 1))} disabled={fontSize >= MAX_FONT}>
              A+<span className="visually-hidden"> {t('terminal.fontLarger')}</span>
            </Button>
            <Button variant="primary" onClick={() => void open()}>
              {t('terminal.newTab')}
            </Button>
          </>
        }
      />
      <ErrorAlert error={error} />
      <div className="terminal-tabbar">
        <div className="terminal-tabs" role="tablist" aria-label={t('terminal.tabs')}>
          {tabs.map((tab, i) => (
            <button
              key={tab.key}
              type="button"
              role="tab"
              className={tab.key === active ? 'terminal-tab active' : 'terminal-tab'}
              aria-selected={tab.key === active}
              aria-controls={`terminal-${tab.key}`}
              id={`terminal-tab-${tab.key}`}
              onClick={() => setActive(tab.key)}
            >
              {t('terminal.tab', { n: i + 1 })}
              {statuses[tab.key]?.kind === 'closed' || statuses[tab.key]?.kind === 'error' ? ` · ${t('terminal.ended')}` : ''}
            </button>
          ))}
        </div>
        {activeIndex >= 0 && (
          <Button variant="ghost" onClick={() => close(active)}>
            {t('terminal.closeTab', { n: activeIndex + 1 })}
          </Button>
        )}
      </div>
      {current && (
        <p className="terminal-status" role="status">
          {statusText(current)}
        </p>
      )}
      {tabs.length === 0 && <p className="empty">{t('terminal.noTabs')}</p>}
      <div className="terminal-frame">
        {tabs.map((tab, i) => (
          <div key={tab.key} id={`terminal-${tab.key}`} role="tabpanel" aria-labelledby={`terminal-tab-${tab.key}`} hidden={tab.key !== active}>
            <TerminalPane
              serverId={id}
              active={tab.key === active}
              fontSize={fontSize}
              label={t('terminal.tab', { n: i + 1 })}
              onStatus={(s) => setStatuses((all) => ({ ...all, [tab.key]: s }))}
            />
          </div>
        ))}
      </div>
      <p className="hint">{t('terminal.copyPasteHint')}</p>
      <StepUpDialog
        open={stepUp}
        onCancel={() => setStepUp(false)}
        onDone={() => {
          setStepUp(false);
          void open();
        }}
      />
    </>
  );
}
