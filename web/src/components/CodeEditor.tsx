// A shell-script editor with syntax highlighting (CodeMirror 6).
//
// Our CSP allows no inline <style>. CodeMirror's styles come from style-mod, which writes a
// <style> element when mounted in the document but uses constructable stylesheets
// (`adoptedStyleSheets`, not inline CSS) inside a shadow root. So the editor lives in a shadow
// root; its look comes from the page's CSS variables, which reach into shadow trees.
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { HighlightStyle, StreamLanguage, bracketMatching, syntaxHighlighting } from '@codemirror/language';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { Compartment, EditorState } from '@codemirror/state';
import { EditorView, drawSelection, highlightActiveLine, keymap, lineNumbers } from '@codemirror/view';
import { tags } from '@lezer/highlight';
import { useEffect, useRef } from 'react';

const shellLanguage = StreamLanguage.define(shell);

// Colours are CSS variables (app.css), chosen for contrast in both themes.
const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: 'var(--tok-keyword)', fontWeight: '600' },
  { tag: [tags.string, tags.special(tags.string)], color: 'var(--tok-string)' },
  { tag: tags.comment, color: 'var(--tok-comment)', fontStyle: 'italic' },
  { tag: [tags.special(tags.variableName), tags.definition(tags.variableName)], color: 'var(--tok-variable)' },
  { tag: [tags.standard(tags.variableName), tags.function(tags.variableName)], color: 'var(--tok-builtin)' },
  { tag: [tags.number, tags.atom, tags.bool], color: 'var(--tok-number)' },
  { tag: [tags.operator, tags.attributeName], color: 'var(--tok-operator)' },
]);

const theme = EditorView.theme({
  '&': {
    color: 'var(--text)',
    backgroundColor: 'var(--surface)',
    border: '1px solid var(--border)',
    borderRadius: '6px',
    fontSize: '0.92em',
  },
  '&.cm-focused': { outline: '3px solid var(--focus)', outlineOffset: '2px' },
  '.cm-scroller': {
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
    minHeight: 'var(--editor-min-height, 12rem)',
    maxHeight: '60vh',
    overflow: 'auto',
  },
  '.cm-content': { caretColor: 'var(--text)', padding: '0.4rem 0' },
  '.cm-cursor': { borderLeftColor: 'var(--text)' },
  '.cm-gutters': { backgroundColor: 'var(--bg)', color: 'var(--muted)', borderRight: '1px solid var(--border)' },
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground': { backgroundColor: 'var(--selection) !important' },
  '&.cm-editor.cm-readonly .cm-content': { caretColor: 'transparent' },
});

export function CodeEditor({
  label,
  value,
  onChange,
  readOnly = false,
  testId,
}: {
  label: string;
  value: string;
  onChange?: (value: string) => void;
  readOnly?: boolean;
  testId?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const editable = useRef(new Compartment());
  const changed = useRef(onChange);
  /** Texts reported through onChange that have not come back as `value` yet. */
  const emitted = useRef<string[]>([]);
  useEffect(() => {
    changed.current = onChange;
  }, [onChange]);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const root = el.shadowRoot ?? el.attachShadow({ mode: 'open' });
    const mount = document.createElement('div');
    root.replaceChildren(mount);
    const v = new EditorView({
      root,
      parent: mount,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          history(),
          drawSelection(),
          highlightActiveLine(),
          bracketMatching(),
          shellLanguage,
          syntaxHighlighting(highlight),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          theme,
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ 'aria-label': label, ...(testId ? { 'data-testid': testId } : {}) }),
          editable.current.of([EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)]),
          EditorView.updateListener.of((u) => {
            if (!u.docChanged) return;
            const text = u.state.doc.toString();
            emitted.current.push(text);
            changed.current?.(text);
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The editor is created once; value and readOnly changes are applied below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [label, testId]);

  // Outside changes (a loaded or restored version) replace the text. Values we reported
  // ourselves come back renders later, when the user may have typed on: those are no change.
  useEffect(() => {
    const v = view.current;
    const ours = emitted.current.indexOf(value);
    if (ours >= 0) {
      emitted.current.splice(0, ours + 1);
      return;
    }
    emitted.current = [];
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    view.current?.dispatch({
      effects: editable.current.reconfigure([EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)]),
    });
  }, [readOnly]);

  return (
    <div className="field">
      <span className="field-label" onClick={() => view.current?.focus()}>
        {label}
      </span>
      <div ref={host} className="code-editor" />
    </div>
  );
}
