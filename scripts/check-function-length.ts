// `npm run lint`'s check of function length: a function over MAX_LINES lines of its own (the
// functions nested in it count on their own, so a factory of small closures passes) must say why
// it stays whole, in a leading comment that starts with "Stays whole:". Prints each offender, exits 1.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const MAX_LINES = 80;
const ROOT = join(import.meta.dirname, "..");

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (name.endsWith(".ts")) yield path;
  }
}

/** The function's own name, or the name it is assigned to, for the report. */
function nameOf(node: ts.Node, source: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(source);
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)))
    return parent.name.getText(source);
  return "(anonymous)";
}

/** Whether a leading comment of `node` (or of the statement declaring it) says why it stays whole. */
function saysWhy(node: ts.Node, text: string): boolean {
  let holder: ts.Node = node;
  while (
    holder.parent &&
    !ts.isSourceFile(holder.parent) &&
    !ts.isBlock(holder.parent) &&
    !ts.isClassLike(holder.parent)
  )
    holder = holder.parent;
  const comments = ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [];
  return comments.some((c) => /Stays whole:/.test(text.slice(c.pos, c.end)));
}

function lineSpan(node: ts.Node, source: ts.SourceFile): number {
  const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
  return source.getLineAndCharacterOfPosition(node.getEnd()).line - start + 1;
}

/** Lines of `fn` minus those of the functions declared inside it. */
function ownLines(fn: ts.Node, source: ts.SourceFile): number {
  let nested = 0;
  const visit = (node: ts.Node): void => {
    if (node !== fn && ts.isFunctionLike(node) && "body" in node && node.body) {
      nested += lineSpan(node, source);
      return;
    }
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(fn, visit);
  return lineSpan(fn, source) - nested;
}

const offenders: string[] = [];
for (const file of sourceFiles(join(ROOT, "src"))) {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const lines = ownLines(node, source);
      if (lines > MAX_LINES && !saysWhy(node, text))
        offenders.push(
          `${relative(ROOT, file)}:${start + 1} ${nameOf(node, source)}: ${lines} lines, no "Stays whole:" comment`,
        );
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
for (const line of offenders) console.error(line);
process.exitCode = offenders.length ? 1 : 0;
