// Step-up: before a sensitive action (an ad-hoc command, a run on many servers, a terminal)
// the server may answer 403 `step_up_required`. `useStepUp` wraps such a call: it asks for the
// password (or a 2FA code), proves it with POST /auth/step-up, and retries the call once.
import { useCallback, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, call } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Dialog } from './Dialog';
import { Button, ErrorAlert, TextField, useAction } from './ui';

/** Thrown (and best ignored) when the user closes the step-up dialog instead of proving. */
export class StepUpCancelled extends Error {
  constructor() {
    super('step-up cancelled');
  }
}

export function isStepUpRequired(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403 && e.code === 'step_up_required';
}

/** Asks for the password or a TOTP code; `onDone` after the server accepted it. */
export function StepUpDialog({ open, onDone, onCancel }: { open: boolean; onDone: () => void; onCancel: () => void }) {
  const { t } = useTranslation();
  const { me } = useAuth();
  const { busy, error, setError, run } = useAction();
  const [useCode, setUseCode] = useState(!!me?.totp_enabled);
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');

  const close = () => {
    setPassword('');
    setCode('');
    setError(null);
    onCancel();
  };

  return (
    <Dialog
      open={open}
      title={t('runs.stepUp.title')}
      onClose={close}
      onSubmit={() =>
        void run(async () => {
          await call(() =>
            api.POST('/api/v1/auth/step-up', { body: useCode ? { totp_code: code.trim() } : { password } }),
          );
          setPassword('');
          setCode('');
          onDone();
        })
      }
      footer={
        <>
          <Button onClick={close}>{t('common.cancel')}</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {t('runs.stepUp.confirm')}
          </Button>
        </>
      }
    >
      <p>{t('runs.stepUp.explain')}</p>
      {useCode ? (
        <TextField
          label={t('runs.stepUp.code')}
          value={code}
          onChange={(e) => setCode(e.target.value)}
          inputMode="numeric"
          autoComplete="one-time-code"
          autoFocus
        />
      ) : (
        <TextField
          label={t('runs.stepUp.password')}
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          autoFocus
        />
      )}
      {me?.totp_enabled && (
        <Button variant="ghost" onClick={() => setUseCode((c) => !c)}>
          {useCode ? t('runs.stepUp.usePassword') : t('runs.stepUp.useCode')}
        </Button>
      )}
      <ErrorAlert error={error} />
    </Dialog>
  );
}

/**
 * `withStepUp(fn)` runs `fn`; on 403 `step_up_required` it shows the step-up dialog and, once
 * the user proved themselves, runs `fn` again. Closing the dialog rejects with
 * `StepUpCancelled`. Render `dialog` somewhere in the component.
 */
export function useStepUp() {
  const [open, setOpen] = useState(false);
  const pending = useRef<{ ok: () => void; fail: (e: unknown) => void } | null>(null);

  const withStepUp = useCallback(async <T,>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (!isStepUpRequired(e)) throw e;
      await new Promise<void>((ok, fail) => {
        pending.current = { ok, fail };
        setOpen(true);
      });
      return fn();
    }
  }, []);

  const dialog = (
    <StepUpDialog
      open={open}
      onDone={() => {
        setOpen(false);
        pending.current?.ok();
        pending.current = null;
      }}
      onCancel={() => {
        setOpen(false);
        pending.current?.fail(new StepUpCancelled());
        pending.current = null;
      }}
    />
  );
  return { withStepUp, dialog };
}
