// Roles: the built-in three, and custom ones built by ticking permissions and, for the
// per-server ones, choosing which server groups (tags) they cover.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call, type Role, type Schemas } from '../api/client';
import { useApi } from '../api/useApi';
import { ConfirmDialog, Dialog } from '../components/Dialog';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, DataTable, Checkbox, ErrorAlert, Loading, TextField } from '../components/ui';
import { parseTags } from '../features/servers/tags';

function RoleDialog({ role, permissions, onClose, onSaved }: { role?: Role; permissions: Schemas['PermissionInfo'][]; onClose: () => void; onSaved: () => void }) {
  const { t } = useTranslation();
  const [name, setName] = useState(role?.name ?? '');
  const [description, setDescription] = useState(role?.description ?? '');
  const [selected, setSelected] = useState<string[]>(role?.permissions ?? []);
  const [scoped, setScoped] = useState(!!role?.server_tags);
  const [tags, setTags] = useState((role?.server_tags ?? []).join(', '));
  const [error, setError] = useState<unknown>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const hasGlobal = selected.some((p) => !permissions.find((x) => x.name === p)?.server_scoped);
  return (
    <Dialog
      open
      wide
      title={role ? t('roles.edit', { name: role.name }) : t('roles.add')}
      onClose={onClose}
      onSubmit={async () => {
        const e: Record<string, string> = {};
        if (!name.trim()) e.name = t('validation.required');
        if (selected.length === 0) e.permissions = t('roles.pickOne');
        if (scoped && parseTags(tags).length === 0) e.tags = t('roles.pickTag');
        if (scoped && hasGlobal) e.permissions = t('roles.globalNotScoped');
        setErrors(e);
        if (Object.keys(e).length) return;
        setBusy(true);
        setError(null);
        const body = { name, description, permissions: selected, server_tags: scoped ? parseTags(tags) : null };
        try {
          if (role) await call(() => api.PUT('/api/v1/roles/{id}', { params: { path: { id: role.id } }, body }));
          else await call(() => api.POST('/api/v1/roles', { body }));
          onSaved();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
      footer={
        <>
          <Button onClick={onClose}>{t('common.cancel')}</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {t('common.save')}
          </Button>
        </>
      }
    >
      <TextField label={t('fields.name')} value={name} onChange={(e) => setName(e.target.value)} error={errors.name} />
      <TextField label={t('fields.description')} value={description} onChange={(e) => setDescription(e.target.value)} />
      <fieldset className="permission-grid" aria-describedby={errors.permissions ? 'perm-error' : undefined}>
        <legend>{t('roles.permissions')}</legend>
        {permissions.map((p) => (
          <Checkbox
            key={p.name}
            label={t(`permissions.${p.name}`, { defaultValue: p.name })}
            hint={p.name}
            checked={selected.includes(p.name)}
            onChange={(e) => setSelected(e.target.checked ? [...selected, p.name] : selected.filter((x) => x !== p.name))}
          />
        ))}
        {errors.permissions && (
          <div className="field-error" id="perm-error" role="alert">
            {errors.permissions}
          </div>
        )}
      </fieldset>
      <fieldset>
        <legend>{t('roles.scope')}</legend>
        <label className="radio">
          <input type="radio" name="scope" checked={!scoped} onChange={() => setScoped(false)} />
          {t('roles.allServers')}
        </label>
        <label className="radio">
          <input type="radio" name="scope" checked={scoped} onChange={() => setScoped(true)} />
          {t('roles.someServers')}
        </label>
        {scoped && (
          <TextField label={t('roles.serverTags')} hint={t('servers.tagsHint')} value={tags} onChange={(e) => setTags(e.target.value)} error={errors.tags} />
        )}
      </fieldset>
      <ErrorAlert error={error} />
    </Dialog>
  );
}

export function RolesPage() {
  const { t } = useTranslation();
  const [dialog, setDialog] = useState<{ kind: 'add' } | { kind: 'edit' | 'delete'; role: Role } | null>(null);
  const {
    data: loaded,
    error,
    reload: load,
  } = useApi(async () => {
    const [roles, permissions] = await Promise.all([call(() => api.GET('/api/v1/roles')), call(() => api.GET('/api/v1/permissions'))]);
    return { roles, permissions };
  }, []);
  const roles = loaded?.roles ?? null;
  const permissions = loaded?.permissions ?? [];
  const saved = () => {
    setDialog(null);
    void load();
  };
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.roles') }]} />
      <PageHeader
        title={t('nav.roles')}
        actions={
          <Button variant="primary" onClick={() => setDialog({ kind: 'add' })}>
            {t('roles.add')}
          </Button>
        }
      />
      <ErrorAlert error={error} />
      {!roles ? (
        <Loading />
      ) : (
        <DataTable caption={t('nav.roles')} headers={[t('fields.name'), t('roles.permissions'), t('roles.scope'), t('roles.users')]} actionsLabel={t('common.actions')}>
              {roles.map((r) => (
                <tr key={r.id}>
                  <td>
                    {r.name}
                    {r.builtin && <span className="badge">{t('roles.builtin')}</span>}
                    {r.description && <div className="muted small">{r.description}</div>}
                  </td>
                  <td className="small">{r.permissions.join(', ')}</td>
                  <td>{r.server_tags ? r.server_tags.map((tg) => <span key={tg} className="tag">{tg}</span>) : t('roles.allServers')}</td>
                  <td>{r.user_count}</td>
                  <td className="row-actions">
                    {!r.builtin && (
                      <>
                        <Button variant="ghost" onClick={() => setDialog({ kind: 'edit', role: r })}>
                          {t('common.edit')}
                        </Button>
                        <Button variant="ghost" className="danger-text" onClick={() => setDialog({ kind: 'delete', role: r })}>
                          {t('common.delete')}
                        </Button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
        </DataTable>
      )}
      {dialog?.kind === 'add' && <RoleDialog permissions={permissions} onClose={() => setDialog(null)} onSaved={saved} />}
      {dialog?.kind === 'edit' && <RoleDialog role={dialog.role} permissions={permissions} onClose={() => setDialog(null)} onSaved={saved} />}
      <ConfirmDialog
        open={dialog?.kind === 'delete'}
        title={t('roles.deleteTitle')}
        message={dialog?.kind === 'delete' ? t('roles.deleteMessage', { name: dialog.role.name, count: dialog.role.user_count }) : ''}
        confirmLabel={t('common.delete')}
        onClose={() => setDialog(null)}
        onConfirm={async () => {
          if (dialog?.kind === 'delete') {
            await call(() => api.DELETE('/api/v1/roles/{id}', { params: { path: { id: dialog.role.id } } }));
            await load();
          }
        }}
      />
    </>
  );
}
