// The README's GitHub Actions workflow for n shards, run here step by step with the same shell
// commands: `run:` steps go to bash as written; the few actions it uses (checkout, setup-node, cache,
// upload-artifact, download-artifact) are played by folders on this machine.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import fg from "fast-glob";
import { parse } from "yaml";
import { copySite, loadManifest, ROOT, removeDir, runCli, tempDir, verifyVariants } from "../support/helpers.js";

const WORKFLOW = join(ROOT, "examples", "github-actions-shards.yml");

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string | number | boolean>;
}
interface Job {
  needs?: string | string[];
  strategy?: { matrix: Record<string, (string | number)[]> };
  steps: Step[];
}

/** A user's repository: a build that writes dist/ (the demo site and some generated pages) and a deploy. */
async function makeProject(dir: string): Promise<void> {
  // The demo site's sources, as copySite keeps them, live in the project: the build copies them.
  const site = await copySite();
  await cp(site, join(dir, "site"), { recursive: true });
  await removeDir(site);
  const build = `import { cp, mkdir, writeFile } from "node:fs/promises";
await cp("site", "dist", { recursive: true });
for (let i = 0; i < 60; i++) {
  await mkdir("dist/docs", { recursive: true });
  await writeFile(\`dist/docs/page-\${i}.html\`, \`<h1>Page \${i}</h1>\\n\`.repeat(40 + i * 30));
}
`;
  await writeFile(join(dir, "build.mjs"), build);
  await writeFile(
    join(dir, "deploy.mjs"),
    `import { cp } from "node:fs/promises";\nawait cp("dist", process.env.DEPLOY_TO, { recursive: true });\n`,
  );
  const pkg = {
    name: "site",
    private: true,
    scripts: { build: "node build.mjs", deploy: "node deploy.mjs" },
    devDependencies: { precompressor: `file:${ROOT}` },
  };
  await writeFile(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  const npm = ["--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"];
  execFileSync("npm", ["install", "--package-lock-only", ...npm], { cwd: dir, stdio: "ignore" });
}

/** The least common ancestor of the globs' literal prefixes: upload-artifact's root for the paths it stores. */
function artifactRoot(patterns: string[]): string {
  const prefixes = patterns.map((p) => {
    const parts = p.split("/");
    const wild = parts.findIndex((s) => /[*?[{]/.test(s));
    return (wild < 0 ? parts.slice(0, -1) : parts.slice(0, wild)).join("/");
  });
  let root = prefixes[0] ?? "";
  for (const p of prefixes)
    while (root && p !== root && !p.startsWith(`${root}/`)) root = dirname(root) === "." ? "" : dirname(root);
  return root;
}

/** Where actions/cache keeps its entries: they outlive a pipeline; artifacts do not. */
interface CacheStore {
  dir: string;
  /** Keys in the order they were saved, across pipelines: the newest is last. */
  saved: string[];
}

class Runner {
  readonly artifacts: string;
  readonly log: string[] = [];
  constructor(
    readonly name: string,
    readonly project: string,
    readonly deployTo: string,
    private readonly caches: CacheStore,
  ) {
    this.artifacts = join(dirname(project), `artifacts-${name}`);
  }

  async runWorkflow(workflow: { jobs: Record<string, Job> }, sha: string): Promise<void> {
    const done = new Set<string>();
    const names = Object.keys(workflow.jobs);
    while (done.size < names.length) {
      const ready = names.filter(
        (n) => !done.has(n) && [workflow.jobs[n]?.needs ?? []].flat().every((d) => done.has(d)),
      );
      assert.ok(ready.length, "the jobs' needs form no cycle");
      for (const name of ready) {
        const job = workflow.jobs[name] as Job;
        const [key, values] = Object.entries(job.strategy?.matrix ?? { none: [""] })[0] as [
          string,
          (string | number)[],
        ];
        // Matrix jobs run side by side, as on separate runners.
        await Promise.all(
          values.map((v) => this.runJob(`${name}-${v}`, job, { [`matrix.${key}`]: String(v), "github.sha": sha })),
        );
        done.add(name);
      }
    }
  }

  private async runJob(id: string, job: Job, context: Record<string, string>): Promise<void> {
    // Beside the project, at its depth: the lock file names the package by a relative path.
    const work = join(dirname(this.project), `runner-${this.name}-${id}`);
    await removeDir(work);
    await mkdir(work, { recursive: true });
    const expand = (text: string) =>
      text.replace(/\$\{\{\s*([\w.]+)\s*\}\}/g, (_, name: string) => {
        assert.ok(name in context, `\${{ ${name} }} is not known`);
        return context[name] as string;
      });
    const saves: (() => Promise<void>)[] = [];
    for (const step of job.steps) {
      const withs = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, expand(String(v))]));
      if (step.run) {
        const out = execFileSync("bash", ["-e", "-o", "pipefail", "-c", expand(step.run)], {
          cwd: work,
          env: { ...process.env, CI: "true", DEPLOY_TO: this.deployTo },
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        });
        this.log.push(`${id}: ${expand(step.run)}${out.trim() ? `\n  ${out.trim().split("\n").join("\n  ")}` : ""}`);
      } else if (step.uses?.startsWith("actions/checkout@")) await cp(this.project, work, { recursive: true });
      else if (step.uses?.startsWith("actions/setup-node@")) assert.ok(withs["node-version"]);
      else if (step.uses?.startsWith("actions/upload-artifact@")) await this.upload(work, withs);
      else if (step.uses?.startsWith("actions/download-artifact@")) await this.download(work, withs);
      else if (step.uses?.startsWith("actions/cache@")) saves.push(await this.restoreCache(work, withs));
      else assert.fail(`no stand-in for ${step.uses}`);
    }
    for (const save of saves) await save();
  }

  private async upload(work: string, w: Record<string, string>): Promise<void> {
    const patterns = (w.path ?? "")
      .split("\n")
      .map((p) => p.trim())
      .filter(Boolean);
    const to = join(this.artifacts, w.name as string);
    const dot = w["include-hidden-files"] === "true";
    if (patterns.length === 1 && !/[*?[{]/.test(patterns[0] as string)) {
      const files = await fg("**/*", { cwd: join(work, patterns[0] as string), dot, onlyFiles: true });
      for (const f of files) await cp(join(work, patterns[0] as string, f), join(to, f), { preserveTimestamps: true });
      return;
    }
    const root = artifactRoot(patterns);
    for (const f of await fg(patterns, { cwd: work, dot, onlyFiles: true }))
      await cp(join(work, f), join(to, root ? f.slice(root.length + 1) : f), { preserveTimestamps: true });
  }

  private async download(work: string, w: Record<string, string>): Promise<void> {
    const names = w.name
      ? [w.name]
      : (await readdir(this.artifacts)).filter((n) =>
          new RegExp(`^${(w.pattern ?? "").replace(/\*/g, ".*")}$`).test(n),
        );
    assert.ok(names.length, `no artifact for ${w.name ?? w.pattern}`);
    if (!w.name) assert.equal(w["merge-multiple"], "true", "several artifacts into one folder need merge-multiple");
    for (const name of names)
      await cp(join(this.artifacts, name), join(work, w.path ?? "."), { recursive: true, preserveTimestamps: true });
  }

  /** Restore by exact key, else by the first restore key that matches, newest first; save at the end unless it hit. */
  private async restoreCache(work: string, w: Record<string, string>): Promise<() => Promise<void>> {
    const key = w.key as string;
    const path = join(work, w.path as string);
    const prefixes = (w["restore-keys"] ?? "")
      .split("\n")
      .map((p) => p.trim())
      .filter(Boolean);
    const newest = (prefix: string) => this.caches.saved.filter((k) => k.startsWith(prefix)).at(-1);
    const hit = this.caches.saved.includes(key) ? key : prefixes.map(newest).find(Boolean);
    if (hit) await cp(join(this.caches.dir, hit), path, { recursive: true, preserveTimestamps: true });
    this.log.push(`cache ${key}: restored ${hit ?? "nothing"}`);
    return async () => {
      if (hit === key) return;
      await cp(path, join(this.caches.dir, key), { recursive: true, preserveTimestamps: true });
      this.caches.saved.push(key);
    };
  }
}

describe("the README's sharded GitHub Actions workflow, run locally", () => {
  let home: string;
  before(async () => {
    home = await tempDir("workflow-");
  });
  after(() => removeDir(home));

  test("the README shows the workflow file as it is", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    assert.ok(readme.includes((await readFile(WORKFLOW, "utf8")).trim()), "README and examples/ differ");
  });

  test("4 shards, then a merge, deploy the single run's tree; the second pipeline restores from the caches", async () => {
    const project = join(home, "project");
    await mkdir(project);
    await makeProject(project);
    const workflow = parse(await readFile(WORKFLOW, "utf8")) as { jobs: Record<string, Job> };
    const caches: CacheStore = { dir: join(home, "caches"), saved: [] };
    for (const sha of ["aaaa", "bbbb"]) {
      const deployed = join(home, `deployed-${sha}`);
      const runner = new Runner(sha, project, deployed, caches);
      await runner.runWorkflow(workflow, sha);
      console.log(runner.log.join("\n"));
      // The reference: one plain run on the very site the build job uploaded.
      const single = join(home, `single-${sha}`);
      await cp(join(runner.artifacts, "site"), single, { recursive: true, preserveTimestamps: true });
      const r = await runCli([single, "--no-cache", "--quiet"]);
      assert.equal(r.code, 0, r.stderr);
      const files = (
        await fg("**/*", { cwd: single, dot: true, onlyFiles: true, ignore: [".precompressor.lock"] })
      ).sort();
      assert.deepEqual((await fg("**/*", { cwd: deployed, dot: true, onlyFiles: true })).sort(), files);
      for (const f of files) assert.ok((await readFile(join(deployed, f))).equals(await readFile(join(single, f))), f);
      await verifyVariants(deployed, await loadManifest(deployed));
      const shardRuns = runner.log.filter((l) => l.includes("--shard"));
      assert.equal(shardRuns.length, 4);
      for (const line of shardRuns) {
        const [, compressed, restored] = /(\d+) compressed, (\d+) restored from cache/.exec(line) ?? [];
        // The first pipeline compresses; the second, with every shard's cache saved, restores all of it.
        if (sha === "aaaa") assert.ok(Number(compressed) > 0, line);
        else assert.ok(Number(compressed) === 0 && Number(restored) > 0, line);
      }
    }
  });
});
