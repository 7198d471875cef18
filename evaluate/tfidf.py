"""The classical baseline: TF-IDF features of the rendered document and a logistic regression."""

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from evaluate.io import PredictionRow
from schemas.example import Example
from schemas.task import TaskSpec


def fit_tfidf_logreg(train: list[Example], task: TaskSpec) -> Pipeline:
    """Fit word 1-2-gram TF-IDF + L2 logistic regression on the training examples."""
    if len({example.label for example in train}) < 2:
        raise ValueError("tfidf-logreg: the training split has one class only, so no classifier can be fit")
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000),
    )
    model.fit([task.render_document(e.fields) for e in train], [e.label for e in train])
    return model


def predict_tfidf_logreg(model: Pipeline, examples: list[Example], task: TaskSpec) -> list[PredictionRow]:
    """P(positive) per example; the method writes no text, so the text columns are empty."""
    probs = model.predict_proba([task.render_document(e.fields) for e in examples])[:, 1]
    return [
        PredictionRow(id=e.id, gold=e.label, p_head=float(p), text="", verbalized_label=None, parse_status="none")
        for e, p in zip(examples, probs, strict=True)
    ]
