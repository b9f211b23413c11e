"""Refits kept on disk (`--checkpoints`): taken back only for the same refit, refitted otherwise."""

import numpy as np

from stegwatch.evaluation.checkpoints import CheckpointedRefits, with_checkpoints
from stegwatch.evaluation.folds import out_of_fold
from stegwatch.features.corpus import CorpusFeatures
from stegwatch.format.records import ManifestEntry


class MeanFit:
    """A fitted toy detector: scores a row by its first feature against the training mean (picklable)."""

    def __init__(self, centre: float, threshold: float) -> None:
        self.centre, self.threshold = centre, threshold

    def score_features(self, features):
        scores = features[:, 0] - self.centre
        return scores, scores[:, None], ["lsbm"]


class ToyDetector:
    """A trainable detector whose refits are counted."""

    name, version, trainable, threshold = "toy", "1", True, 0.0

    def __init__(self, settings: str = "a") -> None:
        self.settings = settings
        self.refits = 0

    def refit_identity(self) -> dict:
        return {"name": self.name, "settings": self.settings}

    def refit(self, data, train, *, seed, target_fpr, drop_streams=()):
        self.refits += 1
        return MeanFit(float(data.features[train, 0].mean()) + seed + len(drop_streams), 0.5)


class Untracked(ToyDetector):
    refit_identity = None


def corpus(values: np.ndarray) -> CorpusFeatures:
    entries = [ManifestEntry(file_path=f"f{i}.png", label="clean", method=None, category="photo", cover_id=f"c{i // 2}", sha256=f"{i:064x}", format="PNG",
                             mode="RGB", width=8, height=8) for i in range(len(values))]
    return CorpusFeatures(entries, values)


def test_a_refit_is_taken_back_only_when_everything_it_reads_is_the_same(tmp_path):
    rng = np.random.default_rng(0)
    data = corpus(rng.normal(size=(40, 3)))
    assignment = np.arange(40) // 2 % 4  # whole cover groups per fold
    toy = ToyDetector()
    first = out_of_fold(CheckpointedRefits(toy, tmp_path), data, assignment, seed=3, target_fpr=0.01)
    assert toy.refits == 4 and len(list(tmp_path.glob("*.joblib"))) == 4

    again = CheckpointedRefits(toy, tmp_path)
    second = out_of_fold(again, data, assignment, seed=3, target_fpr=0.01)
    assert toy.refits == 4 and again.record() == {"directory": str(tmp_path), "kept": True, "fitted": 0, "reused": 4}
    assert np.array_equal(first.scores, second.scores) and first.thresholds == second.thresholds

    # Another seed, variant, target, setting or feature value, or other cover groups: fitted again, each.
    for detector, rows, options in [
        (toy, data, {"seed": 4, "target_fpr": 0.01}),
        (toy, data, {"seed": 3, "target_fpr": 0.01, "drop_streams": ("meta",)}),
        (toy, data, {"seed": 3, "target_fpr": 0.02}),
        (ToyDetector("b"), data, {"seed": 3, "target_fpr": 0.01}),
        (toy, corpus(data.features + np.eye(40, 3)[:, [2, 1, 0]] * 1e-12), {"seed": 3, "target_fpr": 0.01}),
        (toy, CorpusFeatures([e.model_copy(update={"cover_id": "x" + e.cover_id}) for e in data.entries], data.features),
         {"seed": 3, "target_fpr": 0.01}),
    ]:
        wrapped = CheckpointedRefits(detector, tmp_path)
        out_of_fold(wrapped, rows, assignment, **options)
        assert wrapped.record()["fitted"] >= 1, options

    # A damaged checkpoint is fitted again and replaced; the run goes on.
    for path in tmp_path.glob("*.joblib"):
        path.write_bytes(b"not a pickle")
    toy.refits = 0
    repaired = CheckpointedRefits(toy, tmp_path)
    assert np.array_equal(out_of_fold(repaired, data, assignment, seed=3, target_fpr=0.01).scores, first.scores)
    assert toy.refits == 4 and repaired.record()["reused"] == 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_everything_but_refit_is_the_detectors_and_untracked_detectors_are_refitted(tmp_path):
    toy = Untracked()
    wrapped = with_checkpoints(toy, tmp_path)
    assert with_checkpoints(wrapped, tmp_path) is wrapped and with_checkpoints(toy, None) is toy
    assert (wrapped.name, wrapped.version, wrapped.trainable, wrapped.settings) == ("toy", "1", True, "a")
    data = corpus(np.arange(24, dtype=float).reshape(8, 3))
    for _ in range(2):
        wrapped.refit(data, np.arange(6), seed=0, target_fpr=0.01)
    assert toy.refits == 2 and not list(tmp_path.iterdir())
    assert wrapped.record() == {"directory": str(tmp_path), "kept": False, "fitted": 2, "reused": 0}


class Unpicklable(ToyDetector):
    """Its fits hold a lambda, which pickle refuses."""

    def refit(self, data, train, *, seed, target_fpr, drop_streams=()):
        fitted = super().refit(data, train, seed=seed, target_fpr=target_fpr, drop_streams=drop_streams)
        fitted.hook = lambda: None
        return fitted


def test_a_refit_that_cannot_be_stored_is_used_and_the_run_goes_on(tmp_path, caplog):
    wrapped = CheckpointedRefits(Unpicklable(), tmp_path)
    fitted = wrapped.refit(corpus(np.ones((4, 3))), np.arange(4), seed=0, target_fpr=0.01)
    assert fitted.centre == 1.0 and wrapped.record()["fitted"] == 1
    assert "not checkpointed" in caplog.text and not list(tmp_path.iterdir())


def test_v4s_decisive_stage_pickles_by_statistic_key():
    """A fitted V4 holds V3 statistics whose formulas are lambdas: they travel by key and come back as the registered ones."""
    import pickle

    from stegwatch.detectors.registry import load_detector
    from stegwatch.detectors.v3 import STATISTICS, registered_statistic

    stage = load_detector("v4").decisive
    again = pickle.loads(pickle.dumps(stage))
    assert again.statistics == stage.statistics and all(a is b for a, b in zip(again.statistics, stage.statistics, strict=True))
    assert pickle.loads(pickle.dumps(STATISTICS[-1])) is STATISTICS[-1] is registered_statistic(STATISTICS[-1].key)


def test_a_checkpointed_detector_copies_and_pickles_as_itself(tmp_path):
    import copy
    import pickle

    wrapped = CheckpointedRefits(ToyDetector("b"), tmp_path)
    for twin in (copy.copy(wrapped), copy.deepcopy(wrapped), pickle.loads(pickle.dumps(wrapped))):
        assert twin.directory == tmp_path and twin.settings == "b" and twin.refit_identity() == {"name": "toy", "settings": "b"}
    assert not hasattr(CheckpointedRefits.__new__(CheckpointedRefits), "settings")  # no detector yet: no recursion
