// Organization settings.
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call } from '../api/client';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, ErrorAlert, Loading, Notice, useAction } from '../components/ui';

export function SettingsPage() {
  const { t } = useTranslation();
  const { busy, error, setError, run } = useAction();
  const [requireTotp, setRequireTotp] = useState<boolean | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    call(() => api.GET('/api/v1/settings'))
      .then((s) => setRequireTotp(s.require_totp))
      .catch(setError);
  }, [setError]);
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.settings') }]} />
      <PageHeader title={t('nav.settings')} />
      <ErrorAlert error={error} />
      {requireTotp === null ? (
        !error && <Loading />
      ) : (
        <form
          className="card"
          onSubmit={async (e) => {
            e.preventDefault();
            setSaved(false);
            await run(async () => {
              await call(() => api.PUT('/api/v1/settings', { body: { require_totp: requireTotp } }));
              setSaved(true);
            });
          }}
        >
          <h2>{t('settings.security')}</h2>
          <Checkbox
            label={t('settings.requireTotp')}
            hint={t('settings.requireTotpHint')}
            checked={requireTotp}
            onChange={(e) => setRequireTotp(e.target.checked)}
          />
          {saved && <Notice kind="success">{t('common.saved')}</Notice>}
          <Button type="submit" variant="primary" busy={busy}>
            {t('common.save')}
          </Button>
        </form>
      )}
    </>
  );
}
