// Starting a run: a saved script (its parameters as a form) or an ad-hoc command, on servers
// picked by name and/or by tag, with timeout, concurrency and stop-on-first-failure. A
// `step_up_required` answer asks for the password or a code and retries by itself. A saved
// script runs at the version shown here: if someone changed it meanwhile, the server refuses
// (`script_changed`) and the dialog shows what changed before offering the new version.
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';
import { ApiError, api, call, type Schemas } from '../../api/client';
import { useApi } from '../../api/useApi';
import { Dialog } from '../../components/Dialog';
import { StepUpCancelled, useStepUp } from '../../components/StepUpDialog';
import { Button, Checkbox, ErrorAlert, Notice, SelectField, TextArea, TextField, formatTime, useAction } from '../../components/ui';
import { useDebounced } from '../../components/useDebounced';
import { diffLines } from '../scripts/scriptOwners';
import '../../styles/scripts.css';

type Script = Schemas['Script'];
/** Program names, the same in every language. */
const SHELLS = ['sh', 'bash'] as const;
type Parameter = Schemas['ScriptParameter'];
type Value = string | boolean;

/** What a `script_changed` refusal carries. */
interface ScriptChange {
  version: number;
  yourVersion: number;
  changedBy: string | null;
  changedAt: string | null;
  shellChanged: boolean;
  shellBefore: string | null;
  shell: string | null;
  parametersChanged: boolean;
  parametersDiff: string | null;
  diff: string | null;
}

function scriptChange(e: unknown): ScriptChange | null {
  if (!(e instanceof ApiError) || e.status !== 409 || e.code !== 'script_changed') return null;
  const d = e.details;
  const num = (v: unknown) => (typeof v === 'number' ? v : Number(v));
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    version: num(d.version),
    yourVersion: num(d.your_version),
    changedBy: str(d.changed_by),
    changedAt: str(d.changed_at),
    shellChanged: d.shell_changed === true,
    shellBefore: str(d.shell_before),
    shell: str(d.shell),
    parametersChanged: d.parameters_changed === true,
    parametersDiff: str(d.parameters_diff),
    diff: str(d.diff),
  };
}

/** A unified diff, `+` lines and `-` lines coloured apart. */
export function DiffView({ diff, label, testId = 'script-diff' }: { diff: string; label: string; testId?: string }) {
  return (
    <pre className="diff" tabIndex={0} aria-label={label} data-testid={testId}>
      {diffLines(diff).map((l, i) => (
        <span key={i} className={`diff-line diff-${l.kind}`}>
          {l.text}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

function initialValues(parameters: Parameter[]): Record<string, Value> {
  const v: Record<string, Value> = {};
  for (const p of parameters) {
    if (p.type === 'boolean') v[p.name] = p.default === 'true';
    else if (p.type === 'choice') v[p.name] = p.default ?? (p.required ? (p.choices?.[0] ?? '') : '');
    else if (p.type === 'secret') v[p.name] = '';
    else v[p.name] = p.default ?? '';
  }
  return v;
}

/** Values carried over to a new version of the script: those whose parameter kept its type. */
function carryValues(old: Parameter[], next: Parameter[], values: Record<string, Value>): Record<string, Value> {
  const fresh = initialValues(next);
  for (const p of next) {
    const before = old.find((o) => o.name === p.name);
    if (before && before.type === p.type && p.name in values) {
      if (p.type !== 'choice' || (p.choices ?? []).includes(String(values[p.name])) || values[p.name] === '') fresh[p.name] = values[p.name]!;
    }
  }
  return fresh;
}

/** One field of the generated parameter form. */
function ParameterField({ p, value, onChange, error }: { p: Parameter; value: Value; onChange: (v: Value) => void; error?: string }) {
  const { t } = useTranslation();
  const label = `${p.label || p.name}${p.required ? ' *' : ''}`;
  const hint = p.description || undefined;
  if (p.type === 'boolean') {
    return <Checkbox label={p.label || p.name} hint={hint} checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  }
  if (p.type === 'choice') {
    return (
      <SelectField label={label} hint={hint} error={error} value={String(value)} onChange={(e) => onChange(e.target.value)} required={p.required}>
        {!p.required && <option value="">{t('runs.noValue')}</option>}
        {(p.choices ?? []).map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </SelectField>
    );
  }
  if (p.type === 'secret') {
    return (
      <TextField
        label={label}
        hint={hint ? `${hint} · ${t('runs.secretHint')}` : t('runs.secretHint')}
        error={error}
        type="password"
        autoComplete="off"
        spellCheck={false}
        value={String(value)}
        required={p.required}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return (
    <TextField
      label={label}
      hint={hint}
      error={error}
      type={p.type === 'integer' ? 'number' : 'text'}
      step={p.type === 'integer' ? 1 : undefined}
      value={String(value)}
      required={p.required}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

export function RunDialog({
  open,
  onClose,
  script: givenScript,
  servers: preselected = [],
  adHoc = false,
}: {
  open: boolean;
  onClose: () => void;
  /** A script to run; without it (and without `adHoc`) the dialog offers the library. */
  script?: Script;
  servers?: { id: string; name: string }[];
  /** Start with an ad-hoc command instead of a script. */
  adHoc?: boolean;
}) {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const { busy, error, run } = useAction();
  const { withStepUp, dialog: stepUpDialog } = useStepUp();
  const [mode, setMode] = useState<'script' | 'command'>(adHoc ? 'command' : 'script');
  // The library, when no script was given.
  const library = useApi(open && !givenScript && (() => call(() => api.GET('/api/v1/scripts'))), [open, givenScript]);
  const scripts = library.data ?? (givenScript ? [givenScript] : []);
  const [scriptId, setScriptId] = useState(givenScript?.id ?? '');
  const script = scripts.find((s) => s.id === scriptId);
  const [values, setValues] = useState<Record<string, Value>>(() => initialValues(givenScript?.parameters ?? []));
  const [command, setCommand] = useState('');
  const [shell, setShell] = useState<'sh' | 'bash'>('sh');
  const [selected, setSelected] = useState<Map<string, string>>(() => new Map(preselected.map((s) => [s.id, s.name])));
  const [chosenTags, setChosenTags] = useState<Set<string>>(new Set());
  const [search, setSearch] = useState('');
  // Server search, after a short pause.
  const query = useDebounced(search.trim(), 200);
  const serverSearch = useApi(
    open && (() => call(() => api.GET('/api/v1/servers', { params: { query: { q: query || undefined, limit: 50 } } })).then((p) => p.items)),
    [open, query],
  );
  const found = serverSearch.data ?? [];
  const tags = useApi(open && (() => call(() => api.GET('/api/v1/tags'))), [open]);
  const allTags = tags.data ?? [];
  const loadError = library.error ?? tags.error ?? serverSearch.error;
  const [timeout, setTimeoutSecs] = useState('300');
  const [concurrency, setConcurrency] = useState('10');
  const [stopOnFailure, setStopOnFailure] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  /** The script changed since this dialog showed it: what changed, until the user decides. */
  const [changed, setChanged] = useState<ScriptChange | null>(null);
  const reload = useAction();
  /** The dialog moved to a newer version whose parameters differ: the form wants a look. */
  const [reloadedParams, setReloadedParams] = useState(false);
  const changedRef = useRef<HTMLElement>(null);
  useEffect(() => {
    if (changed) changedRef.current?.scrollIntoView?.({ block: 'nearest' });
  }, [changed]);

  const pickScript = (id: string) => {
    setScriptId(id);
    setValues(initialValues(scripts.find((s) => s.id === id)?.parameters ?? []));
    setErrors({});
    setChanged(null);
    setReloadedParams(false);
  };

  const toggleServer = (s: { id: string; name: string }, on: boolean) => {
    const next = new Map(selected);
    if (on) next.set(s.id, s.name);
    else next.delete(s.id);
    setSelected(next);
  };

  const toggleTag = (tag: string, on: boolean) => {
    const next = new Set(chosenTags);
    if (on) next.add(tag);
    else next.delete(tag);
    setChosenTags(next);
  };

  const validate = (script: Script | undefined, values: Record<string, Value>) => {
    const e: Record<string, string> = {};
    if (mode === 'script' && !script) e.script = t('validation.required');
    if (mode === 'command' && !command.trim()) e.command = t('validation.required');
    if (mode === 'script' && script) {
      for (const p of script.parameters) {
        const v = values[p.name];
        if (p.type === 'boolean') continue;
        if (p.required && (v === undefined || String(v).trim() === '')) e[`p.${p.name}`] = t('validation.required');
        else if (p.type === 'integer' && String(v ?? '').trim() !== '' && !/^-?\d+$/.test(String(v).trim())) {
          e[`p.${p.name}`] = t('runs.wholeNumber');
        }
      }
    }
    if (selected.size === 0 && chosenTags.size === 0) e.targets = t('runs.pickTargets');
    const to = Number(timeout);
    if (!Number.isInteger(to) || to < 1 || to > 86400) e.timeout = t('runs.timeoutRange');
    const c = Number(concurrency);
    if (!Number.isInteger(c) || c < 1 || c > 200) e.concurrency = t('runs.concurrencyRange');
    setErrors(e);
    return Object.keys(e).length === 0;
  };

  const submit = (script: Script | undefined, values: Record<string, Value>) => {
    if (!validate(script, values)) return;
    const parameters: Record<string, unknown> = {};
    if (mode === 'script' && script) {
      for (const p of script.parameters) {
        const v = values[p.name];
        if (p.type === 'boolean') parameters[p.name] = v === true ? 'true' : 'false';
        else if (String(v ?? '') !== '') parameters[p.name] = String(v);
      }
    }
    const body: Schemas['ExecutionRequest'] = {
      // The schema types a free-form object as Record<string, never>.
      ...(mode === 'script' && script
        ? { script_id: script.id, script_version: script.version, parameters: parameters as Record<string, never> }
        : { command, shell }),
      server_ids: [...selected.keys()],
      tags: [...chosenTags],
      timeout_secs: Number(timeout),
      concurrency: Number(concurrency),
      stop_on_failure: stopOnFailure,
    };
    void run(async () => {
      setChanged(null);
      try {
        const detail = await withStepUp(() => call(() => api.POST('/api/v1/executions', { body })));
        onClose();
        navigate(`/runs/${detail.id}`);
      } catch (e) {
        if (e instanceof StepUpCancelled) return;
        const change = scriptChange(e);
        if (change) {
          setChanged(change);
          return;
        }
        throw e;
      }
    });
  };

  /** After the user saw what changed: load the new version, then run it (if its form is complete). */
  const runNewVersion = () =>
    void reload.run(async () => {
      if (!script) return;
      const fresh = await call(() => api.GET('/api/v1/scripts/{id}', { params: { path: { id: script.id } } }));
      const nextValues = carryValues(script.parameters, fresh.parameters, values);
      library.setData((list) => (list ?? scripts).map((s) => (s.id === fresh.id ? fresh : s)));
      setValues(nextValues);
      setChanged(null);
      // If the parameters changed, the user looks at the form before starting.
      const sameParameters = JSON.stringify(fresh.parameters) === JSON.stringify(script.parameters);
      setReloadedParams(!sameParameters);
      if (sameParameters) submit(fresh, nextValues);
    });

  const shown = [...found];
  for (const [id, name] of selected) if (!shown.some((s) => s.id === id)) shown.unshift({ id, name } as Schemas['Server']);

  return (
    <>
      <Dialog
        open={open}
        wide
        title={mode === 'command' ? t('runs.adHocTitle') : script ? t('runs.runTitle', { name: script.name }) : t('runs.runScript')}
        onClose={onClose}
        onSubmit={changed ? runNewVersion : () => submit(script, values)}
        footer={
          changed ? (
            <>
              <Button onClick={onClose}>{t('common.cancel')}</Button>
              <Button type="submit" variant="primary" busy={busy || reload.busy}>
                {t('runs.changed.runVersion', { version: changed.version })}
              </Button>
            </>
          ) : (
            <>
              <Button onClick={onClose}>{t('common.cancel')}</Button>
              <Button type="submit" variant="primary" busy={busy}>
                {t('runs.start')}
              </Button>
            </>
          )
        }
      >
        {mode === 'script' && script && reloadedParams && !changed && <Notice kind="warning">{t('runs.changed.parameters')}</Notice>}
        {mode === 'script' && script && script.reviewed === false && !changed && (
          <Notice>{t('runs.unreviewed')}</Notice>
        )}
        {!givenScript && (
          <fieldset>
            <legend>{t('runs.what')}</legend>
            <label className="radio">
              <input type="radio" name="run-mode" checked={mode === 'script'} onChange={() => setMode('script')} />
              {t('runs.savedScript')}
            </label>
            <label className="radio">
              <input type="radio" name="run-mode" checked={mode === 'command'} onChange={() => setMode('command')} />
              {t('runs.adHoc')}
            </label>
          </fieldset>
        )}
        {mode === 'script' && !givenScript && (
          <SelectField label={t('runs.script')} value={scriptId} onChange={(e) => pickScript(e.target.value)} error={errors.script}>
            <option value="">{t('runs.chooseScript')}</option>
            {scripts.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </SelectField>
        )}
        {mode === 'script' && script && (
          <p className="muted small" data-testid="script-last-change">
            {t('runs.lastChange', {
              version: script.version,
              user: script.updated_by ?? '—',
              time: formatTime(script.updated_at, i18n.language),
            })}
          </p>
        )}
        {mode === 'script' && script && script.parameters.length > 0 && (
          <fieldset>
            <legend>{t('scripts.parameters')}</legend>
            {script.parameters.map((p) => (
              <ParameterField
                key={`${script.id}-${p.name}`}
                p={p}
                value={values[p.name] ?? ''}
                error={errors[`p.${p.name}`]}
                onChange={(v) => setValues((old) => ({ ...old, [p.name]: v }))}
              />
            ))}
          </fieldset>
        )}
        {mode === 'command' && (
          <>
            <TextArea
              label={t('runs.command')}
              className="mono"
              rows={4}
              spellCheck={false}
              value={command}
              error={errors.command}
              hint={t('runs.commandHint')}
              onChange={(e) => setCommand(e.target.value)}
            />
            <SelectField label={t('scripts.shell')} value={shell} onChange={(e) => setShell(e.target.value as 'sh' | 'bash')}>
              {SHELLS.map((sh) => (
                <option key={sh} value={sh}>
                  {sh}
                </option>
              ))}
            </SelectField>
          </>
        )}
        <fieldset className="targets" aria-describedby={errors.targets ? 'run-targets-error' : undefined}>
          <legend>{t('runs.targets')}</legend>
          {mode === 'script' && script?.owner_tags && (
            <p className="field-hint">{t('runs.ownerLimit', { tags: script.owner_tags.join(', ') })}</p>
          )}
          <TextField label={t('runs.searchServers')} type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
          <ul className="pick-list" aria-label={t('runs.servers')}>
            {shown.map((s) => (
              <li key={s.id}>
                <Checkbox label={s.host ? `${s.name} (${s.host})` : s.name} checked={selected.has(s.id)} onChange={(e) => toggleServer(s, e.target.checked)} />
              </li>
            ))}
            {shown.length === 0 && <li className="muted">{t('servers.noMatch')}</li>}
          </ul>
          {allTags.length > 0 && (
            <div className="pick-tags" role="group" aria-label={t('runs.byTag')}>
              <span className="field-label">{t('runs.byTag')}</span>
              {allTags.map((tg) => (
                <Checkbox key={tg.tag} label={`${tg.tag} (${tg.count})`} checked={chosenTags.has(tg.tag)} onChange={(e) => toggleTag(tg.tag, e.target.checked)} />
              ))}
            </div>
          )}
          <p className="muted small" aria-live="polite">
            {t('runs.selectedCount', { servers: selected.size, tags: chosenTags.size })}
          </p>
          {errors.targets && (
            <div className="field-error" id="run-targets-error" role="alert">
              {errors.targets}
            </div>
          )}
        </fieldset>
        <div className="form-grid">
          <TextField label={t('runs.timeout')} type="number" min={1} max={86400} value={timeout} error={errors.timeout} onChange={(e) => setTimeoutSecs(e.target.value)} />
          <TextField label={t('runs.concurrency')} type="number" min={1} max={200} value={concurrency} error={errors.concurrency} onChange={(e) => setConcurrency(e.target.value)} />
        </div>
        <Checkbox label={t('runs.stopOnFailure')} hint={t('runs.stopOnFailureHint')} checked={stopOnFailure} onChange={(e) => setStopOnFailure(e.target.checked)} />
        {changed && script && (
          <section ref={changedRef} className="alert alert-warning script-changed" role="alert" aria-labelledby="script-changed-title">
            <h3 id="script-changed-title">{t('runs.changed.title', { from: changed.yourVersion, version: changed.version })}</h3>
            <p>
              {t('runs.changed.by', {
                user: changed.changedBy ?? '—',
                time: formatTime(changed.changedAt, i18n.language),
              })}
            </p>
            {changed.shellChanged && (
              <p>{changed.shellBefore && changed.shell ? t('runs.changed.shellFromTo', { from: changed.shellBefore, to: changed.shell }) : t('runs.changed.shell')}</p>
            )}
            {changed.parametersChanged && <p>{t('runs.changed.parameters')}</p>}
            {changed.parametersDiff && (
              <DiffView testId="parameters-diff" diff={changed.parametersDiff} label={t('runs.changed.parametersDiff', { from: changed.yourVersion, version: changed.version })} />
            )}
            {changed.diff ? (
              <DiffView diff={changed.diff} label={t('runs.changed.diff', { from: changed.yourVersion, version: changed.version })} />
            ) : (
              !changed.shellChanged && !changed.parametersChanged && <p>{t('runs.changed.sameBody')}</p>
            )}
            <p>{t('runs.changed.review')}</p>
            <ErrorAlert error={reload.error} />
          </section>
        )}
        <ErrorAlert error={error ?? loadError} />
      </Dialog>
      {stepUpDialog}
    </>
  );
}
