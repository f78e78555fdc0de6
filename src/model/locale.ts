/**
 * A text model's StringNormalizer lowercases through a C library locale (skl2onnx's TF-IDF and
 * CountVectorizer exports ask for en_US.UTF-8, onnxruntime's default when the attribute is
 * absent). A machine without that locale cannot create the session: the model is valid, the
 * machine is missing something, and the fix is one of two, named here.
 */
import { NightscoreError } from '../errors.js';

/**
 * onnxruntime's words when the locale cannot be made (string_normalizer.cc). Its error
 * carries no code, so its text is the only sign; the name ends at the next ":".
 */
const LOCALE_FAILURE = /Failed to construct locale with name:([^:\s]*)/;

/** MODEL_LOCALE_MISSING when onnxruntime refused `path` for a locale this machine lacks, else undefined. */
export function missingLocaleError(path: string, err: unknown): NightscoreError | undefined {
  const found = LOCALE_FAILURE.exec(String((err as Error | undefined)?.message ?? err));
  if (!found) return undefined;
  const locale = found[1] || 'en_US.UTF-8';
  return new NightscoreError('MODEL_LOCALE_MISSING', `${path}: a StringNormalizer in the model lowercases text in the locale "${locale}", which this machine does not have installed (locale -a lists those it has)`, {
    source: path,
    hint: `Either install the locale where nightscore runs — on Debian or Ubuntu: apt-get install -y locales && sed -i 's/^# *${locale}/${locale}/' /etc/locale.gen && locale-gen (the nightscore image has en_US.UTF-8) — or export the model with a locale every machine has: set the StringNormalizer's locale attribute to C.UTF-8 (docs/job-file.md, "Text models and locales", shows how), then compare it with the training library's predictions (nightscore model check).`,
    cause: err,
  });
}

