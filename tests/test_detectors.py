"""Detectors: one protocol, V3 and V4, ONNX parity, training, scanning."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.detectors import KINDS, load_detector
from stegwatch.detectors.base import Detector
from stegwatch.stats import threshold_for_fpr
from stegwatch.detectors.train import TrainConfig, split_by_cover, train
from stegwatch.features.corpus import load_corpus_features
from stegwatch.format.manifest import read_manifest

from .test_bad_input import bad_files

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(smoke_corpus, tmp_path_factory):
    """V4 and V3 trained on the smoke corpus (small, fast settings)."""
    out = tmp_path_factory.mktemp("models")
    v4 = train(smoke_corpus, out / "v4", TrainConfig(model="v4", n_estimators=25, workers=1), command="test")
    v3 = train(smoke_corpus, out / "v3", TrainConfig(model="v3", workers=1), command="test")
    return out, v4, v3


def test_split_keeps_every_cover_in_one_part(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    parts = split_by_cover(entries, seed=0, test_size=0.25, val_size=0.25)
    covers = {name: {entries[i].cover_id for i in idx} for name, idx in parts.items()}
    assert not covers["train"] & covers["val"] and not covers["train"] & covers["test"] and not covers["val"] & covers["test"]
    assert sum(idx.size for idx in parts.values()) == len(entries)


def test_shown_scores_agree_with_the_verdict():
    from stegwatch.detectors.base import shown_score

    threshold = 0.6240184823101991  # a validation score, so a file can score exactly this
    assert shown_score(threshold, True) >= threshold
    assert shown_score(0.6240181, False) < threshold
    assert shown_score(0.25, True) == shown_score(0.25, False) == 0.25
    assert shown_score(1.0, True) == 1.0 and shown_score(0.0, False) == 0.0


def test_threshold_for_fpr():
    scores = np.linspace(0, 1, 1000)
    t = threshold_for_fpr(scores, 0.01)
    assert np.mean(scores >= t) <= 0.01
    assert threshold_for_fpr(np.array([0.2, 0.9]), 0.0005) > 0.9


def test_feature_columns_are_the_positions_of_the_names_and_refuse_unknown_ones():
    from stegwatch.detectors.v4 import ROUTE_FEATURE, model_columns
    from stegwatch.features.streams import feature_columns, feature_names

    names = feature_names()
    picked = [names[-1], names[0], names[len(names) // 2], "sequential.rgb_ws_whole"]
    assert feature_columns(picked).tolist() == [names.index(n) for n in picked]
    assert model_columns(picked).tolist() == [*[names.index(n) for n in picked], names.index(ROUTE_FEATURE)]
    subset = ("lsb", "dct")  # positions are in the vector of the streams asked for
    assert feature_columns([ROUTE_FEATURE], subset).tolist() == [feature_names(subset).index(ROUTE_FEATURE)]
    with pytest.raises(ValueError, match="1 feature.*spam.no_such_feature"):
        feature_columns([names[0], "spam.no_such_feature"])


def test_lightgbm_export_matches_the_in_memory_model(smoke_corpus):
    from stegwatch.detectors.v4 import class_labels, fit_v4, model_columns, model_input, onnx_parity, recipe_params, to_onnx
    from stegwatch.features.streams import feature_names

    data = load_corpus_features(smoke_corpus)
    names = feature_names()
    features = model_input(data.features, model_columns(names))
    parts = split_by_cover(data.entries, seed=0, test_size=0.25, val_size=0.25)
    # Method models are off in the shipped recipe; their export is still exact. (Without the metadata model, whose
    # eoi and exif would otherwise leave the family models, so that those methods' models can join here.)
    params = recipe_params(TrainConfig(method_models=True, metadata_evidence=False))
    model, _ = fit_v4(features, class_labels(data), parts["train"], parts["val"], params, 0.0005, names=names)
    assert all(part.model is not None for part in model.families.values())  # both families learned, both exported
    jpeg = model.family_of(features)
    assert 0 < jpeg.sum() < jpeg.size
    assert model.method_models  # some method models joined: the graph's third output holds them
    onnx_bytes = to_onnx(model, features.shape[1])
    assert onnx_parity(onnx_bytes, model, features) < 1e-5  # every file of the corpus, both families, both outputs
    import onnx

    assert [o.name for o in onnx.load_from_string(onnx_bytes).graph.output] == ["label", "probabilities", "method_stego"]


def test_the_metadata_model_alone_learns_eoi_and_exif_from_the_meta_stream_and_exports_exactly(smoke_corpus):
    import onnx

    from stegwatch.detectors.v4 import (METADATA_METHODS, FittedV4, class_labels, fit_v4, model_columns, model_input,
                                        onnx_parity, recipe_params, to_onnx)
    from stegwatch.features.streams import feature_names

    data = load_corpus_features(smoke_corpus)
    names = feature_names()
    features = model_input(data.features, model_columns(names))
    labels = class_labels(data)
    parts = split_by_cover(data.entries, seed=0, test_size=0.25, val_size=0.25)
    params = recipe_params(TrainConfig(metadata_model=True, metadata_evidence=False))  # off in the shipped recipe
    model, threshold = fit_v4(features, labels, parts["train"], parts["val"], params, 0.0005, names=names)
    assert model.metadata is not None and model.metadata.classes == ["clean", *METADATA_METHODS]
    assert model.metadata_methods == list(METADATA_METHODS)
    # It reads the meta stream only; the family models never saw an eoi or exif file, and have no such class.
    assert {names[c].split(".", 1)[0] for c in model.metadata.columns} == {"meta"}
    for part in model.families.values():
        assert not set(part.classes) & set(METADATA_METHODS)
        assert part.rows["fit"] + part.rows["val"] <= int((~np.isin(labels, METADATA_METHODS)).sum())
    assert set(METADATA_METHODS) <= set(model.classes_)
    # The score is the largest of the family model's 1 - P(clean) and the metadata model's P(method), for every row.
    x = features
    proba = model.predict_proba(x)
    meta = model.metadata.predict_proba(x)
    for method in METADATA_METHODS:
        assert np.array_equal(proba[:, model.classes_.index(method)], meta[:, model.metadata.classes.index(method)])
    scores, _, _ = FittedV4(model, names, threshold).score_features(data.features)
    assert np.all(scores >= 1 - proba[:, model.classes_.index("clean")] - 1e-12)
    assert np.all(scores >= meta[:, 1:].max(axis=1) - 1e-12)
    # One graph: the metadata model's probabilities added in its methods' columns for every row, exactly.
    onnx_bytes = to_onnx(model, features.shape[1])
    assert onnx_parity(onnx_bytes, model, features) < 1e-5
    assert [o.name for o in onnx.load_from_string(onnx_bytes).graph.output] == ["label", "probabilities"]
    # Without the meta stream (an ablation) there is nothing for it to read: the family models keep those methods.
    kept = [n for n in names if not n.startswith("meta.")]
    ablated, _ = fit_v4(model_input(data.features, model_columns(kept)), labels, parts["train"], parts["val"], params,
                        0.0005, names=kept)
    assert ablated.metadata is None and set(METADATA_METHODS) <= set(ablated.classes_)


def _framed_comment_rows():
    """Synthetic model input rows (the smoke corpus has a dozen files of each method, too few to split on): clean
    files, 200 of them with short comments (one in ten framed as Starlight frames a payload), against exif files
    with framed comments of every length and eoi files with unexplained trailers."""
    from stegwatch.features.streams import feature_names

    names = feature_names()
    rng = np.random.default_rng(0)
    n_clean, n_exif, n_eoi = 1200, 300, 300
    labels = np.asarray(["clean"] * n_clean + ["exif"] * n_exif + ["eoi"] * n_eoi)
    features = np.zeros((labels.size, len(names) + 1), dtype=np.float32)  # the model columns, then the route column
    features[:, :-1] = rng.normal(size=(labels.size, len(names))).astype(np.float32) * 0.01
    column = {n: i for i, n in enumerate(names)}
    features[:, [column[n] for n in names if n.startswith("meta.")]] = 0  # only what is set below
    commented = np.flatnonzero(labels == "clean")[:200]
    features[commented, column["meta.comment_nonblank"]] = 1
    features[commented, column["meta.comment_log_len"]] = rng.uniform(2, 4, commented.size)
    features[commented[::10], column["meta.comment_starlight_framed"]] = 1
    exif = labels == "exif"
    features[exif, column["meta.comment_nonblank"]] = 1
    features[exif, column["meta.comment_starlight_framed"]] = 1
    features[exif, column["meta.comment_log_len"]] = rng.uniform(3, 8, exif.sum())
    features[labels == "eoi", column["meta.trailer_unexplained_log_len"]] = rng.uniform(3, 8, n_eoi)
    rows = rng.permutation(labels.size)
    return names, features, labels, commented, column, rows[: labels.size * 3 // 4], rows[labels.size * 3 // 4:]


def test_the_metadata_model_ranks_a_framed_comment_by_what_separates_it_from_captions():
    """The metadata model learns that the framing with a long text is a payload and puts the framed captions below
    the long payloads."""
    from stegwatch.detectors.v4 import fit_v4, recipe_params

    names, features, labels, commented, column, fit, val = _framed_comment_rows()
    model, _ = fit_v4(features, labels, fit, val, recipe_params(TrainConfig(decisive_fraction=0, metadata_model=True, metadata_evidence=False)),
                      0.0005, names=names)
    assert model.metadata is not None and model.metadata.best_iteration > 1
    scores, per_method, methods = model.scores(features)
    framed_captions = commented[::10]
    exif = labels == "exif"
    long_payloads = np.flatnonzero(exif & (features[:, column["meta.comment_log_len"]] > 5))
    assert scores[long_payloads].min() > scores[framed_captions].max()
    uncommented = np.setdiff1d(np.flatnonzero(labels == "clean"), commented)
    assert np.median(scores[labels == "eoi"]) > 0.99 and np.median(scores[uncommented]) < 0.01
    assert all(methods[int(np.argmax(per_method[i]))] == "exif" for i in long_payloads)


def test_metadata_evidence_decides_eoi_and_exif_beyond_every_fitting_clean_file():
    from stegwatch.detectors.v3 import v3_statistics
    from stegwatch.detectors.v4 import ROUTE_FEATURE, fit_v4, recipe_params

    names, features, labels, commented, column, fit, val = _framed_comment_rows()
    params = recipe_params(TrainConfig(decisive_fraction=0, metadata_evidence=True))
    model, _ = fit_v4(features, labels, fit, val, params, 0.0005, names=names)
    stage = model.evidence
    assert stage is not None and set(stage.beyond) == {"exif/comment_evidence", "exif/binary_comment",
                                                      "eoi/unexplained_trailer"}
    # Each cut is the largest value over the clean files fitted on; the family models never saw eoi or exif.
    clean_fit = fit[labels[fit] == "clean"]
    values = v3_statistics(features[clean_fit], [*names, ROUTE_FEATURE], stage.statistics)
    assert [stage.beyond[s.key] for s in stage.statistics] == pytest.approx(values.max(axis=0).tolist())
    assert stage.n_clean == clean_fit.size
    assert {"eoi", "exif"} <= set(model.classes_)
    for part in model.families.values():
        assert not {"eoi", "exif"} & set(part.classes)
    scores, per_method, methods = model.scores(features)
    decided = stage.decided(features).any(axis=1)
    assert np.all(scores[decided] == 1.0) and not decided[clean_fit].any()
    # Every eoi file (no clean file has an unexplained trailer) and every exif file beyond the framed captions.
    assert scores[labels == "eoi"].min() == 1.0 and per_method[labels == "eoi", methods.index("eoi")].min() == 1.0
    # (their evidence: log length + 2 for the framing; the cut: the largest framed caption's).
    beyond = (labels == "exif") & (features[:, column["meta.comment_log_len"]] + 2 > stage.beyond["exif/comment_evidence"])
    assert stage.beyond["exif/comment_evidence"] > 5 and beyond.sum() > 100 and scores[beyond].min() == 1.0
    assert not (scores[(labels == "exif") & ~beyond] == 1.0).any()  # no other evidence: the rest stay undecided
    with pytest.raises(ValueError, match="choose one"):
        fit_v4(features, labels, fit, val, {**params, "metadata_model": True}, 0.0005, names=names)
    assert TrainConfig().metadata_evidence and not TrainConfig().metadata_model  # the shipped recipe


def test_a_v4_with_metadata_evidence_keeps_its_cuts_in_the_card_and_applies_them_after_the_graph(smoke_corpus, tmp_path):
    from stegwatch.detectors.scan import scan
    from stegwatch.detectors.v4 import V4Detector, combined_scores, model_input

    card = train(smoke_corpus, tmp_path / "v4", TrainConfig(model="v4", metadata_evidence=True, workers=1), command="test")
    record = card["metadata_evidence"]
    assert set(record["statistics"]) == {"exif/comment_evidence", "exif/binary_comment", "eoi/unexplained_trailer"}
    assert record["fitted_on_clean_files"] > 0 and card["hyperparameters"]["metadata_evidence"] is True
    for family in card["families"].values():
        assert not {"eoi", "exif"} & set(family["classes"])
    assert {"eoi", "exif"} <= set(card["classes"])
    detector = V4Detector.load(tmp_path / "v4" / "model.onnx")
    assert detector.evidence_stage is not None and detector.evidence_stage.beyond == {
        key: s["beyond"] for key, s in record["statistics"].items()}
    data = load_corpus_features(smoke_corpus)
    scores, per_method, methods = detector.score_features(data.features)
    inputs = model_input(data.features, detector._columns)
    proba = detector.session.run(None, {detector.session.get_inputs()[0].name: inputs})[1].astype(np.float64)
    learned, _, _ = combined_scores(proba, np.zeros((len(proba), 0)), detector.classes)  # no decisive stage on smoke
    decided = detector.evidence_stage.decided(inputs).any(axis=1)
    assert decided.any() and np.all(scores[decided] == 1.0) and np.allclose(scores[~decided], learned[~decided])
    labels = np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])
    assert (labels[decided] == "eoi").sum() + (labels[decided] == "exif").sum() >= 0.8 * decided.sum()
    # A scan names the deciding statistic, with its value, before the most probable methods.
    eoi = next(e for i, e in enumerate(data.entries) if labels[i] == "eoi" and decided[i])
    record = scan([str(smoke_corpus / eoi.file_path)], tmp_path / "v4" / "model.onnx").records[0]
    assert record["is_stego"] and record["method"] == "eoi" and record["score"] == 1.0
    assert list(record["evidence"])[0] == "eoi/unexplained_trailer"
    assert record["evidence"]["eoi/unexplained_trailer"]["value"] > detector.evidence_stage.beyond["eoi/unexplained_trailer"]


def test_a_v4_with_the_metadata_model_names_it_in_its_card_and_scores_with_it_from_onnx(smoke_corpus, tmp_path):
    from stegwatch.detectors.v4 import V4Detector, model_input

    card = train(smoke_corpus, tmp_path / "v4", TrainConfig(model="v4", metadata_model=True, metadata_evidence=False, workers=1), command="test")
    assert card["metadata_model"]["methods"] == ["eoi", "exif"] and card["metadata_model"]["streams"] == ["meta"]
    assert card["hyperparameters"]["metadata_model"] is True
    assert card["early_stopping"]["metadata_model"]["classes"] == ["clean", "eoi", "exif"]
    for family in card["families"].values():
        assert not {"eoi", "exif"} & set(family["classes"])
    detector = V4Detector.load(tmp_path / "v4" / "model.onnx")
    assert detector.metadata_methods == ["eoi", "exif"] and detector.decisive is None
    data = load_corpus_features(smoke_corpus)
    scores, per_method, methods = detector.score_features(data.features)
    proba = detector.session.run(None, {detector.session.get_inputs()[0].name: model_input(data.features, detector._columns)})[1]
    columns = [detector.classes.index(m) for m in ("eoi", "exif")]
    assert np.allclose(scores, np.maximum(1 - proba[:, detector.classes.index("clean")], proba[:, columns].max(axis=1)))
    assert np.allclose(per_method[:, [methods.index("eoi"), methods.index("exif")]], proba[:, columns])
    # The shipped model was fitted without it: its card has none, and the detector reads no such columns.
    shipped = V4Detector.load(KINDS["v4"].shipped)
    assert not shipped.card.get("metadata_model") and shipped.metadata_methods == []


def test_method_models_join_where_they_add_detections_with_a_margin_on_clean_files(smoke_corpus):
    from stegwatch.detectors.v4 import FittedV4, class_labels, fit_v4, model_columns, model_input, recipe_params
    from stegwatch.features.streams import feature_names

    data = load_corpus_features(smoke_corpus)
    names = feature_names()
    features = model_input(data.features, model_columns(names))
    labels = class_labels(data)
    parts = split_by_cover(data.entries, seed=0, test_size=0.25, val_size=0.25)
    # Whether a method model joins on a corpus this small is data: at 2% (margin at 4%) the smoke corpus's spatial
    # lsb.rgb model does (at 5% none did once the dct stream gained the OutGuess slopes).
    target = 0.02
    params = recipe_params(TrainConfig(method_models=True, decisive_fraction=0, metadata_evidence=False))  # method models alone
    model, threshold = fit_v4(features, labels, parts["train"], parts["val"], params, target, names=names)
    val = parts["val"]
    multi_class = threshold_for_fpr(1 - model.predict_proba(features[val][labels[val] == "clean"])[
        :, model.classes_.index("clean")], target)
    candidates = [(family, method, record) for family, methods in model.method_selection.items()
                  for method, record in methods.items()]
    assert candidates
    margin = threshold_for_fpr(1 - model.predict_proba(features[val][labels[val] == "clean"])[
        :, model.classes_.index("clean")], 2 * target)
    assert margin <= multi_class
    for family, method, record in candidates:
        assert record["multi_class_threshold"] == round(multi_class, 6) and record["margin_threshold"] == round(margin, 6)
        assert record["joined"] == (record["val_clean_max"] < margin and record["validation_gain"] > 0)
        assert record["joined"] == (f"{family}:{method}" in model.method_keys)
    assert any(record["joined"] for _, _, record in candidates)
    # The score is the largest of 1 - P(clean) and the joined method models' P(stego), and its threshold keeps the
    # target on the validation clean files.
    scores, per_method, methods = FittedV4(model, names, threshold).score_features(data.features[val])
    x = features[val]
    expected = np.maximum(1 - model.predict_proba(x)[:, model.classes_.index("clean")], model.method_stego(x).max(axis=1))
    assert np.allclose(scores, expected)
    assert np.all(per_method >= model.predict_proba(x)[:, [model.classes_.index(m) for m in methods]])
    clean = labels[val] == "clean"
    assert (scores[clean] >= threshold).sum() <= np.floor(target * clean.sum())


def test_float32_thresholds_keep_lightgbms_decisions_in_onnx():
    # LightGBM puts a split between two adjacent float32 values; the nearest float32 to that threshold is the upper
    # value, so ONNX (float32 thresholds) would send it left. The cut thresholds decide float32 inputs exactly alike.
    import lightgbm

    from stegwatch.detectors.v4 import float32_thresholds, onnx_parity

    low = np.float32(0.1)
    x = np.asarray([[low]] * 40 + [[np.nextafter(low, np.float32(1))]] * 40, dtype=np.float32)
    y = np.asarray([0] * 40 + [1] * 40)
    model = lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=5, verbose=-1).fit(x, y)

    class Wrapped:  # what onnx_parity compares: predict_proba, here of a Booster
        def __init__(self, booster):
            self.booster = booster

        def predict_proba(self, rows):
            p = self.booster.predict(rows)
            return np.column_stack([1 - p, p])

    def exported(booster) -> bytes:
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        return convert_lightgbm(booster, initial_types=[("features", FloatTensorType([None, 1]))], zipmap=False,
                                target_opset=15).SerializeToString()

    as_trained = model.booster_
    cut = lightgbm.Booster(model_str=float32_thresholds(as_trained.model_to_string()))
    np.testing.assert_array_equal(cut.predict(x), as_trained.predict(x))
    assert onnx_parity(exported(as_trained), Wrapped(as_trained), x) > 0.1  # the trap is real
    assert onnx_parity(exported(cut), Wrapped(cut), x) < 1e-6


def test_training_writes_model_card_log_and_onnx(trained):
    out, card, _ = trained
    assert (out / "v4" / "model.onnx").stat().st_size > 0
    assert card["onnx_parity_max_abs_diff"] < 1e-5
    saved = json.loads((out / "v4" / "model_card.json").read_text())
    assert saved["onnx_sha256"] == card["onnx_sha256"]
    for key in ("corpus", "streams", "feature_names", "hyperparameters", "threshold", "validation", "held_out", "command"):
        assert key in saved
    assert saved["corpus"]["manifest_sha256"]
    # The card names the clean files holding the threshold up, highest first.
    highest = saved["threshold"]["highest_clean"]
    assert 0 < len(highest) <= 5 and [h["score"] for h in highest] == sorted((h["score"] for h in highest), reverse=True)
    assert all(h["file_path"] and h["category"] and 0 <= h["score"] <= 1 for h in highest)
    assert 0 < saved["onnx_size_bytes"] == (out / "v4" / "model.onnx").stat().st_size < 10_000_000
    assert saved["route_feature"] == "dct.is_jpeg" and set(saved["families"]) == {"spatial", "jpeg"}
    assert {"spam", "dctr"} <= set(saved["streams"]) and saved["hyperparameters"]["estimator"] == "lightgbm.LGBMClassifier"
    stopping = saved["early_stopping"]["families"]
    log = [json.loads(line) for line in (out / "v4" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, max(f["iterations_run"] for f in stopping.values()) + 1))
    assert {"step", "train_loss", "val_loss", "val_auc", "elapsed_seconds", "spatial_train_loss", "jpeg_val_loss"} <= set(log[0])
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    # The shipped recipe fits no method models: none in the card.
    assert saved["method_models"]["joined"] == [] and saved["early_stopping"]["method_models"] == {}
    assert not saved["hyperparameters"]["method_models"]


def test_a_v4_with_method_models_names_them_in_its_card_and_scores_with_them(smoke_corpus, tmp_path):
    from stegwatch.detectors.v4 import V4Detector, model_input

    # The whole smoke corpus (not only its train split): enough files for a method model to add detections.
    card = train(smoke_corpus, tmp_path / "v4", TrainConfig(model="v4", method_models=True, decisive_fraction=0,
                                                             metadata_evidence=False, split=None, workers=1), command="test")
    joined = card["method_models"]["joined"]
    assert joined and all(k.split(":")[1] in card["classes"] for k in joined)
    assert set(joined) == set(card["early_stopping"]["method_models"])
    assert joined == [f"{family}:{m}" for family, methods in card["method_models"]["candidates"].items()
                      for m, record in methods.items() if record["joined"]]
    # Loaded from ONNX, the detector reads the third output: its scores are at least 1 - P(clean).
    detector = V4Detector.load(tmp_path / "v4" / "model.onnx")
    data = load_corpus_features(smoke_corpus)
    scores, _, _ = detector.score_features(data.features)
    inputs = detector.session.get_inputs()[0].name
    outputs = detector.session.run(None, {inputs: model_input(data.features, detector._columns)})
    assert len(outputs) == 3 and outputs[2].shape == (len(scores), len(joined))
    assert np.allclose(scores, np.maximum(1 - outputs[1][:, detector.classes.index("clean")], outputs[2].max(axis=1)))


def test_early_stopping_keeps_the_best_validation_iteration_and_the_card_says_which(smoke_corpus, tmp_path):
    # Many rounds on a small corpus: each family's validation loss turns up long before the last round.
    config = TrainConfig(model="v4", n_estimators=400, learning_rate=0.3, early_stopping_rounds=5, workers=1)
    card = train(smoke_corpus, tmp_path / "v4", config, command="test")
    log = [json.loads(line) for line in (tmp_path / "v4" / "training_log.jsonl").read_text().splitlines()]
    stopping = card["early_stopping"]
    assert stopping["stopping_rounds"] == 5 and "validation" in stopping["monitored"]
    for family, record in stopping["families"].items():
        losses = [row[f"{family}_val_loss"] for row in log[: record["iterations_run"]]]
        best = record["best_iteration"]
        assert record["iterations_run"] == best + 5 < 400  # stopped early, five rounds past the best
        assert losses[best - 1] == min(losses)  # the kept iteration is the one with the lowest validation loss
    assert card["onnx_parity_max_abs_diff"] < 1e-5


@pytest.mark.parametrize("kind", ["v4", "v3"])
def test_every_detector_follows_the_protocol(trained, smoke_corpus, tmp_path, kind):
    out, _, _ = trained
    detector = load_detector(out / kind / ("model.onnx" if kind == "v4" else "v3_calibration.json"))
    assert isinstance(detector, Detector)
    entries = read_manifest(smoke_corpus).entries[:30]
    paths = [str(smoke_corpus / e.file_path) for e in entries] + [str(p) for p in bad_files(tmp_path).values()]
    detections = detector.detect(paths)
    assert [d.path for d in detections] == paths
    good, bad = detections[: len(entries)], detections[len(entries):]
    assert all(d.error is None and 0.0 <= d.score <= 1.0 and d.is_stego == (d.score >= detector.threshold) for d in good)
    assert all(d.error and d.score is None for d in bad)
    again = detector.detect(paths)
    assert [d.to_json_dict() for d in again] == [d.to_json_dict() for d in detections]


def test_v3_statistics_fire_on_the_framing_of_the_format_level_methods(smoke_corpus):
    # The framing (AI42 marker, a non-blank UserComment, bytes after the end that no known structure explains)
    # drives one named statistic per method. Whether the verdict is "stego" also depends on the clean files'
    # values (ordinary comments reach the same values): that is a measured rate (`evaluate`), not asserted here.
    # Unframed alpha payloads carry no marker at all and are left to the sequential attacks.
    from stegwatch.detectors.v3 import STATISTIC_KEYS, v3_statistics
    from stegwatch.features.table import features_for_paths

    entries = [e for e in read_manifest(smoke_corpus).entries if e.method in ("alpha", "exif", "eoi") and e.payload_kind != "unframed"]
    assert {e.method for e in entries} == {"alpha", "exif", "eoi"}
    rows = features_for_paths([str(smoke_corpus / e.file_path) for e in entries])
    statistics = v3_statistics(np.stack([r.vector for r in rows]))
    column = {key: i for i, key in enumerate(STATISTIC_KEYS)}
    signal = {"alpha": "alpha/message", "exif": "exif/comment_evidence", "eoi": "eoi/unexplained_trailer"}
    for entry, values in zip(entries, statistics, strict=True):
        value = values[column[signal[entry.method]]]
        assert (value == 1.0) if entry.method == "alpha" else (value > 0), entry.file_path


def test_train_then_scan_end_to_end(smoke_corpus, tmp_path):
    result = runner.invoke(app, ["train", "--corpus", str(smoke_corpus), "--out", str(tmp_path / "m"), "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["kind"] == "v4" and card["command"].startswith("stegwatch")
    scanned = runner.invoke(app, ["scan", str(smoke_corpus), "--model", str(tmp_path / "m" / "model.onnx"), "--jsonl", "--workers", "1"])
    assert scanned.exit_code == 0
    records = [json.loads(line) for line in scanned.stdout.splitlines()]
    n_images = len(read_manifest(smoke_corpus).entries)
    assert len(records) == n_images
    assert {"path", "is_stego", "score", "method", "method_scores", "model", "error"} <= set(records[0])


def test_scan_a_folder_of_corrupt_files_gives_error_records(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, path in bad_files(tmp_path).items():
        shutil.copy(path, folder / f"{name}.png")
    for model in ("v3", "v4"):
        if not KINDS[model].shipped.exists():
            pytest.skip("no shipped model")
        result = runner.invoke(app, ["scan", str(folder), "--model", model, "--jsonl", "--workers", "1"])
        assert result.exit_code == 0
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(records) == 6 and all(r["error"] for r in records)
        assert "Traceback" not in result.output


@pytest.mark.parametrize("model", ["v3", "v4"])
def test_shipped_models_scan_with_extract_and_csv(smoke_corpus, model):
    if not KINDS[model].shipped.exists():
        pytest.skip("no shipped model")
    entry = next(e for e in read_manifest(smoke_corpus).entries if e.method == "exif")
    # A threshold of 0.5 flags the file whatever the model's own threshold (the shipped ones sit at a 0.05% FPR
    # against look-alike negatives, and miss most exif files): this test is about what --extract adds to a flag.
    result = runner.invoke(app, ["scan", str(smoke_corpus / entry.file_path), "--model", model, "--json", "--extract",
                                 "--workers", "1", "--threshold", "0.5"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)[0]
    assert record["is_stego"] is True
    if model == "v4":  # V4 attributes exif files to exif; V3's largest statistic on a JPEG carrier is jsteg's
        assert record["method"] == "exif"
    if record["method"] == "exif":
        assert record["payload_length"] == entry.payload_bytes
    csv_result = runner.invoke(app, ["scan", str(smoke_corpus / entry.file_path), "--model", model, "--csv", "--workers", "1"])
    assert csv_result.stdout.splitlines()[0].startswith("path,is_stego,score,method")


def test_train_flags_drop_a_stream_and_exclude_a_category(smoke_corpus, tmp_path):
    result = runner.invoke(app, ["train", "--corpus", str(smoke_corpus), "--out", str(tmp_path / "m"), "--workers", "1",
                                 "--drop-stream", "dct", "--exclude-category", "noise_lsb", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert "dct" not in card["streams"] and not any(n.startswith("dct.") for n in card["feature_names"])
    assert card["config"]["exclude_categories"] == ["noise_lsb"]
    detector = load_detector(tmp_path / "m" / "model.onnx")
    entry = read_manifest(smoke_corpus).entries[0]
    assert detector.detect([str(smoke_corpus / entry.file_path)])[0].error is None
    bad = runner.invoke(app, ["train", "--corpus", str(smoke_corpus), "--out", str(tmp_path / "x"), "--drop-stream", "nope"])
    assert bad.exit_code == 2


def test_a_value_beyond_every_clean_value_scores_above_any_threshold():
    # V3's score mapping has a tail beyond the largest clean value, so no statistic tops out below a threshold.
    from stegwatch.detectors.v3 import ecdf_score

    rng = np.random.default_rng(0)
    shapes = (rng.normal(0, 1, 5000), np.zeros(5000), rng.exponential(2.0, 5000), np.r_[np.zeros(4990), np.ones(10)],
              np.full(5000, 0.999999))  # a bounded statistic whose clean files sit at its top: any larger value still wins
    for clean in shapes:
        quantiles = np.quantile(clean, np.linspace(0, 1, 2001)).tolist()
        top = float(clean.max())
        best_clean = float(ecdf_score(clean, quantiles).max())
        assert best_clean < 1.0
        for threshold in (0.5, 0.999, 1 - 1e-6, 1 - 1e-12, best_clean):
            beyond = top + np.logspace(-6, 6, 200)
            scores = ecdf_score(beyond, quantiles)
            assert np.all(np.diff(scores) >= 0)  # further out never scores lower
            assert scores[-1] > threshold, (threshold, scores[-1])


def test_v3_scores_cross_the_threshold_for_every_statistic(trained):
    from stegwatch.detectors.v3 import METHODS as V3_METHODS, STATISTICS, method_scores

    out, _, _ = trained
    detector = load_detector(out / "v3" / "v3_calibration.json")
    quantiles = detector.calibration.quantiles
    for j, statistic in enumerate(STATISTICS):
        row = np.array([[q[0] for q in quantiles.values()]])  # every statistic at its clean minimum
        grid = quantiles[statistic.key]
        row[0, j] = grid[-1] + 1e3 * max(1.0, abs(grid[-1]))  # far beyond every clean value
        scores = method_scores(row, quantiles)
        assert scores.max() >= detector.threshold, statistic.key
        assert V3_METHODS[int(np.argmax(scores))] == statistic.method


def test_scan_records_name_the_evidence(trained, smoke_corpus):
    from stegwatch.detectors.scan import scan

    out, _, _ = trained
    entries = read_manifest(smoke_corpus).entries
    eoi = next(e for e in entries if e.method == "eoi")
    clean = next(e for e in entries if e.label == "clean")
    records = scan([str(smoke_corpus / eoi.file_path), str(smoke_corpus / clean.file_path)],
                   out / "v3" / "v3_calibration.json").records
    assert all(set(r) == {"path", "is_stego", "score", "method", "method_scores", "model", "error", "evidence"} for r in records)
    flagged, quiet = records
    assert "eoi/unexplained_trailer" in flagged["evidence"]
    assert flagged["evidence"]["eoi/unexplained_trailer"]["value"] == pytest.approx(np.log1p(eoi.payload_bytes + 1), abs=0.01)
    assert 1 <= len(quiet["evidence"]) <= 3 and all({"value", "score"} == set(v) for v in quiet["evidence"].values())
    v4 = scan([str(smoke_corpus / eoi.file_path)], out / "v4" / "model.onnx").records[0]
    # The metadata evidence that decided it (its value beyond every fitting clean file's), then the three most
    # probable methods.
    assert list(v4["evidence"])[0] == "eoi/unexplained_trailer" and v4["evidence"]["eoi/unexplained_trailer"]["score"] == 1
    assert len(v4["evidence"]) == 4 and set(list(v4["evidence"])[1:]) <= set(v4["method_scores"])
    assert v4["method"] == "eoi" and v4["score"] == 1.0


def test_the_tail_is_as_steep_for_mostly_zero_statistics_as_for_continuous_ones():
    # A statistic that is 0 for almost every clean file (a comment, a trailer) gets an exponential tail fitted
    # to its top percent like any other: 2 units beyond the top score the same whatever the zeros below.
    from stegwatch.detectors.v3 import ecdf_score

    rng = np.random.default_rng(0)
    continuous = rng.exponential(1.0, 5000)
    mostly_zero = np.where(rng.random(5000) < 0.98, 0.0, rng.exponential(1.0, 5000) + 1)
    left = []
    for clean in (continuous, mostly_zero):
        quantiles = np.quantile(clean, np.linspace(0, 1, 2001)).tolist()
        far = ecdf_score(np.array([clean.max() + 2.0]), quantiles, n_clean=clean.size)[0]
        near = ecdf_score(np.array([clean.max() + 0.01]), quantiles, n_clean=clean.size)[0]
        assert 1 - 1 / 2001 < near < far < 1.0
        left.append(1.0 - far)
    assert max(left) / min(left) < 3  # both tails have the clean files' own scale (about 1 here)


def test_balanced_clean_weights_give_both_sides_equal_total_weight():
    from stegwatch.detectors.v4 import clean_weights

    labels = np.asarray(["clean"] * 3 + ["f5"] * 9 + ["jsteg"] * 3)
    weights = clean_weights(labels)
    assert weights[labels == "clean"].sum() == pytest.approx(weights[labels != "clean"].sum())
    assert (weights[labels != "clean"] == 1).all()
    assert (clean_weights(np.asarray(["clean", "clean"])) == 1).all()  # one side only: unweighted


def test_the_exported_graph_has_no_unused_initializers_or_dead_nodes(trained):
    # onnxruntime warns about each unused initializer every time the model is loaded; a node whose outputs nothing
    # reads is work done for nothing (the trained recipe here has no method models, so no method_stego output).
    import onnx

    out, _, _ = trained
    graph = onnx.load(str(out / "v4" / "model.onnx")).graph
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    assert [i.name for i in graph.initializer if i.name not in used] == []
    assert [n.name or n.output[0] for n in graph.node if not any(o in used for o in n.output)] == []
    assert [o.name for o in graph.output] == ["label", "probabilities"]


def test_a_v3_statistic_decides_only_beyond_its_clean_tail_at_the_level():
    from stegwatch.detectors.decisive import DecisiveStage
    from stegwatch.features.streams import feature_names

    rng = np.random.default_rng(0)
    names = feature_names()
    col = {n: i for i, n in enumerate(names)}
    clean = np.zeros((3000, len(names)), dtype=np.float32)
    clean[:, col["dct.is_jpeg"]] = 1
    clean[:, col["dct.jsteg_seq_pairs"]] = rng.exponential(2.0, 3000)  # a continuous statistic
    clean[:200, col["meta.trailer_unexplained_log_len"]] = 0  # a statistic that is 0 on every clean file
    stage = DecisiveStage.fit(clean, names, np.arange(3000), level=5e-6)
    assert {"jsteg/sequential_pairs", "eoi/unexplained_trailer", "alpha/sequential_ws"} <= set(stage.tails)
    jsteg = stage.tails["jsteg/sequential_pairs"]
    rows = np.repeat(clean[:1], 4, axis=0)
    rows[:, col["dct.jsteg_seq_pairs"]] = [jsteg.top, jsteg.cut(5e-6) - 1e-3, jsteg.cut(5e-6) + 1e-3, jsteg.top + 100]
    rows[3, col["meta.trailer_unexplained_log_len"]] = 4.0
    methods = ["clean_like", "jsteg", "eoi"]
    raw, per_method = stage.apply(rows, np.full(4, 0.3), np.full((4, 3), 0.1), methods)
    # Inside the clean range and just short of the level: unchanged. Beyond it: at least 1 - level, on its method too.
    assert list(raw[:2]) == [0.3, 0.3] and (raw[2:] >= 1 - 5e-6).all() and (raw[2:] <= 1).all()
    assert per_method[2, 1] == raw[2] and per_method[2, 0] == per_method[2, 2] == 0.1
    assert per_method[3, 2] >= 1 - 5e-6  # the trailer, decisive on its own method
    assert stage.evidence(rows)[0] == {} and set(stage.evidence(rows)[3]) == {"jsteg/sequential_pairs", "eoi/unexplained_trailer"}
    # The card's record gives back the same stage; a model without a stream cannot read its statistics.
    again = DecisiveStage.from_card(stage.to_card(3000), names)
    assert np.array_equal(again.scores(rows), stage.scores(rows))
    assert stage.to_card(3000)["statistics"]["jsteg/sequential_pairs"]["decisive_above"] == pytest.approx(jsteg.cut(5e-6))
    without_meta = [n for n in names if not n.startswith("meta.")]
    assert not any(s.method in ("exif", "eoi") for s in DecisiveStage.readable(without_meta))


def test_v4_applies_its_decisive_stage_from_the_card(trained, smoke_corpus, tmp_path):
    from stegwatch.detectors.scan import scan
    from stegwatch.detectors.v4 import V4Detector, combined_scores, model_input

    # At the default target the smoke corpus has too few clean files to fit a tail beyond the target quantile.
    out, card, _ = trained
    assert card["decisive_statistics"]["level"] is None and "fewer than 1 / target_fpr" in card["decisive_statistics"]["reason"]
    assert V4Detector.load(out / "v4" / "model.onnx").decisive is None
    # At 2%, it has enough.
    card = train(smoke_corpus, tmp_path / "v4", TrainConfig(model="v4", n_estimators=25, target_fpr=0.02, workers=1),
                 command="test")
    record = card["decisive_statistics"]
    assert record["level"] == pytest.approx(TrainConfig().decisive_fraction * 0.02) and record["fitted_on_clean_files"] >= 50
    assert "eoi/unexplained_trailer" in record["statistics"] and record["validation_clean_decided"] == 0
    detector = V4Detector.load(tmp_path / "v4" / "model.onnx")
    data = load_corpus_features(smoke_corpus)
    scores = detector.score_features(data.features)[0]
    proba = detector.session.run(None, {detector.session.get_inputs()[0].name: model_input(data.features, detector._columns)})[1]
    # What the graph alone gives: 1 - P(clean), or the metadata model's P(method) where larger.
    learned = combined_scores(proba.astype(np.float64), np.zeros((len(proba), 0)), detector.classes, [],
                              detector.metadata_methods)[0]
    raised = scores > learned + 1e-6
    labels = np.asarray([e.method if e.label == "stego" else "clean" for e in data.entries])
    assert raised.any() and (labels[raised] != "clean").all()  # it raises stego files only here
    assert (scores[raised] >= 1 - record["level"]).all() and np.allclose(scores[~raised], learned[~raised], atol=1e-6)
    # A scan names the decisive statistic first, then the three most probable methods.
    eoi = next(e for e in data.entries if e.method == "eoi")
    clean = next(e for e in data.entries if e.label == "clean")
    flagged, quiet = scan([str(smoke_corpus / eoi.file_path), str(smoke_corpus / clean.file_path)],
                          tmp_path / "v4" / "model.onnx").records
    assert flagged["is_stego"] and flagged["method"] == "eoi"
    assert list(flagged["evidence"])[0] == "eoi/unexplained_trailer" and len(flagged["evidence"]) == 4
    assert len(quiet["evidence"]) == 3 and set(quiet["evidence"]) <= set(quiet["method_scores"])


def test_a_cross_fitted_threshold_rests_on_every_training_clean_file_scored_without_its_cover(smoke_corpus, tmp_path):
    from stegwatch.detectors.v4 import class_labels, crossfit_threshold, model_columns, model_input, recipe_params
    from stegwatch.features.streams import feature_names

    data = load_corpus_features(smoke_corpus)
    names = feature_names()
    features = model_input(data.features, model_columns(names))
    labels = class_labels(data)
    rows = np.arange(len(labels))
    params = recipe_params(TrainConfig(n_estimators=25))
    threshold, scores, fold = crossfit_threshold(features, labels, data.groups, rows, params, 0.05, names=names,
                                                 folds=3, seed=0)
    assert set(fold.tolist()) == {0, 1, 2}
    assert all(len(set(fold[data.groups == g].tolist())) == 1 for g in set(data.groups.tolist()))  # a cover in one fold
    assert threshold == threshold_for_fpr(scores[labels == "clean"], 0.05)
    # Trained with the option, the card says how the threshold was chosen and on how many clean files.
    card = train(smoke_corpus, tmp_path / "v4", TrainConfig(model="v4", n_estimators=25, threshold_folds=3, workers=1),
                 command="test")
    part = load_corpus_features(smoke_corpus, split="train")
    split = split_by_cover(part.entries, seed=0, test_size=0.25, val_size=0.25)
    training = np.concatenate([split["train"], split["val"]])
    assert "cross-fitted" in card["threshold"]["chosen_on"]
    assert card["threshold"]["n_clean"] == sum(part.entries[i].label == "clean" for i in training)
    assert card["hyperparameters"]["threshold_folds"] == 3


def test_a_cross_fitted_threshold_never_fits_on_a_category_left_out_but_scores_it(smoke_corpus, monkeypatch):
    from stegwatch.detectors import v4
    from stegwatch.features.streams import feature_names

    data = load_corpus_features(smoke_corpus)
    names = feature_names()
    features = v4.model_input(data.features, v4.model_columns(names))
    labels = v4.class_labels(data)
    left_out = np.asarray([e.category == "noise_lsb" for e in data.entries], dtype=bool)
    assert left_out.any()
    fitted_on, fit_v4 = [], v4.fit_v4

    def recording(features, labels, fit, val, *args, **kwargs):
        fitted_on.append(fit)
        return fit_v4(features, labels, fit, val, *args, **kwargs)

    monkeypatch.setattr(v4, "fit_v4", recording)
    _, scores, fold = v4.crossfit_threshold(features, labels, data.groups, np.arange(len(labels)),
                                            v4.recipe_params(TrainConfig(n_estimators=10)), 0.05, names=names, folds=2,
                                            seed=0, never_fit=left_out)
    assert len(fitted_on) == 2 and not any(left_out[fit].any() for fit in fitted_on)
    assert (fold[left_out] >= 0).all() and np.isfinite(scores[left_out]).all()  # still scored, out of fold


def test_highest_clean_names_the_top_clean_rows_of_the_rows_given():
    from types import SimpleNamespace

    from stegwatch.detectors.v4 import highest_clean

    entries = [SimpleNamespace(category=f"c{i}", cover_source="s", file_path=f"f{i}") for i in range(6)]
    labels = np.asarray(["clean", "lsbm", "clean", "clean", "clean", "clean"])
    rows = np.asarray([5, 1, 2, 3])  # file 0 and 4 are not among the rows; file 1 is stego
    top = highest_clean(SimpleNamespace(entries=entries), rows, np.asarray([0.2, 0.99, 0.7, 0.7]), labels, count=2)
    assert [(t["file_path"], t["score"]) for t in top] == [("f2", 0.7), ("f3", 0.7)]
