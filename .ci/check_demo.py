"""Check the README demo's output (its console log): every report it printed exists, every participant shows the
planted ordering (best-layer mean r: left > right > null), and the BIDS validator found 0 errors in the results."""

import re
import sys
from pathlib import Path

log = Path(sys.argv[1]).read_text(encoding="utf-8", errors="replace")
failures = []

participants = re.findall(r"^(sub-\w+): best-layer mean r\s+planted left (\S+)\s+planted right (\S+)\s+null (\S+)",
                          log, flags=re.M)
if not participants:
    failures.append("no participant's recovery line (sub-XX: best-layer mean r ...)")
for subject, left, right, null in participants:
    ordered = float(left) > float(right) > float(null)
    print(f"demo check: {subject} left {left} > right {right} > null {null}: {'yes' if ordered else 'NO'}")
    if not ordered:
        failures.append(f"{subject}: the planted ordering does not hold")

surface = re.findall(r"^(sub-\w+): on the cortical surface \(fsaverage5\), best-layer mean r\s+"
                     r"planted left sphere (\S+)\s+elsewhere (\S+)", log, flags=re.M)
if not surface:
    failures.append("no participant's surface line (sub-XX: on the cortical surface (fsaverage5) ...)")
for subject, planted, elsewhere in surface:
    landed = float(planted) > float(elsewhere)
    print(f"demo check: {subject} on fsaverage5, planted {planted} > elsewhere {elsewhere}: "
          f"{'yes' if landed else 'NO'}")
    if not landed:
        failures.append(f"{subject}: the planted response is not where it was planted on the surface")

validator = re.search(r"^BIDS validator on the results: (\d+) error\(s\)", log, flags=re.M)
if validator is None:
    failures.append("no BIDS validator line (BIDS validator on the results: N error(s) ...)")
elif int(validator.group(1)) != 0:
    failures.append(f"the BIDS validator found {validator.group(1)} error(s) in the results")
else:
    print("demo check: BIDS validator: 0 errors")

listed = log.split("reports (open in a browser):", 1)
reports = re.findall(r"^\s+(\S+\.html)$", listed[1], flags=re.M) if len(listed) == 2 else []
if not any(path.endswith("group.html") for path in reports):
    failures.append("the demo printed no group report")
for path in reports:
    if not Path(path).is_file():
        failures.append(f"report {path} was printed but does not exist")
print(f"demo check: {len(reports)} report(s) printed, {sum(Path(p).is_file() for p in reports)} exist")

if failures:
    sys.exit("demo check FAILED: " + "; ".join(failures))
print("demo check: passed")
