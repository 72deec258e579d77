#!/usr/bin/env python3
"""Lists C++ function bodies longer than a limit (default 120 lines), longest first.

Usage: tools/long_functions.py [--max N] [DIR...]   (default DIRs: lib passes apps)

A brace matcher, not a parser: comments, strings and character literals are blanked, and a '{'
opens a function body when the text before it (back to the last ';', '{' or '}') ends like a
function head ('...) const {', '...) -> T {', a constructor's initializer list). Lambdas count
toward the function that holds them. Good enough to find the long ones; it exits 1 if any is found.
"""
import os
import re
import sys

CONTROL = re.compile(r'\b(if|for|while|switch|catch|do|else)\s*(\(|$)')
SCOPE = re.compile(r'\b(namespace|class|struct|union|enum)\b[^()]*$')


def blank(text):
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(')' + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            out.append(c + ' ' * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def head_name(head):
    """The function's name from the text before its '{', or None when it is no function."""
    head = ' '.join(head.split())
    if not head or CONTROL.search(head) or SCOPE.search(head) or head.endswith('='):
        return None
    # Strip a constructor's initializer list: 'X::X(a) : b_(a), c_{1}'.
    depth, cut = 0, None
    for k, ch in enumerate(head):
        depth += ch in '(<'
        depth -= ch in ')>'
        if ch == ':' and depth == 0 and head[k - 1:k + 1] != '::' and head[k:k + 2] != '::':
            if k > 0 and head[:k].rstrip().endswith(')'):
                cut = k
                break
    if cut is not None:
        head = head[:cut].rstrip()
    m = re.search(r'([~\w:]+(?:operator\s*\S+)?)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)'
                  r'\s*(const|override|final|noexcept|mutable|->\s*[\w:<>,\s*&]+)*\s*$', head)
    return m.group(1) if m else None


def long_functions(path, limit):
    text = blank(open(path, encoding='utf-8', errors='replace').read())
    found, stack, last = [], [], 0
    line = 1
    for i, ch in enumerate(text):
        if ch == '\n':
            line += 1
        elif ch in ';{}':
            if ch == '{':
                in_function = any(kind == 'fn' for kind, _, _ in stack)
                name = None if in_function else head_name(text[last:i])
                stack.append(('fn' if name else 'other', name, line))
            elif ch == '}' and stack:
                kind, name, start = stack.pop()
                if kind == 'fn' and line - start + 1 > limit:
                    found.append((line - start + 1, path, start, name))
            last = i + 1
    return found


def main(argv):
    limit = 120
    if len(argv) >= 2 and argv[0] == '--max':
        limit, argv = int(argv[1]), argv[2:]
    found = []
    for root in argv or ['lib', 'passes', 'apps']:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith(('.cc', '.h', '.cpp')):
                    found += long_functions(os.path.join(dirpath, f), limit)
    for lines, path, start, name in sorted(found, reverse=True):
        print(f'{lines:5d}  {path}:{start}  {name}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
