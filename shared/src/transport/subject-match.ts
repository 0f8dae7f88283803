import { SubjectError } from '../errors.js';

/** NATS subject matching: `*` matches one token, `>` (last token only) matches one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Throws on an empty subject, empty tokens, or `>` anywhere but last. */
export function assertSubject(subject: string, allowWildcards: boolean): void {
  const tokens = subject.split('.');
  tokens.forEach((t, i) => {
    if (t === '' || /\s/.test(t)) throw new SubjectError(`invalid subject ${JSON.stringify(subject)}: empty token or whitespace`, subject);
    if (t === '*' || t === '>') {
      if (!allowWildcards) throw new SubjectError(`invalid subject ${JSON.stringify(subject)}: wildcards are only allowed in subscriptions`, subject);
      if (t === '>' && i !== tokens.length - 1) throw new SubjectError(`invalid subject ${JSON.stringify(subject)}: '>' must be the last token`, subject);
    }
  });
}
