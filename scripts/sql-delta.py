#!/usr/bin/env python3
"""Draft an upgrade script: print the pgrx "connected objects" blocks of the NEW generated
install script that do not appear verbatim in the OLD one (e.g. the frozen sql/released file).
The draft still needs a human: changed blocks (finalize, altered tables) must be rewritten as
deltas. Usage: scripts/sql-delta.py sql/released/api_gateway--0.1.0.sql $(pg_config --sharedir)/extension/api_gateway--0.2.0.sql"""
import re
import sys

BLOCK = re.compile(r"/\* <begin connected objects> \*/\n(.*?)/\* </end connected objects> \*/", re.S)
old, new = (BLOCK.findall(open(path).read()) for path in sys.argv[1:3])
for block in new:
    if block not in old:
        print(block.strip() + "\n")
