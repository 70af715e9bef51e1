// Asks the user to prove themselves again (password or authenticator code) before a
// sensitive action, then calls POST /api/v1/auth/step-up.
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, call } from '../api/client';
import { Dialog } from '../components/Dialog';
import { Button, ErrorAlert, TextField, useAction } from '../components/ui';

export function StepUpDialog({ open, onDone, onCancel }: { open: boolean; onDone: () => void; onCancel: () => void }) {
  const { t } = useTranslation();
  const { busy, error, setError, run } = useAction();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  return (
    <Dialog
      open={open}
      title={t('terminal.stepUpTitle')}
      onClose={() => {
        setError(null);
        onCancel();
      }}
      onSubmit={() =>
        void run(async () => {
          const body = code.trim() ? { totp_code: code.trim() } : { password };
          await call(() => api.POST('/api/v1/auth/step-up', { body }));
          setPassword('');
          setCode('');
          onDone();
        })
      }
      footer={
        <>
          <Button onClick={onCancel}>{t('common.cancel')}</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {t('terminal.stepUpConfirm')}
          </Button>
        </>
      }
    >
      <p>{t('terminal.stepUpExplain')}</p>
      <TextField label={t('fields.password')} type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} autoFocus />
      <TextField label={t('terminal.stepUpCode')} inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} />
      <ErrorAlert error={error} />
    </Dialog>
  );
}
