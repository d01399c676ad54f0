// @ts-check
/**
 * Why the score is what it is, in words a student understands: the score's
 * three factors as bars, what lowered it as short sentences, and the
 * progress of the calibration while the model learns the student's usual
 * posture. It reads the default model's batch signals (docs/model.md); what
 * a model does not send is not shown, never guessed.
 */

/** @typedef {[ko: string, en: string]} Label */

/** The score's factors (score = 100 × their product), in the order of the page. */
/** @type {Array<[key: 'presence' | 'attention' | 'alertness', label: Label]>} */
export const COMPONENTS = [
  ['presence', ['자리', 'Presence']],
  ['attention', ['시선·자세', 'Head & gaze']],
  ['alertness', ['눈', 'Eyes']],
];

/** What lowered the score, by the model's stable reason code. Other codes are not shown. */
/** @type {Record<string, Label>} */
export const REASONS = {
  'no-face': ['얼굴이 보이지 않아요', 'No face in view'],
  'head-turned': ['고개가 옆으로 돌아가 있어요', 'Head turned away'],
  'head-down': ['고개를 숙이고 있어요', 'Head lowered'],
  'head-up': ['고개를 들고 있어요', 'Head raised'],
  'head-tilted': ['고개가 옆으로 기울어져 있어요', 'Head tilted to one side'],
  'off-centre': ['얼굴이 화면 밖으로 벗어나고 있어요', 'Face leaving the picture'],
  'eyes-closed': ['눈을 감고 있어요', 'Eyes closed'],
  'eyes-heavy': ['눈을 길게 감는 일이 잦아요', 'Frequent long blinks'],
  'poor-image': ['화면이 어둡거나 흐려요', 'Picture too dark or blurred'],
};

/**
 * `poor-image` said precisely when the batch's quality flags agree on one
 * cause: "too dark" is no help to a student whose camera is covered.
 * @type {Record<string, Label>}
 */
export const POOR_IMAGE = {
  dark: ['화면이 너무 어두워요', 'Picture too dark'],
  overexposed: ['화면이 너무 밝아요', 'Picture too bright'],
  blurry: ['화면이 흐려요', 'Picture blurred'],
  flat: ['카메라가 가려져 있는 것 같아요', 'Camera seems covered'],
  frozen: ['화면이 멈춰 있어요', 'Picture frozen'],
};

/** The page has room for this many sentences; the model lists the most important first. */
export const MAX_REASONS = 3;

/**
 * @typedef {object} Explanation
 * @property {Record<string, number | null> | null} components 0..1 by factor; null when the batch has none
 * @property {Array<{ code: string, label: Label }> | null} reasons null when the model sent no reasons
 * @property {{ running: boolean, progress: number | null } | null} calibration null when the model sent none
 */

/** @param {unknown} v */
const unit = (v) => (typeof v === 'number' && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : null);

/**
 * What the page shows for one batch result's signals.
 * @param {Record<string, any> | null | undefined} signals
 * @returns {Explanation}
 */
export function explain(signals) {
  const s = signals && typeof signals === 'object' ? signals : {};
  const c = s.components && typeof s.components === 'object' ? s.components : null;
  const components = c ? Object.fromEntries(COMPONENTS.map(([key]) => [key, unit(c[key])])) : null;

  let reasons = null;
  if (Array.isArray(s.reasons)) {
    const known = [...new Set(s.reasons)].filter((code) => typeof code === 'string' && Object.hasOwn(REASONS, code));
    reasons = known.slice(0, MAX_REASONS).map((code) => ({ code, label: code === 'poor-image' ? poorImage(s.qualityFlags) : REASONS[code] }));
  }

  const k = s.calibration && typeof s.calibration === 'object' && typeof s.calibration.running === 'boolean' ? s.calibration : null;
  const calibration = k ? { running: k.running, progress: k.running ? unit(k.progress) : 1 } : null;
  return { components, reasons, calibration };
}

/**
 * @param {unknown} flags counts by quality flag
 * @returns {Label}
 */
function poorImage(flags) {
  const counts = flags && typeof flags === 'object' ? Object.entries(flags).filter(([f, n]) => Object.hasOwn(POOR_IMAGE, f) && n > 0) : [];
  return counts.length === 1 ? POOR_IMAGE[counts[0][0]] : REASONS['poor-image'];
}

/**
 * `ko · en`, the English part marked as such (and shown muted like the rest of the page).
 * @param {HTMLElement} el
 * @param {Label} label
 * @param {string} [suffix] after both parts, e.g. a percentage
 */
function sentence(el, [ko, en], suffix = '') {
  el.textContent = `${ko}${suffix} · `;
  const span = document.createElement('span');
  span.lang = 'en';
  span.textContent = `${en}${suffix}`;
  el.append(span);
}

/** Bar colours: the state colours, by how much a factor holds the score back. */
/** @param {number} v */
const level = (v) => (v >= 0.75 ? 'high' : v >= 0.4 ? 'mid' : 'low');

/**
 * The panel under the score card (web/index.html `#why`). For tests it
 * mirrors what it shows: `data-reasons` on the list (the codes shown,
 * space-separated; no attribute when the model sent none), `data-value` on
 * each factor, and `data-calibrating` / `data-progress` on `#calibration`
 * and `data-calibrating` on <body>.
 */
export class WhyPanel {
  /** @param {Document} doc */
  constructor(doc) {
    /** @param {string} id */
    const $ = (id) => /** @type {HTMLElement} */ (doc.getElementById(id));
    this.root = $('why');
    this.reasons = $('reasons');
    this.calibration = $('calibration');
    this.calibrationText = $('calibrationText');
    this.calibrationFill = $('calibrationFill');
    /** @type {string | null} what the list shows now, so that an unchanged list is not re-announced every second */
    this.shownReasons = null;
  }

  /** @param {Record<string, any>} result a batch result */
  show(result) {
    const { components, reasons, calibration } = explain(result.signals);
    this.showComponents(components);
    this.showReasons(reasons);
    // Calibration belongs to the session, not the batch: a batch without it (a shed unit) leaves it as it was.
    if (calibration) this.showCalibration(calibration);
  }

  reset() {
    this.showComponents(null);
    this.showReasons(null);
    this.showCalibration(null);
  }

  /** @param {Explanation['components']} values */
  showComponents(values) {
    for (const [key] of COMPONENTS) {
      const row = /** @type {HTMLElement} */ (this.root.querySelector(`[data-component="${key}"]`));
      const v = values?.[key] ?? null;
      const track = /** @type {HTMLElement} */ (row.querySelector('.track'));
      const fill = /** @type {HTMLElement} */ (row.querySelector('.fill'));
      const value = /** @type {HTMLElement} */ (row.querySelector('.value'));
      row.dataset.value = v === null ? '' : String(v);
      fill.style.width = `${v === null ? 0 : v * 100}%`;
      fill.dataset.level = v === null ? '' : level(v);
      value.textContent = v === null ? '–' : `${Math.round(v * 100)}%`;
      if (v === null) track.removeAttribute('aria-valuenow');
      else track.setAttribute('aria-valuenow', String(Math.round(v * 100)));
    }
  }

  /** @param {Explanation['reasons']} reasons */
  showReasons(reasons) {
    const key = reasons === null ? null : reasons.map((r) => `${r.code}:${r.label[1]}`).join(' ');
    if (key === this.shownReasons) return;
    this.shownReasons = key;
    const list = this.reasons;
    list.replaceChildren();
    if (reasons === null) {
      delete list.dataset.reasons;
      return;
    }
    list.dataset.reasons = reasons.map((r) => r.code).join(' ');
    for (const r of reasons) {
      const li = document.createElement('li');
      li.dataset.code = r.code;
      sentence(li, r.label);
      list.append(li);
    }
    if (reasons.length === 0) {
      const li = document.createElement('li');
      li.className = 'none';
      sentence(li, ['점수를 낮추는 것이 없어요', 'Nothing is lowering your score']);
      list.append(li);
    }
  }

  /** @param {Explanation['calibration']} calibration */
  showCalibration(calibration) {
    const box = this.calibration;
    const running = calibration?.running === true;
    box.hidden = !running;
    if (calibration === null) {
      delete box.dataset.calibrating;
      delete box.dataset.progress;
      delete document.body.dataset.calibrating;
      return;
    }
    box.dataset.calibrating = String(running);
    document.body.dataset.calibrating = String(running);
    const progress = calibration.progress;
    box.dataset.progress = progress === null ? '' : String(progress);
    if (!running) return;
    const percent = progress === null ? '' : ` ${Math.round(progress * 100)}%`;
    sentence(this.calibrationText, ['자세를 익히는 중…', 'Learning your usual posture…'], percent);
    this.calibrationFill.style.width = `${progress === null ? 0 : progress * 100}%`;
    const bar = /** @type {HTMLElement} */ (this.calibrationFill.parentElement);
    if (progress === null) bar.removeAttribute('aria-valuenow');
    else bar.setAttribute('aria-valuenow', String(Math.round(progress * 100)));
  }
}
