// HTTP-dates (RFC 9110 §5.6.7), strictly: IMF-fixdate and the obsolete RFC 850 and asctime forms.
// `Date.parse` takes `1`, `2000` or `Tuesday` as dates; a precondition on those must be ignored.

const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d\\d):(\\d\\d):(\\d\\d)";
const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** ms since the epoch, or `undefined` unless every field is in range (no Feb 30, no 24:00). */
function utc(year: number, month: string, day: number, h: number, m: number, s: number): number | undefined {
  const index = MONTHS.indexOf(month) / 3;
  const ms = Date.UTC(year, index, day, h, m, Math.min(s, 59));
  const date = new Date(ms);
  // A leap second (60) counts as :59; anything Date.UTC would roll over is not a date.
  const valid = date.getUTCDate() === day && date.getUTCMonth() === index && h < 24 && m < 60 && s <= 60;
  return valid ? ms : undefined;
}

/**
 * An HTTP-date in ms, or `undefined` when the field is not one (then its precondition is ignored).
 * RFC 850's two-digit year is the nearest that is not more than 50 years ahead.
 *
 * @example
 * httpDate("Sun, 06 Nov 1994 08:49:37 GMT") // 784111777000
 * httpDate("2000") // undefined
 */
export function httpDate(field: string | undefined): number | undefined {
  if (field === undefined) return undefined;
  const text = field.trim();
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, d, mon = "", y, h, m, s] = match;
    return utc(Number(y), mon, Number(d), Number(h), Number(m), Number(s));
  }
  match = RFC_850.exec(text);
  if (match) {
    const [, d, mon = "", yy, h, m, s] = match;
    const thisYear = new Date().getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(yy);
    if (year > thisYear + 50) year -= 100;
    return utc(year, mon, Number(d), Number(h), Number(m), Number(s));
  }
  match = ASCTIME.exec(text);
  if (match) {
    const [, mon = "", d, h, m, s, y] = match;
    return utc(Number(y), mon, Number(d), Number(h), Number(m), Number(s));
  }
  return undefined;
}
