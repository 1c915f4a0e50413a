"""Print the README's set-up commands, one a line: the bash blocks of its "Set up" section, as written."""

import re
import sys
from pathlib import Path

text = Path(sys.argv[1]).read_text(encoding="utf-8")
section = re.search(r"^## Set up\n(.*?)(?=^## )", text, flags=re.S | re.M)
if section is None:
    sys.exit("CI: the README has no '## Set up' section")
for block in re.findall(r"```bash\n(.*?)```", section.group(1), flags=re.S):
    print(" ".join(line.rstrip("\\").strip() for line in block.strip().splitlines()))
