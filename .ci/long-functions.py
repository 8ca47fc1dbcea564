#!/usr/bin/env python3
# Lists the functions in src/ longer than N lines (default 100), longest first is left to `sort -rn`:
#   python3 .ci/long-functions.py 100 | sort -rn
# Braces are counted outside comments, string literals (also those spanning lines) and char literals.
import re, sys, os

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
FN = re.compile(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')


def code_only(text):
    """The text with comments and the insides of string and char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    blank = lambda s: re.sub(r'[^\n]', ' ', s)
    while i < n:
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(blank(text[i:j])); i = j; continue
        raw = re.match(r'b?r(#*)"', text[i:i + 40]) if text[i] in 'br' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == '_')) else None
        if raw:
            end = '"' + raw.group(1)
            j = text.find(end, i + len(raw.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(blank(text[i:j])); i = j; continue
        if text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            j += 1
            out.append(blank(text[i:j])); i = j; continue
        if text[i] == "'":
            char = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^'\\])'", text[i:i + 12])
            if char:
                out.append(blank(char.group(0))); i += len(char.group(0)); continue
        out.append(text[i]); i += 1
    return ''.join(out)


for root, _, files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'):
            continue
        p = os.path.join(root, f)
        lines = code_only(open(p).read()).split('\n')
        for i, line in enumerate(lines):
            m = FN.match(line)
            if not m:
                continue
            depth, started, j = 0, False, i
            while j < len(lines):
                code = lines[j]
                depth += code.count('{') - code.count('}')
                if '{' in code:
                    started = True
                if started and depth <= 0:
                    break
                if not started and code.rstrip().endswith(';'):
                    break
                j += 1
            if started and j - i + 1 > N:
                print(f'{j - i + 1:5} {p}:{i + 1} {m.group(6)}')
