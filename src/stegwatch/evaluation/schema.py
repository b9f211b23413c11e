"""The typed form of ``metrics.json``; its JSON Schema is exported by ``stegwatch schema metrics``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateRecord(BaseModel):
    count: int = Field(ge=0)
    n: int = Field(ge=0)
    rate: float | None = Field(description="count / n; null when n is 0")
    ci_low: float = Field(ge=0, le=1, description="exact (Clopper-Pearson) two-sided interval, low end")
    ci_high: float = Field(ge=0, le=1)
    upper_bound: float = Field(ge=0, le=1, description="exact one-sided upper bound (files taken as independent)")
    confidence: float
    n_groups: int = Field(ge=0, description="distinct cover groups (cover_id) among the files counted")
    design_effect: float = Field(ge=1, description="variance inflation from within-group correlation (cluster-robust "
                                 "over binomial variance; the worst case when it cannot be estimated)")
    n_effective: float = Field(ge=0, description="n / design_effect: the independent samples the files are worth")
    group_ci_low: float = Field(ge=0, le=1, description="two-sided interval over cover groups, low end: Clopper-Pearson "
                                "on the effective sample, never narrower than the file-level one (stats.group_interval)")
    group_ci_high: float = Field(ge=0, le=1)
    group_upper_bound: float = Field(ge=0, le=1, description="one-sided upper bound over cover groups; decides "
                                     "fpr_target_proven; at least the zero-event bound of the groups themselves")


class ModelIdentity(BaseModel):
    name: str
    version: str
    path: str | None = Field(description="the model file (None for a detector kind without one)")
    sha256: str | None


class RunIdentity(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    timestamp: str
    command: str
    git_commit: str | None
    stegwatch_version: str
    model: ModelIdentity
    corpus: dict = Field(description="path, manifest_sha256, files")
    machine: dict = Field(description="cpu_count, python, platform, library versions")


class DetectionAtFpr(BaseModel):
    """The ROC curve read at a target FPR, its threshold chosen on the clean files it reports on (an oracle)."""

    oracle: bool = Field(default=True, description="always true: no deployed threshold could be chosen this way")
    target_fpr: float
    threshold: float
    false_positive_rate: RateRecord
    detection_rate: RateRecord
    resolvable: bool = Field(description="whether the clean files are enough to resolve the target rate")


class Attribution(BaseModel):
    accuracy: RateRecord
    confusion: dict = Field(description="labels and matrix (rows: true method, columns: predicted)")


class Latency(BaseModel):
    n: int
    warmup: int
    per_image_ms: dict[str, float] = Field(description="p50, p95, p99 of one-file detect() calls, model loaded once")
    images_per_second: float
    batch_files: int
    workers: int


class FoldResult(BaseModel):
    fold: int
    n_files: int
    cover_ids: int
    threshold: float
    false_positive_rate: RateRecord
    detection_rate: RateRecord
    roc_auc: float | None


class CrossValidation(BaseModel):
    folds: int
    trained_per_fold: bool
    splitter: str
    per_fold: list[FoldResult]
    mean: dict[str, float | None]
    std: dict[str, float | None]
    thresholds: list[float] = Field(description="each fold's own threshold (the one its decisions used)")
    fold_of_cover: dict[str, int]
    seed: int | None = Field(default=None, description="seed of the fold assignment and of every refit (absent in runs "
                             "stored before it was recorded)")
    extra_training: list[dict] = Field(default_factory=list, description="training-only corpora joined to every refit "
                                       "(path, manifest_sha256, files, cover_groups): never scored; in each fold those of "
                                       "held-out covers left out")


class InSample(BaseModel):
    training_covers_known: bool = Field(description="whether the model records the cover groups it was fitted on")
    files: int = Field(ge=0, description="files whose cover_id the model was trained or calibrated on")
    cover_groups: int = Field(ge=0)
    kept: bool = Field(description="true with --allow-in-sample: those files were evaluated (the run is in-sample)")


class Metrics(BaseModel):
    """Everything ``stegwatch evaluate`` measured in one run."""

    schema_version: int = 2
    run: RunIdentity
    in_sample: bool = Field(description="true when files from covers the model was fitted on were evaluated "
                            "(--allow-in-sample); every document from such a run says so")
    excluded_in_sample: InSample
    threshold: float | None = Field(description="the model's deployed threshold; null with refits per fold "
                                    "(each fold's own is in cross_validation.thresholds)")
    unreadable: int = Field(ge=0, description="files that could not be read: counted apart, never as clean or stego")
    unreadable_files: list[dict]
    fpr_target: float
    n_needed_for_target: int = Field(description="independent clean files needed for zero false positives to prove the target")
    n_needed_photographs_for_target: int = Field(description="independent photographs (cover groups) needed for zero false "
                                                 "positives to prove the target, whatever the files per photograph")
    clean_files_per_group: float | None = Field(description="clean files per cover group in this run")
    fpr_target_proven: bool = Field(description="the FPR's group_upper_bound is below the target")
    false_positive_rate: RateRecord
    false_positive_rate_by_category: dict[str, RateRecord]
    false_positive_rate_by_format: dict[str, RateRecord]
    false_positive_rate_by_cover_source: dict[str, RateRecord]
    detection_rate: RateRecord
    detection_rate_by_method: dict[str, RateRecord]
    detection_rate_by_payload: dict[str, RateRecord]
    detection_rate_by_cover_category: dict[str, RateRecord] = Field(
        default_factory=dict, description="detection of each method's files by the category of the clean file each was "
        "made from ('METHOD on CATEGORY'; 'unknown' where no sidecar or manifest names it)")
    attribution: Attribution
    roc_auc: float | None
    roc_auc_by_method: dict[str, float | None] = Field(description="ROC AUC of each method's files against the clean "
                                                       "files in the containers (format/mode) they come in")
    oracle_detection_at_fpr: dict[str, DetectionAtFpr] = Field(
        description="oracle reading of the ROC curve: detection at the threshold that gives the target FPR on these "
        "very clean files (not a deployed decision)")
    roc_curves: dict[str, dict[str, list[float]]] = Field(default_factory=dict, description="per method: fpr and tpr points, its files against the clean files of their containers")
    p_e: float | None
    p_e_by_method: dict[str, float | None] = Field(default_factory=dict, description="P_E of each method's files against "
                                                   "the clean files in the containers (format/mode) they come in (minimum over "
                                                   "thresholds of the mean of the two error rates)")
    p_e_by_payload: dict[str, float | None] = Field(default_factory=dict, description="P_E of each method@payload's files "
                                                    "against the clean files of their containers (the keys of "
                                                    "detection_rate_by_payload)")
    md5: float | None
    cross_validation: CrossValidation | None = None
    refits: dict | None = Field(default=None, description="with --checkpoints: the checkpoint folder and how many of "
                                "the run's refits were fitted now and how many taken from it (equal keys, equal fits)")
    generalization: dict | None = Field(default=None, description="leave-one-cover-source-out readings, in-source "
                                        "readings of the same files, and the gap (evaluate --by-source, monitor)")
    latency: Latency | None = None
    dataset: dict | None = Field(default=None, description="dataset metrics of the corpus (monitor runs)")
    decisions: dict | None = Field(
        default=None,
        description="paired-test material: per clean set and per method, the sha256[:16] of every evaluated file and "
        "of the flagged ones",
    )
    training: dict | None = Field(default=None, description="convergence summary of the model's training log (monitor runs)")
    anchor: dict | None = Field(default=None, description="for the reference pipeline of `baseline --anchor`: its library, "
                                "version and feature cost per image by format family")
