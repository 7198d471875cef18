"""A small claim/evidence dataset the project writes itself, for the README demo (CliniFact's columns)."""

import csv
import sys
from pathlib import Path

DRUGS = [
    "Atorvastatin",
    "Metformin",
    "Apixaban",
    "Semaglutide",
    "Dapagliflozin",
    "Ticagrelor",
    "Empagliflozin",
    "Rivaroxaban",
    "Sacubitril-valsartan",
    "Tirzepatide",
    "Colchicine",
    "Finerenone",
    "Canagliflozin",
    "Evolocumab",
    "Ezetimibe",
]
OUTCOMES = [
    ("HbA1c at 26 weeks", "glycaemic control"),
    ("major adverse cardiovascular events", "cardiovascular risk"),
    ("all-cause mortality at 12 months", "survival"),
    ("hospitalisation for heart failure", "heart failure"),
    ("LDL cholesterol at 12 weeks", "lipid lowering"),
    ("body weight at 52 weeks", "weight loss"),
]
POSITIVE = (
    "{drug} significantly reduced {outcome} compared with placebo (hazard ratio 0.78, 95% CI 0.66-0.91;"
    " p=0.002). The primary endpoint was met and adverse events were similar between groups."
)
NEGATIVE = (
    "There was no significant difference in {outcome} between {drug} and placebo (hazard ratio 0.97,"
    " 95% CI 0.84-1.12; p=0.68). The primary endpoint was not met."
)
BACKGROUND = (
    "{topic} remains a major clinical problem. This article describes the design and rationale of a"
    " randomised trial of {drug}; results will be reported separately."
)


def demo_rows(count: int = 30) -> list[dict[str, str]]:
    """`count` claim/abstract pairs: about a third positive (TRUE), the rest negative or background (FALSE)."""
    rows = []
    for index in range(count):
        drug = DRUGS[index % len(DRUGS)]
        outcome, topic = OUTCOMES[index % len(OUTCOMES)]
        kind = index % 3
        template = (POSITIVE, NEGATIVE, BACKGROUND)[kind]
        abstract = template.format(drug=drug, outcome=outcome, topic=topic.capitalize())
        claim = f"{drug} is superior to placebo in terms of {outcome}."
        rows.append(
            {"index": str(1000 + index), "claim": claim, "article_abstract": abstract, "label": ("1", "0", "2")[kind]}
        )
    return rows


def write_demo_csv(path: Path, count: int = 30) -> Path:
    """Write the demo split as a CSV with CliniFact's columns (index, claim, article_abstract, label)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["index", "claim", "article_abstract", "label"])
        writer.writeheader()
        writer.writerows(demo_rows(count))
    return path


if __name__ == "__main__":
    print(write_demo_csv(Path(sys.argv[1] if len(sys.argv) > 1 else "demo/train.csv")))
