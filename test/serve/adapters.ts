// Every way we serve, each on its own listening server on 127.0.0.1, for the serving-core suites:
// node:http serveStatic, Express, and the fetch handler behind a node:http bridge.
import { after } from "node:test";
import express from "express";
import { createFetchHandler } from "../../src/serve/fetch.js";
import { serveStatic } from "../../src/serve/node.js";
import type { ServeStaticOptions } from "../../src/serve/site.js";
import { fetchBridge, type Listening, listen } from "../support/http.js";

const running: { close(): unknown }[] = [];
after(async () => {
  for (const r of running.splice(0)) await r.close();
});

export type Start = (dir: string, options?: ServeStaticOptions) => Promise<Listening>;

function track(handler: { close(): void }, listening: Promise<Listening>): Promise<Listening> {
  return listening.then((l) => {
    running.push(l, handler);
    return l;
  });
}

export const ADAPTERS: [string, Start][] = [
  [
    "node:http",
    (dir, options) => {
      const handler = serveStatic(dir, options);
      return track(
        handler,
        listen((req, res) => handler(req, res)),
      );
    },
  ],
  [
    "Express",
    (dir, options) => {
      const handler = serveStatic(dir, options);
      return track(handler, listen(express().use(handler)));
    },
  ],
  [
    "fetch",
    (dir, options) => {
      const handler = createFetchHandler(dir, options);
      return track(handler, listen(fetchBridge(handler)));
    },
  ],
];

/** Settle within `ms` or fail: a hang is a failure, not a stuck suite. */
export function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}
