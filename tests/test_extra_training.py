"""Training-only corpora (a training build) in refits and in training: never scored, never a held-out cover's files."""

import json
import shutil

import numpy as np
import pytest

from stegwatch.detectors.train import TrainConfig, train
from stegwatch.errors import ConfigError
from stegwatch.evaluation.evaluate import evaluate
from stegwatch.evaluation.folds import fold_assignment, join_extra, out_of_fold
from stegwatch.evaluation.generalization import generalization
from stegwatch.features.corpus import load_corpus_features


class Spy:
    """A trainable detector that records what every refit saw and scores nothing."""

    trainable = True
    name, version, threshold = "spy", "0", 1.0

    def __init__(self):
        self.fits = []

    def refit(self, data, train, *, seed, target_fpr, **variant):
        self.fits.append((data, np.asarray(train)))
        return self

    def score_features(self, features):
        return np.zeros(len(features)), np.zeros((len(features), 1)), ["x"]


@pytest.fixture(scope="module")
def extra_corpus(smoke_corpus, tmp_path_factory):
    """Half of the smoke corpus's stego files, as a separate training-only corpus (same cover ids)."""
    root = tmp_path_factory.mktemp("extra") / "corpus"
    lines = (smoke_corpus / "manifest.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["label"] == "stego"][::2]
    for line in kept:
        rel = json.loads(line)["file_path"]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(smoke_corpus / rel, root / rel)
    (root / "manifest.jsonl").write_text("\n".join(kept) + "\n")
    return root


def test_every_fold_trains_on_the_extra_files_of_other_covers_only_and_scores_none(smoke_corpus, extra_corpus):
    data = load_corpus_features(smoke_corpus)
    extra = join_extra(data, [extra_corpus])
    n, n_extra = len(data.entries), len(extra.union.entries) - len(data.entries)
    assert n_extra > 0 and extra.record()[0]["files"] == n_extra
    assignment = fold_assignment(data, 3, seed=0)
    spy = Spy()
    oof = out_of_fold(spy, data, assignment, seed=0, target_fpr=0.0005, extra=extra)
    assert len(oof.scores) == n  # only the evaluated files are scored
    groups = extra.union.groups
    for fold, (pool, rows) in enumerate(spy.fits):
        held = set(data.groups[assignment == fold].tolist())
        extra_rows = rows[rows >= n]
        assert pool is extra.union
        assert not held & set(groups[rows].tolist())  # no held-out photograph reaches training
        expected = [n + j for j, e in enumerate(extra.union.entries[n:]) if e.cover_id not in held]
        assert extra_rows.tolist() == expected and expected
        assert sorted(rows[rows < n].tolist()) == np.flatnonzero(assignment != fold).tolist()


def test_a_left_out_source_loses_its_extra_files_too(smoke_corpus, extra_corpus):
    data = load_corpus_features(smoke_corpus)
    extra = join_extra(data, [extra_corpus])
    spy = Spy()
    section = generalization(spy, data, seed=0, target_fpr=0.0005, extra=extra)
    assert section["available"] and section["extra_training"] == extra.record()
    sources = list(section["sources"])
    left_out = [(pool, rows) for pool, rows in spy.fits[-len(sources):]]
    for source, (pool, rows) in zip(sources, left_out):
        assert source not in {pool.entries[i].cover_source for i in rows}
        # The section says what each refit saw.
        row = section["sources"][source]
        assert row["training_files"] == rows.size
        assert row["training_cover_groups"] == len({pool.entries[i].cover_id for i in rows})


def test_evaluate_records_the_extra_corpus_and_refuses_it_without_refits(smoke_corpus, extra_corpus):
    metrics = evaluate("v3", smoke_corpus, folds=3, latency_sample=0, train_extra=[extra_corpus])
    record = metrics["cross_validation"]["extra_training"]
    assert record and record[0]["path"] == str(extra_corpus) and record[0]["manifest_sha256"]
    assert metrics["false_positive_rate"]["n"] + metrics["detection_rate"]["n"] == metrics["run"]["corpus"]["files"]
    with pytest.raises(ConfigError, match="--folds or --by-source"):
        evaluate("v3", smoke_corpus, latency_sample=0, train_extra=[extra_corpus])


def test_training_with_an_extra_corpus_keeps_each_photograph_in_one_part(smoke_corpus, extra_corpus, tmp_path):
    card = train(smoke_corpus, tmp_path / "v3", TrainConfig(model="v3"), extra=[extra_corpus])
    assert card["extra_training"][0]["path"] == str(extra_corpus)
    alone = train(smoke_corpus, tmp_path / "v3-alone", TrainConfig(model="v3"))
    assert card["split"]["train"]["files"] > alone["split"]["train"]["files"]
    # The union is split by cover id: the parts' cover counts add up to the photographs, none in two parts.
    covers = {e.cover_id for e in load_corpus_features(smoke_corpus, split="train").entries}
    assert sum(part["cover_ids"] for part in card["split"].values()) == len(covers)
