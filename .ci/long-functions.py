#!/usr/bin/env python3
# Lists the functions in src/ longer than N lines (default 100), longest first is left to `sort -rn`:
#   python3 .ci/long-functions.py 100 | sort -rn
import re,sys,os
N=int(sys.argv[1]) if len(sys.argv)>1 else 100
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f); lines=open(p).read().split('\n')
        i=0
        while i<len(lines):
            m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?fn\s+(\w+)',lines[i])
            if m and not lines[i].strip().startswith('//'):
                depth=0; started=False; j=i
                while j<len(lines):
                    code=re.sub(r'"(\\.|[^"\\])*"','""',lines[j]); code=code.split('//')[0]
                    depth+=code.count('{')-code.count('}')
                    if code.count('{'): started=True
                    if started and depth<=0: break
                    if not started and code.rstrip().endswith(';'): break
                    j+=1
                if started and j-i+1>N: print(f'{j-i+1:5} {p}:{i+1} {m.group(5)}')
            i+=1
