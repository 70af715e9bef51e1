// Translations: every string the UI shows comes from a locale file. The user's choice is
// stored on their account; before login the browser's language decides.
import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';
import de from '../locales/de.json';
import en from '../locales/en.json';
import es from '../locales/es.json';
import fr from '../locales/fr.json';
import ja from '../locales/ja.json';
import ptBR from '../locales/pt-BR.json';
import ru from '../locales/ru.json';
import zhCN from '../locales/zh-CN.json';

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'de', name: 'Deutsch' },
  { code: 'fr', name: 'Français' },
  { code: 'es', name: 'Español' },
  { code: 'pt-BR', name: 'Português (Brasil)' },
  { code: 'ru', name: 'Русский' },
  { code: 'zh-CN', name: '简体中文' },
  { code: 'ja', name: '日本語' },
] as const;

export type Language = (typeof LANGUAGES)[number]['code'];

export const resources = {
  en: { translation: en },
  de: { translation: de },
  fr: { translation: fr },
  es: { translation: es },
  'pt-BR': { translation: ptBR },
  ru: { translation: ru },
  'zh-CN': { translation: zhCN },
  ja: { translation: ja },
};

const STORAGE_KEY = 'steward.language';

/** The best supported language for a list of BCP 47 tags (the browser's, in order). */
export function pickLanguage(tags: readonly string[]): Language {
  for (const tag of tags) {
    const exact = LANGUAGES.find((l) => l.code.toLowerCase() === tag.toLowerCase());
    if (exact) return exact.code;
    const base = tag.split('-')[0]?.toLowerCase();
    if (base === 'pt') return 'pt-BR';
    if (base === 'zh') return 'zh-CN';
    const byBase = LANGUAGES.find((l) => l.code === base);
    if (byBase) return byBase.code;
  }
  return 'en';
}

function initialLanguage(): Language {
  const stored = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null;
  if (stored && LANGUAGES.some((l) => l.code === stored)) return stored as Language;
  return pickLanguage(typeof navigator !== 'undefined' ? navigator.languages ?? [navigator.language] : []);
}

/** Switches the UI language (and remembers it in this browser). */
export async function setLanguage(code: string): Promise<void> {
  const lang = pickLanguage([code]);
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  await i18n.changeLanguage(lang);
}

void i18n.use(initReactI18next).init({
  resources,
  lng: initialLanguage(),
  fallbackLng: 'en',
  interpolation: { escapeValue: false },
  returnNull: false,
});
if (typeof document !== 'undefined') document.documentElement.lang = i18n.language;

export default i18n;
