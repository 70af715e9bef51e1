// Loading data from the API into a component, written once: the answer, the error, whether a
// load is running, and a way to load again. A load runs on mount, whenever the dependencies
// change and on `reload()`. Only the latest load counts: an older one that ends late, or any
// that ends after the component is gone, is dropped. The data on screen stays while the next
// load runs, so a refresh does not flash back to a spinner.
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type DependencyList, type Dispatch, type SetStateAction } from 'react';

export interface ApiState<T> {
  /** The latest answer (kept while the next load runs); `undefined` until one arrives. */
  data: T | undefined;
  /** Why the latest load failed (`null` when it did not); cleared when a load succeeds. */
  error: unknown;
  /** A load is running. */
  loading: boolean;
  /** Loads again. Resolves when the load is over; never rejects (a failure lands in `error`). */
  reload: () => Promise<void>;
  /** Replaces the data without a load (after a change the page made itself). */
  setData: Dispatch<SetStateAction<T | undefined>>;
}

export interface ApiOptions<T> {
  /** Called with every answer that is kept, e.g. to fill a form from it. */
  onData?: (data: T) => void;
  /** Forget the data when the dependencies change (a different question: show the spinner),
   *  instead of keeping it until the new answer arrives. `reload()` always keeps it. */
  clearOnChange?: boolean;
}

/**
 * Runs `load` now and whenever `deps` change; `null` or `false` instead of a loader loads
 * nothing (for a load that waits on a condition). The loader may change on every render:
 * the latest one is used.
 */
export function useApi<T>(load: (() => Promise<T>) | null | false, deps: DependencyList, options: ApiOptions<T> = {}): ApiState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(!!load);
  const latest = useRef({ load, options });
  // Which load is the latest: a load whose number is no longer this one is superseded.
  const generation = useRef(0);
  const mounted = useRef(false);

  useLayoutEffect(() => {
    latest.current = { load, options };
  });

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    const current = () => mine === generation.current && mounted.current;
    const loader = latest.current.load;
    if (!loader) {
      setLoading(false);
      return;
    }
    setLoading(true);
    try {
      const answer = await loader();
      if (!current()) return;
      setData(() => answer);
      setError(null);
      latest.current.options.onData?.(answer);
    } catch (e) {
      if (current()) setError(e);
    } finally {
      if (current()) setLoading(false);
    }
  }, []);

  useEffect(() => {
    if (latest.current.options.clearOnChange) setData(undefined);
    void reload();
    // The caller's dependency list decides when to load again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, loading, reload, setData };
}
