"""LLM-as-judge prompts: rationale-label inconsistency (RLI), kappa_RL and readability.

These are RECONSTRUCTIONS in the spirit of the CLSGen paper's appendix A.4.1, whose exact text was not
available offline: RLI asks whether the rationale supports the stated label (consistent / inconsistent);
kappa_RL has the judge read the rationale alone and name the label it argues for; readability is a 1-5 score.
"""

JUDGE_SYSTEM = "You are a careful, impartial evaluator of explanations written for a classification task."

RLI = """Classification question: {question}

Rationale:
{rationale}

Stated label: {label}

Does the rationale support the stated label? Answer "consistent" if the rationale argues for the stated label
and "inconsistent" if it argues for another label or contradicts it.
Reply with JSON only: {{"verdict": "consistent"}} or {{"verdict": "inconsistent"}}"""

RATIONALE_LABEL = """Classification question: {question}

Rationale:
{rationale}

Read only this rationale. Which label does it argue for? The possible labels are {labels}.
Reply with JSON only: {{"label": "<one of {labels}>"}}"""

READABILITY = """Rate how readable the following explanation is, from 1 (very hard to read: ungrammatical,
repetitive or incoherent) to 5 (clear, fluent and well organised).

Explanation:
{rationale}

Reply with JSON only: {{"score": <an integer from 1 to 5>}}"""

PROMPTS = {"rli": RLI, "label": RATIONALE_LABEL, "readability": READABILITY}
