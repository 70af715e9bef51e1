// Organization settings: the 2FA requirement and the networks health checks may reach.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call } from '../api/client';
import { useApi } from '../api/useApi';
import { Breadcrumbs, PageHeader } from '../components/Layout';
import { Button, Checkbox, ErrorAlert, Loading, Notice, TextArea, useAction } from '../components/ui';

/** The allow-list as the text area shows it: one network per line. */
const asText = (networks: string[]) => networks.join('\n');
const asList = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

export function SettingsPage() {
  const { t } = useTranslation();
  const { busy, error, run } = useAction();
  const [requireTotp, setRequireTotp] = useState<boolean | null>(null);
  const [networks, setNetworks] = useState('');
  const [saved, setSaved] = useState(false);
  // The form starts from the saved settings.
  const { error: loadError } = useApi(() => call(() => api.GET('/api/v1/settings')), [], {
    onData: (s) => {
      setRequireTotp(s.require_totp);
      setNetworks(asText(s.check_allowed_networks));
    },
  });
  return (
    <>
      <Breadcrumbs items={[{ label: t('nav.settings') }]} />
      <PageHeader title={t('nav.settings')} />
      <ErrorAlert error={error ?? loadError} />
      {requireTotp === null ? (
        !loadError && <Loading />
      ) : (
        <form
          className="card"
          onSubmit={async (e) => {
            e.preventDefault();
            setSaved(false);
            await run(async () => {
              const s = await call(() =>
                api.PUT('/api/v1/settings', { body: { require_totp: requireTotp, check_allowed_networks: asList(networks) } }),
              );
              setNetworks(asText(s.check_allowed_networks));
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
          <h2>{t('settings.checks')}</h2>
          <TextArea
            label={t('settings.checkAllowed')}
            hint={t('settings.checkAllowedHint')}
            value={networks}
            rows={4}
            spellCheck={false}
            onChange={(e) => setNetworks(e.target.value)}
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
