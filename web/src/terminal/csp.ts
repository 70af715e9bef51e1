// xterm.js's DOM renderer writes its theme and cell sizes into <style> elements it creates,
// which Steward's Content-Security-Policy (style-src 'self', no inline styles) blocks. This
// shim turns those elements into constructed stylesheets (adoptedStyleSheets), which CSP
// allows: the element xterm gets is an inert <template> whose text lands in a stylesheet of
// its own. Installed once, before any terminal is created.
let installed = false;

export function installStyleShim(): void {
  if (installed || typeof document === 'undefined' || !('adoptedStyleSheets' in Document.prototype)) return;
  installed = true;
  const create = document.createElement.bind(document);
  const patched = function (this: Document, tag: string, options?: ElementCreationOptions): HTMLElement {
    if (typeof tag !== 'string' || tag.toLowerCase() !== 'style') return create(tag, options);
    const sheet = new CSSStyleSheet();
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    const holder = create('template');
    let text = '';
    Object.defineProperty(holder, 'textContent', {
      get: () => text,
      set: (v: string | null) => {
        text = v ?? '';
        sheet.replaceSync(text);
      },
    });
    const remove = holder.remove.bind(holder);
    holder.remove = () => {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return holder;
  };
  document.createElement = patched as typeof document.createElement;
}
