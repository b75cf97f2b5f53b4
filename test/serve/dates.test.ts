// HTTP-dates parse strictly (RFC 9110 §5.6.7): the three forms, nothing else (#14 case 8).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { httpDate } from "../../src/serve/dates.js";

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe("httpDate", () => {
  for (const form of ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]) {
    test(`valid: ${form}`, () => assert.equal(httpDate(form), NOV_6_1994));
  }
  test("RFC 850's two-digit year is at most 50 years ahead", () => {
    const yy = String((new Date().getUTCFullYear() + 10) % 100).padStart(2, "0");
    assert.equal(new Date(httpDate(`Monday, 01-Jan-${yy} 00:00:00 GMT`) ?? 0).getUTCFullYear() % 100, Number(yy));
    assert.ok((httpDate("Friday, 01-Jan-99 00:00:00 GMT") ?? 0) < Date.now());
  });
  for (const bad of [
    "1",
    "2000",
    "99999",
    "Tuesday",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "Sun, 06 Nov 1994 08:49:37",
    "Sun, 06 Nov 1994 08:49:37 UTC",
    "Sun, 6 Nov 1994 08:49:37 GMT",
    "sun, 06 nov 1994 08:49:37 gmt",
    "Sun, 31 Feb 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT",
    "Sun, 06 Nov 1994 08:60:00 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
    "",
  ]) {
    test(`ignored: ${JSON.stringify(bad)}`, () => assert.equal(httpDate(bad), undefined));
  }
});
