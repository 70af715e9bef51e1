// One script: the editor (highlighted body, typed parameters, who owns it), its version
// history (view an old version, restore it as a new one), delete, and run. Saves are
// optimistic: the version the edit started from goes along, and a save on top of someone
// else's is refused. A save that changes what runs (or where) asks the user to confirm it is
// them (step-up) and is then retried. A script owned by tags the user's `scripts.write` does
// not cover is shown read-only.
import { Suspense, lazy, useId, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router';
import { ApiError, api, call, type Schemas } from '../api/client';
import { useApi } from '../api/useApi';
import { useAuth } from '../auth/AuthContext';
import { ConfirmDialog, Dialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { StepUpCancelled, useStepUp } from '../components/StepUpDialog';
import { Button, Checkbox, ErrorAlert, Loading, Notice, SelectField, TextArea, TextField, formatTime, useAction } from '../components/ui';
import { RunDialog } from '../features/runs/RunDialog';
import { coversOwner, scopeOf, tagsOutside, type PermissionScope } from '../features/scripts/scriptOwners';
import { normalizeTags } from '../features/servers/tags';
import '../styles/scripts.css';

// CodeMirror is large: it loads with this page, not with the app.
const LazyEditor = lazy(() => import('../components/CodeEditor').then((m) => ({ default: m.CodeEditor })));

function CodeEditor(props: Parameters<typeof LazyEditor>[0]) {
  return (
    <Suspense fallback={<Loading />}>
      <LazyEditor {...props} />
    </Suspense>
  );
}

type Script = Schemas['Script'];
/** Program names, the same in every language. */
const SHELLS = ['sh', 'bash'] as const;
type Version = Schemas['ScriptVersion'];
type ParameterType = Schemas['ParameterType'];

interface DraftParameter {
  key: number;
  name: string;
  label: string;
  type: ParameterType;
  required: boolean;
  default: string;
  choices: string;
  description: string;
}

interface Draft {
  name: string;
  description: string;
  shell: 'sh' | 'bash';
  body: string;
  parameters: DraftParameter[];
  /** `null`: the whole organization; otherwise the owner tags. */
  owner: string[] | null;
}

/** The parameter types, in the order the type select offers them. */
const PARAMETER_TYPES = ['string', 'integer', 'boolean', 'choice', 'secret'] as const;
/** What tags may contain (as the server checks them). */
const TAG_PATTERN = /^[a-z0-9][a-z0-9._:/-]{0,63}$/;

let nextKey = 1;

function toDraft(s: {
  name: string;
  description: string;
  shell: 'sh' | 'bash';
  body: string;
  parameters: Schemas['ScriptParameter'][];
  owner_tags?: string[] | null;
}): Draft {
  return {
    owner: s.owner_tags ?? null,
    name: s.name,
    description: s.description,
    shell: s.shell,
    body: s.body,
    parameters: s.parameters.map((p) => ({
      key: nextKey++,
      name: p.name,
      label: p.label ?? '',
      type: p.type,
      required: !!p.required,
      default: p.default ?? '',
      choices: (p.choices ?? []).join('\n'),
      description: p.description ?? '',
    })),
  };
}

function toInput(d: Draft, baseVersion?: number): Schemas['ScriptInput'] {
  return {
    name: d.name.trim(),
    description: d.description,
    shell: d.shell,
    body: d.body,
    parameters: d.parameters.map((p) => ({
      name: p.name.trim(),
      label: p.label.trim(),
      type: p.type,
      required: p.required,
      default: p.default === '' || p.type === 'secret' ? null : p.default,
      choices: p.type === 'choice' ? p.choices.split('\n').map((c) => c.trim()).filter(Boolean) : [],
      description: p.description,
    })),
    owner_tags: d.owner ?? [],
    base_version: baseVersion ?? null,
  };
}

/** A new script: owned by the whole organization, or by the tags a scoped writer covers. */
function emptyDraft(scope: PermissionScope): Draft {
  return { name: '', description: '', shell: 'bash', body: '#!/bin/bash\nset -eu\n', parameters: [], owner: Array.isArray(scope) ? [...scope] : null };
}

/** "Who may change and run it": the whole organization, or servers with some tags. */
function OwnerEditor({
  owner,
  scope,
  readOnly,
  known,
  error,
  onChange,
}: {
  owner: string[] | null;
  scope: PermissionScope;
  readOnly: boolean;
  /** Tags in use on servers (suggested while typing). */
  known: string[];
  error?: string;
  onChange: (owner: string[] | null) => void;
}) {
  const { t } = useTranslation();
  const [entry, setEntry] = useState('');
  const [entryError, setEntryError] = useState<string | undefined>();
  const listId = useId();
  const name = useId();
  const scoped = Array.isArray(scope);
  const suggestions = known.filter((k) => (!scoped || scope.includes(k)) && !(owner ?? []).includes(k));

  const add = () => {
    const [tag] = normalizeTags([entry]);
    if (!tag) return;
    if (!TAG_PATTERN.test(tag)) return setEntryError(t('scripts.owner.badTag'));
    if (tagsOutside(scope, [tag]).length) return setEntryError(t('scripts.owner.outsideScope', { tags: (scope ?? []).join(', ') }));
    setEntryError(undefined);
    setEntry('');
    onChange(normalizeTags([...(owner ?? []), tag]));
  };

  return (
    <fieldset className="owner-editor" disabled={readOnly} aria-describedby={`${name}-hint`}>
      <legend>{t('scripts.owner.legend')}</legend>
      <label className="radio">
        <input type="radio" name={name} checked={owner === null} disabled={scoped} onChange={() => onChange(null)} />
        {t('scripts.owner.org')}
      </label>
      <label className="radio">
        <input type="radio" name={name} checked={owner !== null} onChange={() => onChange(scoped ? [...scope] : [])} />
        {t('scripts.owner.tags')}
      </label>
      <p className="field-hint" id={`${name}-hint`}>
        {scoped && !readOnly ? t('scripts.owner.scopedHint', { tags: scope.join(', ') }) : t('scripts.owner.hint')}
      </p>
      {owner !== null && (
        <>
          <ul className="owner-tags" aria-label={t('scripts.owner.chosen')}>
            {owner.map((tag) => (
              <li key={tag}>
                <span className="mono">{tag}</span>
                {!readOnly && (
                  <Button variant="ghost" aria-label={t('scripts.owner.remove', { tag })} onClick={() => onChange(owner.filter((x) => x !== tag))}>
                    ×
                  </Button>
                )}
              </li>
            ))}
            {owner.length === 0 && <li className="muted">{t('scripts.owner.none')}</li>}
          </ul>
          {!readOnly && (
            <div className="owner-add">
              <TextField
                label={t('scripts.owner.add')}
                list={listId}
                value={entry}
                error={entryError}
                spellCheck={false}
                autoComplete="off"
                className="mono"
                onChange={(e) => {
                  setEntry(e.target.value);
                  setEntryError(undefined);
                }}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') {
                    e.preventDefault();
                    add();
                  }
                }}
              />
              <datalist id={listId}>
                {suggestions.map((k) => (
                  <option key={k} value={k} />
                ))}
              </datalist>
              <Button onClick={add}>{t('scripts.owner.addButton')}</Button>
            </div>
          )}
        </>
      )}
      {error && (
        <div className="field-error" role="alert">
          {error}
        </div>
      )}
    </fieldset>
  );
}

function ParameterEditor({
  p,
  index,
  readOnly,
  onChange,
  onRemove,
}: {
  p: DraftParameter;
  index: number;
  readOnly: boolean;
  onChange: (p: DraftParameter) => void;
  onRemove: () => void;
}) {
  const { t } = useTranslation();
  const set = <K extends keyof DraftParameter>(k: K, v: DraftParameter[K]) => onChange({ ...p, [k]: v });
  const choices = p.choices.split('\n').map((c) => c.trim()).filter(Boolean);
  return (
    <fieldset className="parameter" disabled={readOnly}>
      <legend>{t('scripts.parameterN', { n: index + 1, name: p.name || '…' })}</legend>
      <div className="form-grid">
        <TextField label={t('scripts.paramName')} hint={t('scripts.paramNameHint')} value={p.name} onChange={(e) => set('name', e.target.value)} spellCheck={false} className="mono" />
        <TextField label={t('scripts.paramLabel')} value={p.label} onChange={(e) => set('label', e.target.value)} />
        <SelectField
          label={t('scripts.paramType')}
          value={p.type}
          onChange={(e) => {
            const type = e.target.value as ParameterType;
            onChange({ ...p, type, default: type === 'secret' ? '' : p.default });
          }}
        >
          {PARAMETER_TYPES.map((k) => (
            <option key={k} value={k}>
              {t(`scripts.types.${k}`)}
            </option>
          ))}
        </SelectField>
        {p.type === 'boolean' ? (
          <SelectField label={t('scripts.paramDefault')} value={p.default} onChange={(e) => set('default', e.target.value)}>
            <option value="">{t('scripts.noDefault')}</option>
            <option value="true">{t('scripts.yes')}</option>
            <option value="false">{t('scripts.no')}</option>
          </SelectField>
        ) : p.type === 'choice' ? (
          <SelectField label={t('scripts.paramDefault')} value={p.default} onChange={(e) => set('default', e.target.value)}>
            <option value="">{t('scripts.noDefault')}</option>
            {choices.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </SelectField>
        ) : p.type === 'secret' ? (
          <p className="field-hint secret-note">{t('scripts.secretHint')}</p>
        ) : (
          <TextField
            label={t('scripts.paramDefault')}
            type={p.type === 'integer' ? 'number' : 'text'}
            value={p.default}
            onChange={(e) => set('default', e.target.value)}
          />
        )}
      </div>
      {p.type === 'choice' && (
        <TextArea label={t('scripts.paramChoices')} hint={t('scripts.paramChoicesHint')} rows={3} value={p.choices} onChange={(e) => set('choices', e.target.value)} />
      )}
      <TextField label={t('scripts.paramDescription')} value={p.description} onChange={(e) => set('description', e.target.value)} />
      <div className="actions">
        <Checkbox label={t('scripts.paramRequired')} checked={p.required} onChange={(e) => set('required', e.target.checked)} />
        {!readOnly && (
          <Button variant="ghost" className="danger-text" onClick={onRemove}>
            {t('scripts.removeParameter', { name: p.name || index + 1 })}
          </Button>
        )}
      </div>
    </fieldset>
  );
}

export function ScriptEditorPage() {
  const { id = 'new' } = useParams();
  const isNew = id === 'new';
  const { t, i18n } = useTranslation();
  const { can, me } = useAuth();
  const navigate = useNavigate();
  const canWrite = can('scripts.write');
  const writeScope = scopeOf(me, 'scripts.write');
  const scopeKey = JSON.stringify(writeScope ?? null);
  const [draft, setDraft] = useState<Draft>(() => emptyDraft(writeScope));
  const [notice, setNotice] = useState<string | null>(null);
  const [viewing, setViewing] = useState<Version | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [running, setRunning] = useState(false);
  /** The server said this script is not ours to change (403 `script_not_yours`). */
  const [refused, setRefused] = useState(false);
  const [ownerError, setOwnerError] = useState<string | undefined>();
  const save = useAction();
  const { withStepUp, dialog: stepUpDialog } = useStepUp();

  const { data: knownTags = [] } = useApi(
    canWrite &&
      (() =>
        call(() => api.GET('/api/v1/tags')).then(
          (list) => list.map((x) => x.tag),
          (): string[] => [],
        )),
    [canWrite],
  );

  // The script and its versions; each answer (also "reload theirs") starts the draft afresh.
  const {
    data: loaded,
    setData: setLoaded,
    error: loadError,
    reload: load,
  } = useApi<{ script: Script | null; versions: Version[] }>(
    async () => {
      if (isNew) return { script: null, versions: [] };
      const [script, versions] = await Promise.all([
        call(() => api.GET('/api/v1/scripts/{id}', { params: { path: { id } } })),
        call(() => api.GET('/api/v1/scripts/{id}/versions', { params: { path: { id } } })),
      ]);
      return { script, versions };
    },
    [id, isNew, scopeKey],
    {
      onData: ({ script }) => {
        setRefused(false);
        setOwnerError(undefined);
        setDraft(script ? toDraft(script) : emptyDraft(JSON.parse(scopeKey) as PermissionScope));
      },
    },
  );
  const script = loaded?.script ?? null;
  const versions = loaded?.versions ?? [];
  const setScript = (s: Script) => setLoaded((d) => ({ script: s, versions: d?.versions ?? [] }));

  const loadVersions = async (sid: string) => {
    const fresh = await call(() => api.GET('/api/v1/scripts/{id}/versions', { params: { path: { id: sid } } }));
    setLoaded((d) => ({ script: d?.script ?? null, versions: fresh }));
  };

  /** Runs a change through the step-up (asked for and retried when the server wants one). */
  const guarded = async (action: () => Promise<void>) => {
    try {
      await action();
    } catch (e) {
      if (e instanceof StepUpCancelled) return;
      if (e instanceof ApiError && e.code === 'script_not_yours') setRefused(true);
      throw e;
    }
  };

  /** Checks the owner the draft asks for; says what is wrong, if anything. */
  const checkOwner = (owner: string[] | null) => {
    let problem: string | undefined;
    if (owner === null && Array.isArray(writeScope)) problem = t('scripts.owner.orgNotAllowed');
    else if (owner !== null && owner.length === 0) problem = t('scripts.owner.pickOne');
    else if (owner !== null && tagsOutside(writeScope, owner).length) {
      problem = t('scripts.owner.outsideScope', { tags: (writeScope ?? []).join(', ') });
    }
    setOwnerError(problem);
    return !problem;
  };

  const submit = () =>
    save.run(() =>
      guarded(async () => {
        setNotice(null);
        if (!checkOwner(draft.owner)) return;
        if (!script) {
          const created = await withStepUp(() => call(() => api.POST('/api/v1/scripts', { body: toInput(draft) })));
          navigate(`/scripts/${created.id}`, { replace: true });
          setNotice(t('scripts.created'));
          return;
        }
        const saved = await withStepUp(() =>
          call(() => api.PUT('/api/v1/scripts/{id}', { params: { path: { id: script.id } }, body: toInput(draft, script.version) })),
        );
        setNotice(saved.version === script.version && JSON.stringify(saved.owner_tags ?? null) === JSON.stringify(script.owner_tags ?? null)
          ? t('scripts.unchanged')
          : saved.version === script.version
            ? t('scripts.owner.saved')
            : t('scripts.savedVersion', { version: saved.version }));
        setScript(saved);
        setDraft(toDraft(saved));
        await loadVersions(saved.id);
      }),
    );

  const restore = (v: Version) =>
    save.run(() =>
      guarded(async () => {
        if (!script) return;
        setNotice(null);
        const saved = await withStepUp(() =>
          call(() =>
            api.PUT('/api/v1/scripts/{id}', {
              params: { path: { id: script.id } },
              body: { name: v.name, description: v.description, shell: v.shell, body: v.body, parameters: v.parameters, base_version: script.version },
            }),
          ),
        );
        setViewing(null);
        setScript(saved);
        setDraft(toDraft(saved));
        setNotice(t('scripts.restored', { from: v.version, version: saved.version }));
        await loadVersions(saved.id);
      }),
    );

  if (loadError) {
    return (
      <>
        <Breadcrumbs items={[{ label: t('nav.scripts'), to: '/scripts' }, { label: t('common.notFound') }]} />
        <ErrorAlert error={loadError} />
      </>
    );
  }
  if (!isNew && !script) return <Loading />;
  // Changing a script needs scripts.write on every server it may run on.
  const notYours = canWrite && !!script && (refused || !coversOwner(writeScope, script.owner_tags));
  const readOnly = !canWrite || notYours;
  const conflict = save.error instanceof ApiError && save.error.code === 'version_conflict';
  const title = script ? script.name : t('scripts.new');
  const setField = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));

  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.scripts'), to: '/scripts' }, { label: title }]} />
      <PageHeader
        title={title}
        actions={
          script && (
            <>
              {can('scripts.run') && (
                <Button variant="primary" onClick={() => setRunning(true)}>
                  {t('scripts.run')}
                </Button>
              )}
              {!readOnly && (
                <Button variant="danger" onClick={() => setConfirmDelete(true)}>
                  {t('common.delete')}
                </Button>
              )}
            </>
          )
        }
      />
      <div className="script-layout">
        <form
          className="card script-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          {script && (
            <p className="muted small">
              {t('scripts.versionInfo', { version: script.version, user: script.updated_by ?? '—', time: formatTime(script.updated_at, i18n.language) })}
            </p>
          )}
          {notYours && script && (
            <Notice kind="warning">
              <strong>{t('scripts.owner.readOnlyTitle')}</strong>{' '}
              {script.owner_tags == null ? t('scripts.owner.notYoursOrg') : t('scripts.owner.notYoursTags', { tags: script.owner_tags.join(', ') })}
            </Notice>
          )}
          <div className="form-grid">
            <TextField label={t('fields.name')} value={draft.name} onChange={(e) => setField('name', e.target.value)} readOnly={readOnly} required />
            <SelectField label={t('scripts.shell')} value={draft.shell} onChange={(e) => setField('shell', e.target.value as 'sh' | 'bash')} disabled={readOnly}>
              {SHELLS.map((sh) => (
                <option key={sh} value={sh}>
                  {sh}
                </option>
              ))}
            </SelectField>
          </div>
          <TextArea label={t('fields.description')} rows={2} value={draft.description} onChange={(e) => setField('description', e.target.value)} readOnly={readOnly} />
          <CodeEditor label={t('scripts.body')} value={draft.body} onChange={(v) => setField('body', v)} readOnly={readOnly} testId="script-body" />
          <p className="field-hint">{t('scripts.bodyHint')}</p>
          <h2>{t('scripts.parameters')}</h2>
          {draft.parameters.length === 0 && <p className="muted">{t('scripts.noParameters')}</p>}
          {draft.parameters.map((p, i) => (
            <ParameterEditor
              key={p.key}
              p={p}
              index={i}
              readOnly={readOnly}
              onChange={(np) => setField('parameters', draft.parameters.map((x) => (x.key === p.key ? np : x)))}
              onRemove={() => setField('parameters', draft.parameters.filter((x) => x.key !== p.key))}
            />
          ))}
          <OwnerEditor
            owner={draft.owner}
            scope={writeScope}
            readOnly={readOnly}
            known={knownTags}
            error={ownerError}
            onChange={(owner) => {
              setOwnerError(undefined);
              setField('owner', owner);
            }}
          />
          {!readOnly && (
            <>
              <div className="actions">
                <Button
                  onClick={() =>
                    setField('parameters', [
                      ...draft.parameters,
                      { key: nextKey++, name: '', label: '', type: 'string', required: false, default: '', choices: '', description: '' },
                    ])
                  }
                >
                  {t('scripts.addParameter')}
                </Button>
              </div>
              {conflict ? (
                <div className="alert alert-warning" role="alert">
                  <p>{t('errors.version_conflict')}</p>
                  <Button
                    onClick={() => {
                      save.setError(null);
                      void load();
                    }}
                  >
                    {t('scripts.reloadTheirs')}
                  </Button>
                </div>
              ) : save.error instanceof ApiError && save.error.code === 'script_not_yours' ? null : (
                <ErrorAlert error={save.error} />
              )}
              {notice && <Notice kind="success">{notice}</Notice>}
              <div className="form-footer">
                <Button type="submit" variant="primary" busy={save.busy}>
                  {t('common.save')}
                </Button>
              </div>
            </>
          )}
        </form>
        {script && (
          <section className="card history" aria-labelledby="history-title">
            <h2 id="history-title">{t('scripts.history')}</h2>
            <ol className="versions">
              {versions.map((v) => (
                <li key={v.version}>
                  <div>
                    <strong>{t('scripts.versionN', { version: v.version })}</strong>
                    {v.version === script.version && <span className="badge">{t('scripts.current')}</span>}
                  </div>
                  <div className="muted small">
                    {v.changed_by ?? '—'} · {formatTime(v.changed_at, i18n.language)}
                  </div>
                  <div className="actions">
                    <Button variant="ghost" onClick={() => setViewing(v)} aria-label={t('scripts.viewVersion', { version: v.version })}>
                      {t('scripts.view')}
                    </Button>
                    {!readOnly && v.version !== script.version && (
                      <Button variant="ghost" busy={save.busy} onClick={() => void restore(v)} aria-label={t('scripts.restoreVersion', { version: v.version })}>
                        {t('scripts.restore')}
                      </Button>
                    )}
                  </div>
                </li>
              ))}
            </ol>
          </section>
        )}
      </div>
      {viewing && script && (
        <Dialog
          open
          wide
          title={t('scripts.versionTitle', { name: viewing.name, version: viewing.version })}
          onClose={() => setViewing(null)}
          footer={
            <>
              <Button onClick={() => setViewing(null)}>{t('common.close')}</Button>
              {!readOnly && viewing.version !== script.version && (
                <Button variant="primary" busy={save.busy} onClick={() => void restore(viewing)}>
                  {t('scripts.restore')}
                </Button>
              )}
            </>
          }
        >
          <p className="muted small">
            {viewing.changed_by ?? '—'} · {formatTime(viewing.changed_at, i18n.language)} · {viewing.shell}
          </p>
          {viewing.description && <p className="notes">{viewing.description}</p>}
          <CodeEditor label={t('scripts.body')} value={viewing.body} readOnly testId="version-body" />
          {viewing.parameters.length > 0 && (
            <p className="mono small">{t('scripts.parameterList', { names: viewing.parameters.map((p) => p.name).join(', ') })}</p>
          )}
          <ErrorAlert error={save.error} />
        </Dialog>
      )}
      {script && (
        <ConfirmDialog
          open={confirmDelete}
          title={t('scripts.deleteTitle')}
          message={t('scripts.deleteMessage', { name: script.name })}
          confirmLabel={t('common.delete')}
          onClose={() => setConfirmDelete(false)}
          onConfirm={async () => {
            await call(() => api.DELETE('/api/v1/scripts/{id}', { params: { path: { id: script.id } } }));
            navigate('/scripts');
          }}
        />
      )}
      {running && script && <RunDialog open script={script} onClose={() => setRunning(false)} />}
      {stepUpDialog}
    </>
  );
}
