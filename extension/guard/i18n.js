/*
 * Sargs compose guard, part 1 of 8: its own words in en, lv, sv and sq.
 *
 * Rule messages and guideline texts come from the service in the chosen language; these
 * are the guard's own labels. Every key exists in every language (tests/extension
 * checks). Parts share one namespace object, globalThis.__sargsGuardParts, which the
 * last part (main.js) takes and deletes; README at the top of main.js.
 */
(function (S) {
  'use strict';

  const TEXTS = {
    en: {
      findings: (n) => (n === 1 ? '1 finding' : `${n} findings`),
      badge: (n) => `Sargs: ${TEXTS.en.findings(n)}. Show details`,
      panel: 'Sargs — draft check',
      guideline: 'Guideline',
      readGuideline: 'Read the guideline',
      guidelines: 'All guidelines',
      suggestion: 'Suggestion',
      wholeDraft: 'the whole draft',
      block: 'Blocks posting',
      blockAdvice: 'Not allowed — do not post',
      warn: 'Warning',
      info: 'Note',
      close: 'Close',
      unavailable: 'Not checked: Sargs cannot be reached.',
      tooLong: 'Not checked: the draft is too long for Sargs.',
      readonly: 'Read-only here: your role may not post on this platform.',
      notEnforced: 'Sargs checks your draft here but cannot stop it being posted: please correct it yourself.',
      enforced: 'Posts with a blocking finding are refused when sent.',
    },
    lv: {
      findings: (n) => (n % 10 === 1 && n % 100 !== 11 ? `${n} konstatējums` : `${n} konstatējumi`),
      badge: (n) => `Sargs: ${TEXTS.lv.findings(n)}. Rādīt sīkāk`,
      panel: 'Sargs — melnraksta pārbaude',
      guideline: 'Vadlīnija',
      readGuideline: 'Lasīt vadlīniju',
      guidelines: 'Visas vadlīnijas',
      suggestion: 'Ieteikums',
      wholeDraft: 'viss melnraksts',
      block: 'Bloķē publicēšanu',
      blockAdvice: 'Nav atļauts — nepublicējiet',
      warn: 'Brīdinājums',
      info: 'Piezīme',
      close: 'Aizvērt',
      unavailable: 'Nav pārbaudīts: Sargs nav sasniedzams.',
      tooLong: 'Nav pārbaudīts: melnraksts ir par garu.',
      readonly: 'Šeit tikai lasīšana: jūsu lomai šajā platformā nav atļauts publicēt.',
      notEnforced: 'Sargs šeit pārbauda melnrakstu, bet nevar apturēt tā publicēšanu: lūdzu, izlabojiet to paši.',
      enforced: 'Ieraksti ar bloķējošu konstatējumu tiek noraidīti, kad tos sūta.',
    },
    sv: {
      findings: (n) => (n === 1 ? '1 anmärkning' : `${n} anmärkningar`),
      badge: (n) => `Sargs: ${TEXTS.sv.findings(n)}. Visa detaljer`,
      panel: 'Sargs — kontroll av utkast',
      guideline: 'Riktlinje',
      readGuideline: 'Läs riktlinjen',
      guidelines: 'Alla riktlinjer',
      suggestion: 'Förslag',
      wholeDraft: 'hela utkastet',
      block: 'Stoppar publicering',
      blockAdvice: 'Inte tillåtet – publicera inte',
      warn: 'Varning',
      info: 'Notering',
      close: 'Stäng',
      unavailable: 'Inte kontrollerat: Sargs kan inte nås.',
      tooLong: 'Inte kontrollerat: utkastet är för långt.',
      readonly: 'Endast läsning här: din roll får inte publicera på den här plattformen.',
      notEnforced: 'Sargs kontrollerar utkastet här men kan inte stoppa publiceringen: rätta det själv.',
      enforced: 'Inlägg med en stoppande anmärkning avvisas när de skickas.',
    },
    sq: {
      findings: (n) => (n === 1 ? '1 gjetje' : `${n} gjetje`),
      badge: (n) => `Sargs: ${TEXTS.sq.findings(n)}. Shfaq detajet`,
      panel: 'Sargs — kontrolli i draftit',
      guideline: 'Udhëzim',
      readGuideline: 'Lexo udhëzimin',
      guidelines: 'Të gjitha udhëzimet',
      suggestion: 'Sugjerim',
      wholeDraft: 'i gjithë drafti',
      block: 'Bllokon publikimin',
      blockAdvice: 'Nuk lejohet – mos e publikoni',
      warn: 'Paralajmërim',
      info: 'Shënim',
      close: 'Mbyll',
      unavailable: 'Nuk u kontrollua: Sargs nuk mund të arrihet.',
      tooLong: 'Nuk u kontrollua: drafti është shumë i gjatë.',
      readonly: 'Vetëm lexim këtu: roli juaj nuk lejohet të publikojë në këtë platformë.',
      notEnforced: 'Sargs e kontrollon draftin këtu, por nuk mund ta ndalojë publikimin: ju lutemi korrigjojeni vetë.',
      enforced: 'Postimet me një gjetje bllokuese refuzohen kur dërgohen.',
    },
  };

  /** The first of `wanted`, the browser's languages, English that Sargs speaks. */
  function pickLang(wanted) {
    const list = [].concat(wanted || [], navigator.languages || [], navigator.language || []);
    for (const tag of list) {
      const base = String(tag).toLowerCase().split(/[-_]/)[0];
      if (Object.prototype.hasOwnProperty.call(TEXTS, base)) return base;
    }
    return 'en';
  }

  S.i18n = { TEXTS, pickLang };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
