/**
 * The browser client's declared messages (web/jipjung-client.d.ts) against
 * the server's own types (src/protocol/server-messages.ts). The checks are
 * types: `npx tsc -p tsconfig.test.json` fails on the `Checks` below when
 * the two disagree on the set of message types or on a field of one (it
 * exists on one side only, or is typed otherwise: optional against
 * required included). The test compiles this file against altered copies
 * of the .d.ts, so that checks that cannot fail would be noticed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type * as Client from '../web/jipjung-client.js';
import type * as Server from '../src/protocol/server-messages.js';
import type { CloseCodeName } from '../src/protocol/close-codes.js';
import type { ErrorMessage as RegistryErrorMessage } from '../src/handler/errors.js';

/** The named fields of T, without its index signature. */
type Known<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type OnlyOnServer<S, C> = Exclude<Known<S>, Known<C>>;
type OptionalKeys<T> = { [K in Known<T>]-?: {} extends Pick<T, K> ? K : never }[Known<T>];
/**
 * Fields the .d.ts declares and the server's type does not name. A model's
 * own object (a frame's entry) is open on the server: there the .d.ts may
 * name the default model's fields, as optional.
 */
type OnlyInDts<S, C> = Exclude<Known<C>, Known<S> | (string extends keyof S ? OptionalKeys<C> : never)>;
type TypedOtherwise<S, C> = { [K in Known<S> & Known<C>]: Same<S[K], C[K]> extends true ? never : K }[Known<S> & Known<C>];
/** True when a server message type S and its declaration C have the same fields, alike typed; else where they differ. */
type Agree<S, C> = [OnlyOnServer<S, C>, OnlyInDts<S, C>, TypedOtherwise<S, C>] extends [never, never, never]
  ? true
  : { onlyOnServer: OnlyOnServer<S, C>; onlyInDts: OnlyInDts<S, C>; typedOtherwise: TypedOtherwise<S, C> };
type Check<T extends true> = T;

// CHECKS BEGIN
export type Checks = [
  Check<Same<Server.ServerMessage['type'], Client.ServerMessage['type']>>,
  Check<Same<Server.ResultMessage['kind'], Client.Result['kind']>>,
  Check<Agree<Server.WelcomeMessage, Client.Welcome>>,
  Check<Agree<Server.BatchResultMessage, Client.BatchResult>>,
  Check<Agree<Server.WindowResultMessage, Client.WindowResult>>,
  Check<Agree<Server.FrameEntry, Client.FrameResult>>,
  Check<Agree<Server.ResultCounts, Client.ResultCounts>>,
  Check<Agree<Server.ServerErrorMessage, Client.ServerError>>,
  Check<Agree<Server.NoticeMessage, Client.NoticeMessage>>,
  Check<Agree<Server.ThrottleMessage, Client.ThrottleMessage>>,
  Check<Agree<Server.AlignMessage, Client.AlignMessage>>,
  Check<Agree<Server.SummaryMessage, Client.Summary>>,
  Check<Same<CloseCodeName, Client.CloseCodeName>>,
  // What the error registry builds is the message the schema describes.
  Check<Agree<RegistryErrorMessage, Server.ServerErrorMessage>>,
];
// CHECKS END

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '..');
const DTS = path.join(ROOT, 'web', 'jipjung-client.d.ts');

/**
 * Type-checks this file with `dts` standing in for the client's .d.ts; the
 * lines of this file that have errors. Source files are parsed once and
 * shared between the compilations.
 */
function compiler() {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.test.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (!config) throw new Error('tsconfig.test.json could not be read');
  const options: ts.CompilerOptions = { ...config.options, noEmit: true, incremental: false, tsBuildInfoFile: undefined };
  const parsed = new Map<string, ts.SourceFile>();
  let previous: ts.Program | undefined;
  return (dts: string): number[] => {
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    host.readFile = (f) => (path.resolve(f) === DTS ? dts : readFile(f));
    host.getSourceFile = (f, languageVersion) => {
      if (path.resolve(f) === DTS) return ts.createSourceFile(f, dts, languageVersion);
      let sf = parsed.get(f);
      if (!sf) {
        const text = readFile(f);
        if (text === undefined) return undefined;
        sf = ts.createSourceFile(f, text, languageVersion);
        parsed.set(f, sf);
      }
      return sf;
    };
    const program = ts.createProgram([THIS_FILE], options, host, previous);
    previous = program;
    const sf = program.getSourceFile(THIS_FILE)!;
    return program.getSemanticDiagnostics(sf).map((d) => sf.getLineAndCharacterOfPosition(d.start ?? 0).line + 1);
  };
}

describe('the client .d.ts against the server message types', () => {
  const dts = fs.readFileSync(DTS, 'utf8');
  const lines = fs.readFileSync(THIS_FILE, 'utf8').split('\n');
  const checksFrom = lines.indexOf('// CHECKS BEGIN') + 1;
  const checksTo = lines.indexOf('// CHECKS END') + 1;
  const compile = compiler();
  /** The .d.ts with `from` replaced by `to`, which must be in it. */
  const altered = (from: string, to: string) => {
    expect(dts).toContain(from);
    return dts.replace(from, to);
  };

  it('agree as they are', () => {
    expect(compile(dts)).toEqual([]);
  });

  it.each([
    ['a field spelled otherwise', 'framesAnalyzed: number;', 'framesAnalysed: number;'],
    ['a field the server sends missing', '  resumed: boolean;\n', ''],
    ['a field the server never sends', '  resumed: boolean;\n', '  resumed: boolean;\n  nextSeq?: number;\n'],
    ['a field typed otherwise', '  delayMs: number;', '  delayMs: string;'],
    ['an optional field declared required', '  coalesced?: number;', '  coalesced: number;'],
    ['a model field declared always there', '  face?: boolean;', '  face: boolean;'],
    ['a message type missing', '| AlignMessage | Summary;', '| AlignMessage;'],
    ['an error code missing', "  | 'internal';", ';'],
    ['a close code name missing', "  | 'too_many_sessions';", ';'],
  ])('disagree on %s', (_what, from, to) => {
    const errors = compile(altered(from, to));
    expect(errors.length).toBeGreaterThan(0);
    for (const line of errors) expect(line, `error on line ${line}, outside the checks`).toSatisfy((l: number) => l > checksFrom && l < checksTo);
  });
});
