// The load hook every page uses: the answer arrives, a failure is exposed, a superseded load's
// late answer is dropped, and a reload keeps the old data on screen until the new one is in.
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { useApi } from '../../src/api/useApi';

afterEach(cleanup);

/** A promise the test settles by hand, to decide which load ends first. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('useApi', () => {
  test('the data arrives, and loading ends', async () => {
    const { result } = renderHook(() => useApi(() => Promise.resolve(['web', 'db']), []));
    expect(result.current.loading).toBe(true);
    expect(result.current.data).toBeUndefined();
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.data).toEqual(['web', 'db']);
    expect(result.current.error).toBeNull();
  });

  test('a failure is exposed as the error, and a later success clears it', async () => {
    const failure = new Error('down');
    let fail = true;
    const { result } = renderHook(() => useApi(() => (fail ? Promise.reject(failure) : Promise.resolve(1)), []));
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.error).toBe(failure);
    expect(result.current.data).toBeUndefined();

    fail = false;
    await act(() => result.current.reload());
    expect(result.current.error).toBeNull();
    expect(result.current.data).toBe(1);
  });

  test("a superseded load's late answer is ignored: the last request wins", async () => {
    const answers = new Map([
      ['a', deferred<string>()],
      ['b', deferred<string>()],
    ]);
    const { result, rerender } = renderHook(({ id }) => useApi(() => answers.get(id)!.promise, [id]), { initialProps: { id: 'a' } });
    rerender({ id: 'b' });
    // b answers first, then a (the older question) answers late.
    await act(async () => answers.get('b')!.resolve('answer for b'));
    expect(result.current.data).toBe('answer for b');
    expect(result.current.loading).toBe(false);
    await act(async () => answers.get('a')!.resolve('answer for a'));
    expect(result.current.data).toBe('answer for b');
    // A late failure of a superseded load is dropped too.
    const c = deferred<string>();
    const d = deferred<string>();
    answers.set('c', c).set('d', d);
    rerender({ id: 'c' });
    rerender({ id: 'd' });
    await act(async () => d.resolve('answer for d'));
    await act(async () => c.reject(new Error('late')));
    expect(result.current.data).toBe('answer for d');
    expect(result.current.error).toBeNull();
  });

  test('reload fetches again and keeps the old data meanwhile', async () => {
    let next = deferred<number>();
    const loader = vi.fn(() => next.promise);
    const { result } = renderHook(() => useApi(loader, []));
    await act(async () => next.resolve(1));
    expect(result.current.data).toBe(1);

    next = deferred<number>();
    let done!: Promise<void>;
    act(() => {
      done = result.current.reload();
    });
    expect(loader).toHaveBeenCalledTimes(2);
    expect(result.current.loading).toBe(true);
    expect(result.current.data).toBe(1);
    await act(async () => {
      next.resolve(2);
      await done;
    });
    expect(result.current.loading).toBe(false);
    expect(result.current.data).toBe(2);
  });

  test('clearOnChange forgets the data for new dependencies, but not on reload', async () => {
    let next = deferred<string>();
    const { result, rerender } = renderHook(({ range }) => useApi(() => next.promise, [range], { clearOnChange: true }), {
      initialProps: { range: '1h' },
    });
    await act(async () => next.resolve('1h data'));
    next = deferred<string>();
    act(() => void result.current.reload());
    expect(result.current.data).toBe('1h data');
    await act(async () => next.resolve('1h again'));
    next = deferred<string>();
    rerender({ range: '6h' });
    expect(result.current.data).toBeUndefined();
    await act(async () => next.resolve('6h data'));
    expect(result.current.data).toBe('6h data');
  });

  test('no loader, no load; answers after unmount change nothing', async () => {
    const { result, rerender } = renderHook(({ on }) => useApi(on ? () => Promise.resolve('x') : null, [on]), { initialProps: { on: false } });
    expect(result.current.loading).toBe(false);
    expect(result.current.data).toBeUndefined();
    rerender({ on: true });
    await waitFor(() => expect(result.current.data).toBe('x'));

    const late = deferred<string>();
    const onData = vi.fn();
    const second = renderHook(() => useApi(() => late.promise, [], { onData }));
    second.unmount();
    await act(async () => late.resolve('too late'));
    expect(onData).not.toHaveBeenCalled();
    expect(second.result.current.loading).toBe(true);
  });

  test('onData sees every kept answer, and setData replaces the data', async () => {
    const onData = vi.fn();
    const { result } = renderHook(() => useApi(() => Promise.resolve({ n: 1 }), [], { onData }));
    await waitFor(() => expect(onData).toHaveBeenCalledWith({ n: 1 }));
    act(() => result.current.setData((d) => ({ n: (d?.n ?? 0) + 1 })));
    expect(result.current.data).toEqual({ n: 2 });
  });
});
