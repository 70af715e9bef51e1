// Recorded terminal sessions: the caller's own (everyone's with audit.read), live ones marked,
// administrators can end a live one; and a player that replays a recording in a terminal.
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { api, call, type Schemas } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, DataTable, ErrorAlert, Loading, SelectField, formatTime } from '../components/ui';
import { parseCast, parseSize, type Cast } from '../terminal/asciicast';
import { installStyleShim } from '../terminal/csp';

installStyleShim();

type Session = Schemas['TerminalSession'];
const PAGE = 50;

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null) return '—';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

const recordingUrl = (id: string) => `/api/v1/terminal-sessions/${encodeURIComponent(id)}/recording`;

export function RecordingsPage() {
  const { t, i18n } = useTranslation();
  const { can } = useAuth();
  const [offset, setOffset] = useState(0);
  const [liveOnly, setLiveOnly] = useState(false);
  const [ending, setEnding] = useState<Session | null>(null);
  const {
    data: page,
    error,
    loading: busy,
    reload: load,
  } = useApi(
    () => call(() => api.GET('/api/v1/terminal-sessions', { params: { query: { limit: PAGE, offset, ...(liveOnly ? { live: true } : {}) } } })),
    [offset, liveOnly],
  );
  const items = page?.items ?? null;
  const total = page?.total ?? 0;

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.recordings') }]} />
      <PageHeader title={t('nav.recordings')} actions={<Button onClick={() => void load()}>{t('terminal.recordings.refresh')}</Button>} />
      <p>{t('terminal.recordings.explain')}</p>
      <div className="toolbar">
        <Checkbox
          label={t('terminal.recordings.liveOnly')}
          checked={liveOnly}
          onChange={(e) => {
            setOffset(0);
            setLiveOnly(e.target.checked);
          }}
        />
      </div>
      <ErrorAlert error={error} />
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="empty">{t('terminal.recordings.empty')}</p>
      ) : (
        <DataTable
          caption={t('nav.recordings')}
          headers={[t('terminal.recordings.user'), t('terminal.recordings.server'), t('terminal.recordings.started'), t('terminal.recordings.duration'), t('terminal.recordings.status')]}
          actionsLabel={t('common.actions')}
        >
          {items.map((s) => (
            <tr key={s.id}>
              <td>{s.username}</td>
              <td>{s.server_name}</td>
              <td className="nowrap">{formatTime(s.started_at, i18n.language)}</td>
              <td className="nowrap">{formatDuration(s.duration_ms)}</td>
              <td>
                {s.live ? (
                  <span className="badge badge-live">{t('terminal.recordings.live')}</span>
                ) : (
                  t(`terminal.reason.${s.end_reason ?? 'closed'}`, { defaultValue: s.end_reason ?? '' })
                )}
                {s.recording_capped_at && (
                  <span className="badge badge-warning" data-testid="recording-capped" title={t('terminal.recordings.cappedHint', { when: formatTime(s.recording_capped_at, i18n.language) })}>
                    {t('terminal.recordings.capped')}
                  </span>
                )}
              </td>
              <td className="row-actions">
                <Link className="btn btn-secondary" to={`/recordings/${s.id}`}>
                  {t('terminal.recordings.play')}
                </Link>
                <a className="btn btn-ghost" href={recordingUrl(s.id)} download>
                  {t('terminal.recordings.download')}
                </a>
                {s.live && can('users.manage') && (
                  <Button variant="danger" onClick={() => setEnding(s)}>
                    {t('terminal.recordings.terminate')}
                  </Button>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {total > PAGE && (
        <div className="pager">
          <Button disabled={busy || offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            {t('common.previous')}
          </Button>
          <Button disabled={busy || offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
            {t('common.next')}
          </Button>
        </div>
      )}
      <ConfirmDialog
        open={ending !== null}
        title={t('terminal.recordings.terminateTitle')}
        message={t('terminal.recordings.terminateConfirm', { user: ending?.username ?? '', server: ending?.server_name ?? '' })}
        confirmLabel={t('terminal.recordings.terminate')}
        onClose={() => setEnding(null)}
        onConfirm={async () => {
          if (!ending) return;
          await call(() => api.POST('/api/v1/terminal-sessions/{id}/terminate', { params: { path: { id: ending.id } } }));
          await load();
        }}
      />
    </>
  );
}

const SPEEDS = [0.5, 1, 2, 4, 8];

/** Replays a recording: play/pause, speed, and a progress bar to jump anywhere. */
function Player({ cast, label }: { cast: Cast; label: string }) {
  const { t } = useTranslation();
  const ref = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [position, setPosition] = useState(0);
  // The next event to write, and the recording time shown.
  const cursor = useRef(0);
  const clock = useRef(0);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const t = new Terminal({ cols: cast.width, rows: cast.height, disableStdin: true, scrollback: 5000, fontSize: 13 });
    t.open(el);
    term.current = t;
    cursor.current = 0;
    clock.current = 0;
    return () => {
      t.dispose();
      term.current = null;
    };
  }, [cast]);

  const apply = useCallback(
    (upTo: number) => {
      const t = term.current;
      if (!t) return;
      while (cursor.current < cast.events.length && cast.events[cursor.current]!.at <= upTo) {
        const e = cast.events[cursor.current]!;
        if (e.kind === 'o') t.write(e.data);
        if (e.kind === 'r') {
          const size = parseSize(e.data);
          if (size) t.resize(size[0], size[1]);
        }
        cursor.current += 1;
      }
    },
    [cast],
  );

  const seek = (to: number) => {
    const t = term.current;
    if (!t) return;
    if (to < clock.current) {
      t.reset();
      t.resize(cast.width, cast.height);
      cursor.current = 0;
    }
    clock.current = to;
    apply(to);
    setPosition(to);
  };

  useEffect(() => {
    if (!playing) return;
    let last = performance.now();
    const timer = window.setInterval(() => {
      const now = performance.now();
      clock.current = Math.min(cast.duration, clock.current + ((now - last) / 1000) * speed);
      last = now;
      apply(clock.current);
      setPosition(clock.current);
      if (clock.current >= cast.duration) setPlaying(false);
    }, 50);
    return () => window.clearInterval(timer);
  }, [playing, speed, cast, apply]);

  return (
    <div className="player">
      <div ref={ref} className="terminal-screen player-screen" role="region" aria-label={label} />
      <div className="player-controls">
        <Button
          variant="primary"
          onClick={() => {
            if (!playing && clock.current >= cast.duration) seek(0);
            setPlaying(!playing);
          }}
        >
          {playing ? t('terminal.recordings.pause') : t('terminal.recordings.playButton')}
        </Button>
        <SelectField label={t('terminal.recordings.speed')} value={String(speed)} onChange={(e) => setSpeed(Number(e.target.value))}>
          {SPEEDS.map((s) => (
            <option key={s} value={s}>
              {s}×
            </option>
          ))}
        </SelectField>
        <label className="player-progress">
          <span className="visually-hidden">{t('terminal.recordings.progress')}</span>
          <input
            type="range"
            min={0}
            max={Math.max(cast.duration, 0.001)}
            step={0.1}
            value={position}
            onChange={(e) => seek(Number(e.target.value))}
          />
        </label>
        <span className="mono nowrap">
          {formatDuration(position * 1000)} / {formatDuration(cast.duration * 1000)}
        </span>
      </div>
    </div>
  );
}

export function RecordingPlayerPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const sessionLoad = useApi(() => call(() => api.GET('/api/v1/terminal-sessions/{id}', { params: { path: { id } } })), [id]);
  const session = sessionLoad.data ?? null;
  // The recording once the session is known (the title shows while it loads).
  const castLoad = useApi(
    !!session &&
      (() =>
        call(() => api.GET('/api/v1/terminal-sessions/{id}/recording', { params: { path: { id } }, parseAs: 'text' })).then((text) =>
          parseCast(text as string),
        )),
    [id, !!session],
  );
  const cast: Cast | null = castLoad.data ?? null;
  const error = sessionLoad.error ?? castLoad.error;

  const title = session ? t('terminal.recordings.playerTitle', { user: session.username, server: session.server_name }) : t('terminal.recordings.player');
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.recordings'), to: '/recordings' }, { label: title }]} />
      <PageHeader
        title={title}
        actions={
          session && (
            <a className="btn btn-secondary" href={recordingUrl(session.id)} download>
              {t('terminal.recordings.download')}
            </a>
          )
        }
      />
      <ErrorAlert error={error} />
      {session && (
        <p>
          {formatTime(session.started_at, i18n.language)} · {formatDuration(session.duration_ms)}
          {session.live && <span className="badge badge-live">{t('terminal.recordings.live')}</span>}
          {session.recording_capped_at && (
            <span className="badge badge-warning" title={t('terminal.recordings.cappedHint', { when: formatTime(session.recording_capped_at, i18n.language) })}>
              {t('terminal.recordings.capped')}
            </span>
          )}
        </p>
      )}
      {!error && !cast && <Loading />}
      {cast && <Player cast={cast} label={title} />}
    </>
  );
}
